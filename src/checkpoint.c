/*
 * checkpoint.c
 *	  Claiming, advancing and resetting tenants' export checkpoints.
 *
 * A tenant is claimed by locking its checkpoint row (FOR UPDATE), created
 * first if needed.  Only roles that may update export_checkpoints can take
 * that lock, unlike an advisory lock, which any role can take to make a
 * tenant look busy for ever.  Exports claim with SKIP LOCKED, so a tenant
 * held by another export is skipped rather than waited on; reset_checkpoint
 * waits.  A claim lasts one transaction: one tenant's batch.
 *
 * Every statement here runs as the extension's owner: callers may read the
 * checkpoints, but only the functions move them, so a caller cannot move a
 * checkpoint past rows that reset_checkpoint would refuse to skip, unrecorded.
 */
#include "postgres.h"


#include "access/genam.h"
#include "access/skey.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "interactions_cron/checkpoint.h"
#include "interactions_cron/intent.h"
#include "interactions_cron/ndjson.h"
#include "interactions_cron/pg_compat.h"
#include "interactions_cron/preconditions.h"
#include "interactions_cron/relations.h"
#include "interactions_cron/run_history.h"
#include "interactions_cron/sink.h"
#include "interactions_cron/spi_plans.h"
#include "interactions_cron/tenants.h"

/* Before every row: from created -infinity on, every id. */
const CheckpointPosition CheckpointStart = {DT_NOBEGIN, NULL, NULL, false};

static SPIPlanPtr readPlan = NULL;
static SPIPlanPtr createPlan = NULL;
static SPIPlanPtr claimPlan = NULL;
static SPIPlanPtr claimWaitingPlan = NULL;
static SPIPlanPtr successPlan = NULL;
static SPIPlanPtr successPlanOf1_1 = NULL;
static SPIPlanPtr failurePlan = NULL;
static SPIPlanPtr resetPlan = NULL;

#define READ_SQL \
	"SELECT last_created_at, last_id, lake_epoch, status = 'released'" \
	" FROM interactions_cron.export_checkpoints WHERE tenant_id = $1"
#define CLAIM_SQL READ_SQL " FOR UPDATE"
#define CREATE_SQL \
	"INSERT INTO interactions_cron.export_checkpoints (tenant_id)" \
	" VALUES ($1) ON CONFLICT (tenant_id) DO NOTHING"

/*
 * PositionOfResult returns the position in the single row SPI returned, or
 * CheckpointStart when it returned none.
 */
static CheckpointPosition
PositionOfResult(uint64 rows)
{
	CheckpointPosition position = CheckpointStart;

	if (rows == 1)
	{
		HeapTuple	tuple = SPI_tuptable->vals[0];
		TupleDesc	tupleDesc = SPI_tuptable->tupdesc;
		bool		isNull;

		Datum		createdAt = SPI_getbinval(tuple, tupleDesc, 1, &isNull);

		if (!isNull)
			position.createdAt = DatumGetTimestampTz(createdAt);
		position.id = SPI_getvalue(tuple, tupleDesc, 2);
		position.lakeEpoch = SPI_getvalue(tuple, tupleDesc, 3);
		position.released = DatumGetBool(SPI_getbinval(tuple, tupleDesc, 4, &isNull));
	}
	SPI_freetuptable(SPI_tuptable);
	return position;
}

/*
 * CurrentLakeEpoch names the history this database writes: its system
 * identifier and WAL timeline.  A promoted standby runs on a new timeline, a
 * point-in-time restore ends on one, a dump restored into another cluster or
 * an upgraded one runs under a new identifier, so a checkpoint recorded
 * under another epoch may be behind files the lost history placed.  A
 * restore that keeps both (a base backup started without recovery.signal,
 * a dump restored into the same cluster) shows only in the lake: see
 * MarkIfBehindLake in tenant_export.c.
 */
char *
CurrentLakeEpoch(void)
{
	return psprintf(UINT64_FORMAT "/%u", GetSystemIdentifier(), GetWALInsertionTimeLine());
}

/*
 * CurrentHistoryId returns the id this database drew for the history it
 * writes (see CurrentLakeEpoch) at its first export there under its origin
 * prefix (see CurrentOriginPrefix), drawing it now if need be, or NULL on
 * 1.1's objects, which keep none.  A database holding the row of this
 * history under another prefix (a copy made with CREATE DATABASE ...
 * TEMPLATE, or a dump restored into the same cluster, beside the database
 * it descends from; a reinstalled extension) draws an id of its own, so
 * its files and its original's never name one id.  A concurrent drawer's
 * row, once committed, is the one returned.
 */
char *
CurrentHistoryId(void)
{
	static SPIPlanPtr readIdPlan = NULL;
	static SPIPlanPtr drawIdPlan = NULL;
	const char *readSql = "SELECT history_id::text FROM interactions_cron.export_histories"
		" WHERE lake_epoch = $1 AND origin_prefix = $2";
	Oid			argumentTypes[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(CurrentLakeEpoch()),
	CStringGetTextDatum(CurrentOriginPrefix())};
	List	   *ids;

	if (!SqlObjectsAre1_2())
		return NULL;
	ids = TextColumnAsOwner(&readIdPlan, readSql, 2, argumentTypes, values, "read the history's id");
	if (ids != NIL)
		return linitial(ids);
	(void) RunStatementAsOwner(&drawIdPlan,
							   "INSERT INTO interactions_cron.export_histories (lake_epoch, origin_prefix)"
							   " VALUES ($1, $2) ON CONFLICT (lake_epoch, origin_prefix) DO NOTHING",
							   2, argumentTypes, values, NULL, SPI_OK_INSERT, "draw the history's id");
	ids = TextColumnAsOwner(&readIdPlan, readSql, 2, argumentTypes, values, "read the history's id");
	if (ids == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the row of this history in interactions_cron.export_histories vanished while its id was drawn"),
				 errhint("Never delete rows of interactions_cron.export_histories: they tell this database's files from a lost history's.")));
	return linitial(ids);
}

/*
 * OriginDatabaseStillHere returns the OID of the database that placed a
 * file of that origin (see SinkSetOrigin) when it is another database of
 * this cluster that still exists, and InvalidOid otherwise (another
 * cluster's, this database's, or one dropped since).  A database that
 * descends from it (CREATE DATABASE ... TEMPLATE, a dump of it restored
 * here) holds its histories, but the files it places in them now are its
 * own exports, not this database's.
 */
Oid
OriginDatabaseStillHere(const OriginParts *origin)
{
	if (origin->systemIdentifier != GetSystemIdentifier() || origin->databaseOid == MyDatabaseId ||
		!OidIsValid(origin->databaseOid) || get_database_name(origin->databaseOid) == NULL)
		return InvalidOid;
	return origin->databaseOid;
}

/*
 * HistoryIsThisDatabases says whether a file of that origin (see
 * SinkSetOrigin), another database's or installation's, was placed in a
 * history of this database: export_histories, which goes into dumps, holds
 * the origin's prefix with its history id, drawn by this database or the
 * one it was restored from or copied from; or its DBA recorded that history
 * id as this database's (a row without a prefix, which any origin naming
 * that id matches: an id is drawn under one prefix only).  When the
 * database that placed the file is still in this cluster (placerStillHere:
 * see OriginDatabaseStillHere), the histories it drew are its own, this
 * database's only as its copy: only the DBA's rows count.  It runs as the
 * extension's owner; the caller is connected to SPI.
 */
bool
HistoryIsThisDatabases(const OriginParts *origin, bool placerStillHere)
{
	static SPIPlanPtr knownPlan = NULL;
	Oid			argumentTypes[3] = {TEXTOID, TEXTOID, BOOLOID};
	Datum		values[3];

	values[0] = CStringGetTextDatum(origin->prefix);
	values[1] = CStringGetTextDatum(origin->historyId);
	values[2] = BoolGetDatum(placerStillHere);
	return TextColumnAsOwner(&knownPlan,
							 "SELECT lake_epoch FROM interactions_cron.export_histories"
							 " WHERE history_id::text = $2"
							 "  AND (origin_prefix IS NULL OR (origin_prefix = $1 AND NOT $3))",
							 3, argumentTypes, values, "look up a file's history") != NIL;
}

/*
 * CheckpointAdoptedFrom returns the origins of the databases the tenant's
 * checkpoint was adopted from, each with the history it released the
 * tenant in (see CheckpointRecordAdoption), or NIL when it was not adopted,
 * has been exported here since, or the objects are 1.1's.  The caller is
 * connected to SPI; the list is allocated in its memory context.
 */
List *
CheckpointAdoptedFrom(const char *tenantId)
{
	static SPIPlanPtr adoptedPlan = NULL;
	bool		isNull;
	Datum		adoptedFrom;
	List	   *origins = NIL;

	if (!SqlObjectsAre1_2())
		return NIL;
	if (RunTenantStatementAsOwner(&adoptedPlan,
								  "SELECT adopted_from FROM interactions_cron.export_checkpoints"
								  " WHERE tenant_id = $1",
								  tenantId, SPI_OK_SELECT, "read where the checkpoint was adopted from") == 1)
	{
		adoptedFrom = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isNull);
		if (!isNull)
			origins = TextArrayList(adoptedFrom, false);
	}
	SPI_freetuptable(SPI_tuptable);
	return origins;
}

/*
 * OriginInSourcesLostHistory says whether a file of that origin (see
 * SinkSetOrigin) was placed by one of the databases a checkpoint was
 * adopted from (adoptedFrom: see CheckpointAdoptedFrom), in a history other
 * than the one that database was exporting in when it released the tenant:
 * one a failover or a restore of the source lost, whose files past the
 * checkpoint the adoption handed over to this database to sweep.  The
 * source's files of the history it released the tenant in, such as those
 * it places once the tenant moves back, and every other database's, stay
 * their own; so does a history adoptedFrom names for that database at all
 * (a state taken before StateOrigins named each database once).
 */
bool
OriginInSourcesLostHistory(List *adoptedFrom, const OriginParts *origin)
{
	bool		fromSource = false;
	ListCell   *cell;

	foreach(cell, adoptedFrom)
	{
		OriginParts source;

		if (!ParseOrigin(lfirst(cell), &source) || strcmp(origin->prefix, source.prefix) != 0)
			continue;
		if (strcmp(origin->historyId, source.historyId) == 0)
			return false;
		fromSource = true;
	}
	return fromSource;
}

/*
 * CheckpointRecordLakeEpoch records the history the tenant's checkpoint
 * belongs to: the current one once its files named past it have been
 * removed, LAKE_EPOCH_BEHIND_LAKE, which makes the next claim sweep, or
 * none (NULL) again, for a batch that placed nothing before a standby had
 * that record (see RefuseBeforeStandbys in tenant_export.c).
 */
void
CheckpointRecordLakeEpoch(const char *tenantId, const char *lakeEpoch)
{
	static SPIPlanPtr epochPlan = NULL;
	Oid			argumentTypes[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(tenantId),
	lakeEpoch != NULL ? CStringGetTextDatum(lakeEpoch) : (Datum) 0};
	char		nulls[2] = {' ', lakeEpoch != NULL ? ' ' : 'n'};

	(void) RunKeyedStatementAsOwner(&epochPlan,
									"UPDATE interactions_cron.export_checkpoints SET lake_epoch = $2"
									" WHERE tenant_id = $1",
									2, argumentTypes, values, nulls, SPI_OK_UPDATE,
									"record the checkpoint's lake history");
}

/*
 * CheckpointEnterHistory records the tenant's checkpoint in the current
 * history (see CheckpointRecordLakeEpoch), and with 1.2's objects forgets,
 * when forgetPositionXid says its id means nothing here (see
 * PositionXidOfAnotherSystem in late_rows.c), the transaction recorded as
 * having moved the position: one statement, as a tenant's first export
 * runs it.
 */
void
CheckpointEnterHistory(const char *tenantId, const char *lakeEpoch, bool forgetPositionXid)
{
	static SPIPlanPtr enterPlan = NULL;
	Oid			argumentTypes[3] = {TEXTOID, TEXTOID, BOOLOID};
	Datum		values[3] = {CStringGetTextDatum(tenantId), CStringGetTextDatum(lakeEpoch),
	BoolGetDatum(forgetPositionXid)};

	if (!SqlObjectsAre1_2())
	{
		CheckpointRecordLakeEpoch(tenantId, lakeEpoch);
		return;
	}
	(void) RunKeyedStatementAsOwner(&enterPlan,
									"UPDATE interactions_cron.export_checkpoints SET lake_epoch = $2,"
									" position_xid = CASE WHEN $3 THEN NULL ELSE position_xid END"
									" WHERE tenant_id = $1",
									3, argumentTypes, values, NULL, SPI_OK_UPDATE,
									"record the checkpoint's lake history");
}

/*
 * CheckpointRead returns the tenant's position without claiming it (for a
 * dry run), or CheckpointStart when it has never been exported.
 */
CheckpointPosition
CheckpointRead(const char *tenantId)
{
	return PositionOfResult(RunTenantStatementAsOwner(&readPlan, READ_SQL, tenantId,
													  SPI_OK_SELECT,
													  "read the export checkpoint"));
}

/*
 * CheckpointRowBeingCreated says whether the tenant has a checkpoint row
 * that a lock with SKIP LOCKED passed over: one another transaction is
 * inserting and has not committed yet, or one it holds.  It is a probe of
 * the primary key with a dirty snapshot, which sees such a row (an insert
 * into a unique index would wait for that transaction).
 */
static bool
CheckpointRowBeingCreated(const char *tenantId)
{
	Oid			relid = get_relname_relid("export_checkpoints",
										  get_namespace_oid("interactions_cron", false));
	Relation	checkpoints = table_open(relid, AccessShareLock);
	Relation	primaryKey = index_open(PrimaryKeyIndex(checkpoints), AccessShareLock);
	SnapshotData dirty;
	ScanKeyData key;
	IndexScanDesc scan;
	TupleTableSlot *slot = table_slot_create(checkpoints, NULL);
	bool		found;

	InitDirtySnapshot(dirty);
	ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid,
						   primaryKey->rd_indcollation[0], F_TEXTEQ, CStringGetTextDatum(tenantId));
	scan = IndexBeginScan(checkpoints, primaryKey, &dirty, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(primaryKey, AccessShareLock);
	table_close(checkpoints, AccessShareLock);
	return found;
}

/*
 * LockWithoutWaiting locks the tenant's checkpoint row with SKIP LOCKED,
 * which passes over a row another transaction has locked or updated (such
 * as a reset_checkpoint not yet committed or rolled back), and says whether
 * it got it, with its position.
 */
static bool
LockWithoutWaiting(const char *tenantId, CheckpointPosition *position)
{
	uint64		claimed = RunTenantStatementAsOwner(&claimPlan, CLAIM_SQL " SKIP LOCKED", tenantId,
													SPI_OK_SELECT, "claim the tenant");

	*position = PositionOfResult(claimed);
	return claimed == 1;
}

/*
 * CheckpointClaim locks the tenant's checkpoint row until the end of the
 * transaction, creating it if need be, waiting for another transaction that
 * holds it, and returns its position.  The exports never wait: see
 * CheckpointClaimForExport.
 */
void
CheckpointClaim(const char *tenantId, CheckpointPosition *position)
{
	(void) RunTenantStatementAsOwner(&createPlan, CREATE_SQL, tenantId, SPI_OK_INSERT,
									 "create the export checkpoint");
	*position = PositionOfResult(RunTenantStatementAsOwner(&claimWaitingPlan, CLAIM_SQL, tenantId,
														   SPI_OK_SELECT, "claim the tenant"));
}

/*
 * CheckpointClaimForExport is the exports' claim of a tenant for a batch,
 * which never waits: a tenant another transaction holds (its row locked, or
 * being inserted) is busy.  It claims the tenant only while it is still
 * exported here: its state has not been released to another database
 * (tenant_state(release => true)), and it matches the active tenants filter
 * now.  A call lists its tenants when it starts; a tenant moved away
 * meanwhile must not be exported again from its first row.  Both are read
 * under the claim, the filter by a statement of its own: a release takes
 * the claim, and commits only after its tenant left the filter, so a claim
 * granted after it sees both.  A released checkpoint is a row, so the claim
 * never creates one in its place; a missing row is created only for a
 * tenant the filter lets in (with 1.1's objects a release deletes the row).
 */
ExportClaim
CheckpointClaimForExport(const ConfiguredTable *tenants, const char *tenantId,
						 CheckpointPosition *position)
{
	if (!LockWithoutWaiting(tenantId, position))
	{
		if (CheckpointRowBeingCreated(tenantId))
			return EXPORT_CLAIM_BUSY;
		if (!TenantIsActive(tenants, tenantId))
			return EXPORT_CLAIM_NOT_EXPORTED;
		(void) RunTenantStatementAsOwner(&createPlan, CREATE_SQL, tenantId, SPI_OK_INSERT,
										 "create the export checkpoint");
		if (!LockWithoutWaiting(tenantId, position))
			return EXPORT_CLAIM_BUSY;
	}
	if (position->released || !TenantIsActive(tenants, tenantId))
		return EXPORT_CLAIM_NOT_EXPORTED;
	return EXPORT_CLAIM_TAKEN;
}

/*
 * CheckpointReclaim claims again, without waiting and without creating it,
 * the checkpoint of a tenant whose batch this export has begun, and says
 * whether it got it and the tenant is still exported here (not released).
 */
bool
CheckpointReclaim(const char *tenantId)
{
	CheckpointPosition position;

	return LockWithoutWaiting(tenantId, &position) && !position.released;
}

/*
 * The update of a batch's success, with what 1.2's objects record beside
 * (see CheckpointRecordSuccess).
 */
#define SUCCESS_SQL(also) \
	"UPDATE interactions_cron.export_checkpoints SET" \
	"  last_created_at = $2, last_id = $3, status = 'ok', last_error = NULL," \
	"  attempts = 0, last_file = $4," \
	"  rows_exported = rows_exported + $5," \
	"  files_written = files_written + $6," \
	"  last_success_at = pg_catalog.clock_timestamp()," \
	"  updated_at = pg_catalog.clock_timestamp(), lake_epoch = $7" also \
	" WHERE tenant_id = $1"

/*
 * CheckpointRecordSuccess moves the tenant's position past the rows just
 * placed and clears any earlier failure.  With 1.2's objects it records the
 * transaction that moved it (see late_rows.c), and forgets the database the
 * checkpoint was adopted from (see OriginInSourcesLostHistory): it is this
 * database's own now.
 */
void
CheckpointRecordSuccess(const char *tenantId, CheckpointPosition position,
						int64 rowsExported, int64 filesWritten,
						const char *lastFile)
{
	Oid			argumentTypes[7] = {TEXTOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, INT8OID, INT8OID, TEXTOID};
	Datum		values[7] = {
		CStringGetTextDatum(tenantId),
		TimestampTzGetDatum(position.createdAt),
		CStringGetTextDatum(position.id),
		CStringGetTextDatum(lastFile),
		Int64GetDatum(rowsExported),
		Int64GetDatum(filesWritten),
		CStringGetTextDatum(CurrentLakeEpoch())
	};

	if (SqlObjectsAre1_2())
		(void) RunKeyedStatementAsOwner(&successPlan,
										SUCCESS_SQL(", position_xid = pg_catalog.pg_current_xact_id(), adopted_from = NULL"),
										7, argumentTypes, values, NULL, SPI_OK_UPDATE,
										"update the export checkpoint");
	else
		(void) RunKeyedStatementAsOwner(&successPlanOf1_1, SUCCESS_SQL(""),
										7, argumentTypes, values, NULL, SPI_OK_UPDATE,
										"update the export checkpoint");
}

/*
 * CheckpointRecordAdoption records, on a checkpoint just adopted, the
 * origins of the databases it was adopted from (see
 * OriginInSourcesLostHistory; NIL: the state named none), and forgets the
 * transaction that moved it, which is another database's.  1.2's objects
 * only.
 */
void
CheckpointRecordAdoption(const char *tenantId, List *sourceOrigins)
{
	static SPIPlanPtr adoptionPlan = NULL;
	Oid			argumentTypes[2] = {TEXTOID, TEXTARRAYOID};
	Datum		values[2] = {CStringGetTextDatum(tenantId),
	sourceOrigins != NIL ? TextArrayParameter(sourceOrigins) : (Datum) 0};

	(void) RunKeyedStatementAsOwner(&adoptionPlan,
									"UPDATE interactions_cron.export_checkpoints SET"
									"  position_xid = NULL, adopted_from = $2"
									" WHERE tenant_id = $1",
									2, argumentTypes, values, sourceOrigins != NIL ? NULL : " n",
									SPI_OK_UPDATE, "record where the checkpoint was adopted from");
}

/*
 * CheckpointRecordFailure marks the tenant failed with its error; the
 * position stays, so the next run retries the same rows.
 */
void
CheckpointRecordFailure(const char *tenantId, const char *error)
{
	Oid			argumentTypes[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(tenantId), CStringGetTextDatum(error)};

	(void) RunKeyedStatementAsOwner(&failurePlan,
									"INSERT INTO interactions_cron.export_checkpoints AS c"
									" (tenant_id, status, last_error, attempts, updated_at)"
									" VALUES ($1, 'failed', $2, 1, pg_catalog.clock_timestamp())"
									" ON CONFLICT (tenant_id) DO UPDATE SET"
									"  status = 'failed', last_error = excluded.last_error,"
									"  attempts = c.attempts + 1, updated_at = excluded.updated_at"
									" WHERE c.status <> 'released'",
									2, argumentTypes, values, NULL, SPI_OK_INSERT, "mark the export checkpoint failed");
}

/*
 * RequireBackwardMove refuses, without force, a reset that would move a
 * checkpoint forward: that would silently skip rows never exported.
 */
static void
RequireBackwardMove(const char *tenantId, CheckpointPosition current, CheckpointPosition target)
{
	if (target.createdAt > current.createdAt)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot move the checkpoint of tenant \"%s\" forward to %s",
						tenantId, timestamptz_to_str(target.createdAt)),
				 errdetail("The tenant has been exported up to %s; moving past that would skip rows that were never exported.",
						   timestamptz_to_str(current.createdAt)),
				 errhint("To skip rows on purpose (a row that cannot be exported), call reset_checkpoint(tenant_id, since, force => true); the move is recorded in interactions_cron.job_runs.")));
}

/*
 * CheckpointRequireUnreleased refuses to go on with a tenant whose state was
 * released to another database (tenant_state(release => true)), with hint
 * saying what to do instead.
 */
void
CheckpointRequireUnreleased(const char *tenantId, CheckpointPosition checkpoint, const char *hint)
{
	if (checkpoint.released)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the state of tenant \"%s\" was released to another database", tenantId),
				 errdetail("tenant_state(release => true) handed it over; the database that adopted it exports it."),
				 errhint("%s", hint)));
}

/*
 * ResetResultJson describes a reset for the run history.
 */
static Jsonb *
ResetResultJson(const char *tenantId, CheckpointPosition from, CheckpointPosition to,
				bool force, int removedFiles)
{
	StringInfoData json;

	initStringInfo(&json);
	appendStringInfoString(&json, "{\"ok\": true, \"tenantId\": ");
	escape_json(&json, tenantId);
	appendStringInfoString(&json, ", \"from\": ");
	NdjsonAppendUtcTimestamp(&json, from.createdAt);
	appendStringInfoString(&json, ", \"fromId\": ");
	if (from.id != NULL)
		escape_json(&json, from.id);
	else
		appendStringInfoString(&json, "null");
	appendStringInfoString(&json, ", \"to\": ");
	NdjsonAppendUtcTimestamp(&json, to.createdAt);
	appendStringInfo(&json, ", \"force\": %s, \"removedFiles\": %d}",
					 force ? "true" : "false", removedFiles);
	return JsonbFromText(json.data);
}

/*
 * ResetBody moves the tenant's checkpoint and returns what it did.  It waits
 * for an export holding the tenant, and removes the files of an unfinished
 * batch first: their rows lie past the new position and will be written again.
 */
static Jsonb *
ResetBody(FunctionCallInfo fcinfo, JobProgress *progress)
{
	MemoryContext callerContext = CurrentMemoryContext;
	char	   *tenantId;
	bool		force = PG_NARGS() > 2 && !PG_ARGISNULL(2) && PG_GETARG_BOOL(2);
	CheckpointPosition target = CheckpointStart;
	CheckpointPosition current;
	Oid			argumentTypes[3] = {TEXTOID, TIMESTAMPTZOID, TEXTOID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', 'n'};
	ConfiguredTable tenants;
	int			removedFiles;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tenant_id must not be NULL")));
	tenantId = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (!PG_ARGISNULL(1))
		target.createdAt = PG_GETARG_TIMESTAMPTZ(1);

	ConnectSpi();
	tenants = ResolveTenantsTable();
	RequireCallerPrivileges(&tenants, ACL_SELECT, "SELECT");
	RequireTenant(&tenants, tenantId, false);
	CheckpointClaim(tenantId, &current);
	/* Read in SPI's context, the old position is reported after SPI_finish. */
	if (current.id != NULL)
		current.id = MemoryContextStrdup(callerContext, current.id);
	if (!force)
	{
		/* A reset would export it here again, beside the database that adopted it. */
		CheckpointRequireUnreleased(tenantId, current,
									"To export it here again, adopt its state back with adopt_tenant_state; "
									"reset_checkpoint(tenant_id, since, force => true) exports it here from since.");
		RequireBackwardMove(tenantId, current, target);
	}
	removedFiles = IntentClear(tenantId, NULL, NULL);

	values[0] = CStringGetTextDatum(tenantId);
	values[1] = TimestampTzGetDatum(target.createdAt);
	values[2] = (Datum) 0;		/* from `since` on, every id */
	(void) RunKeyedStatementAsOwner(&resetPlan,
									"UPDATE interactions_cron.export_checkpoints SET"
									"  last_created_at = $2, last_id = $3, status = 'ok', last_error = NULL,"
									"  attempts = 0, updated_at = pg_catalog.clock_timestamp()"
									" WHERE tenant_id = $1",
									3, argumentTypes, values, nulls, SPI_OK_UPDATE, "reset the export checkpoint");
	FinishSpi();
	return ResetResultJson(tenantId, current, target, force, removedFiles);
}

/* PostgreSQL 15's PG_FUNCTION_INFO_V1 exports only the info function. */
PGDLLEXPORT Datum reset_checkpoint(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(reset_checkpoint);

/*
 * reset_checkpoint(tenant_id, since, force) moves a tenant's checkpoint back
 * to `since` (NULL: the beginning) so the next export writes those rows
 * again; with force it may also move it forward, past rows that cannot be
 * exported.  Every reset is recorded in interactions_cron.job_runs.
 */
Datum
reset_checkpoint(PG_FUNCTION_ARGS)
{
	RequireUsableDatabase();
	(void) RunRecordedJob("reset_checkpoint", ResetBody, fcinfo, false);
	PG_RETURN_VOID();
}
