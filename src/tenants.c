/*
 * tenants.c
 *	  Listing the active tenants and checking tenant ids given by callers.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "interactions_cron/checkpoint.h"
#include "interactions_cron/guc.h"
#include "interactions_cron/intent.h"
#include "interactions_cron/spi_plans.h"
#include "interactions_cron/tenants.h"

/*
 * StringListContains says whether a list of C strings holds value.
 */
bool
StringListContains(List *strings, const char *value)
{
	ListCell   *cell;

	foreach(cell, strings)
		if (strcmp(lfirst(cell), value) == 0)
			return true;
	return false;
}

/*
 * ReadActiveTenants returns every active tenant (or only onlyTenantId), in id
 * order, copied into resultContext.  The query runs as the tenants table's
 * owner (see RunQueryAsTableOwner): a view or a function behind the table is
 * its code.
 */
List *
ReadActiveTenants(const ConfiguredTable *tenants, const char *onlyTenantId,
				  MemoryContext resultContext)
{
	Oid			argumentTypes[1] = {TEXTOID};
	Datum		values[1] = {onlyTenantId ? CStringGetTextDatum(onlyTenantId) : (Datum) 0};
	char		nulls[1] = {onlyTenantId ? ' ' : 'n'};
	const MappedColumn *id = &tenants->columns[TENANT_ID_COLUMN];
	List	   *result = NIL;

	RunQueryAsTableOwner(tenants,
						 psprintf("SELECT %s, %s FROM %s t"
								  " WHERE %s AND t.%s IS NOT NULL"
								  " AND ($1::pg_catalog.text IS NULL OR %s = $1)"
								  " ORDER BY t.%s",
								  ColumnAsText(id, "t"),
								  ColumnAsText(&tenants->columns[TENANT_NAME_COLUMN], "t"),
								  tenants->quotedName, tenants->activeFilter, id->quotedName,
								  ColumnAsText(id, "t"), id->quotedName),
						 1, argumentTypes, values, nulls, 0, "list tenants");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	tupleDesc = SPI_tuptable->tupdesc;
		MemoryContext spiContext = MemoryContextSwitchTo(resultContext);
		TenantToExport *tenant = palloc0(sizeof(TenantToExport));

		tenant->id = SPI_getvalue(tuple, tupleDesc, 1);
		tenant->name = SPI_getvalue(tuple, tupleDesc, 2);
		result = lappend(result, tenant);
		MemoryContextSwitchTo(spiContext);
	}
	SPI_freetuptable(SPI_tuptable);
	return result;
}

/*
 * TenantIdArray returns the tenants' ids as a text[] datum, in list order.
 */
Datum
TenantIdArray(List *tenantList)
{
	Datum	   *ids = palloc(sizeof(Datum) * list_length(tenantList));
	ListCell   *cell;

	foreach(cell, tenantList)
		ids[foreach_current_index(cell)] =
			CStringGetTextDatum(((TenantToExport *) lfirst(cell))->id);
	return PointerGetDatum(construct_array(ids, list_length(tenantList), TEXTOID,
										   -1, false, TYPALIGN_INT));
}

/*
 * ReadCheckpointPositions reads, as the extension's owner, the checkpoint
 * positions of the tenants whose ids are given (a text[] datum) as two
 * arrays in the same order: created instants (-infinity without a
 * checkpoint) and last ids (text, NULL: every id).  They live in the
 * returned SPI tuple table, to be freed by the caller.
 */
SPITupleTable *
ReadCheckpointPositions(Datum ids, Datum *createdAts, Datum *lastIds)
{
	static SPIPlanPtr positionsPlan = NULL;
	Oid			positionTypes[1] = {TEXTARRAYOID};
	bool		isNull;

	(void) RunStatementAsOwner(&positionsPlan,
							   "SELECT pg_catalog.array_agg(COALESCE(c.last_created_at, '-infinity')"
							   "                            ORDER BY t.n),"
							   "       pg_catalog.array_agg(c.last_id ORDER BY t.n)"
							   " FROM pg_catalog.unnest($1) WITH ORDINALITY AS t(id, n)"
							   " LEFT JOIN interactions_cron.export_checkpoints c ON c.tenant_id = t.id",
							   1, positionTypes, &ids, NULL, SPI_OK_SELECT,
							   "read the export checkpoints");
	*createdAts = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isNull);
	*lastIds = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isNull);
	return SPI_tuptable;
}

/*
 * TenantsFromAnotherHistory returns the ids of the tenants whose checkpoint
 * was recorded in another history than this database's (a failover, a
 * restore): each is visited once, rows or not, so that files a lost history
 * placed past its checkpoint are removed (see lake_sweep.c).  Checkpoints
 * of no recorded history (1.0's) wait for their tenant's next rows.
 */
static List *
TenantsFromAnotherHistory(void)
{
	static SPIPlanPtr otherHistoryPlan = NULL;
	Oid			argumentTypes[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(CurrentLakeEpoch())};

	return TextColumnAsOwner(&otherHistoryPlan,
							 "SELECT tenant_id FROM interactions_cron.export_checkpoints"
							 " WHERE lake_epoch <> $1",
							 1, argumentTypes, values, "list checkpoints of another history");
}

/*
 * MarkPendingTenants sets hasPendingRows on the tenants with rows after
 * their checkpoint and before the watermark, with one query for all of
 * them, so that idle tenants cost an index probe and no further statement
 * or worker.  The history is read as its table's owner (see
 * RunQueryAsTableOwner); tenants with an unfinished batch to undo, or a
 * checkpoint of another history, are marked too, since the rows of what
 * they undo may have been deleted since.  It also sets aheadOfClock on the
 * tenants whose checkpoint is ahead of this server's clock (see
 * HoldTenantsAheadOfClock in export.c).
 */
static void
MarkPendingTenants(List *tenantList, const ConfiguredTable *history, TimestampTz watermarkValue)
{
	Oid			pendingTypes[4] = {TIMESTAMPTZOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID};
	Datum		pendingValues[4] = {TimestampTzGetDatum(watermarkValue), TenantIdArray(tenantList),
	(Datum) 0, (Datum) 0};
	List	   *toRevisit = list_concat(TenantsWithIntents(), TenantsFromAnotherHistory());
	SPITupleTable *positions = ReadCheckpointPositions(pendingValues[1], &pendingValues[2],
													   &pendingValues[3]);
	const MappedColumn *created = &history->columns[HISTORY_CREATED_COLUMN];
	char	   *watermark = InstantAsColumnType(created, "$1");
	ListCell   *cell;
	bool		isNull;

	RunQueryAsTableOwner(history,
						 psprintf("SELECT CASE WHEN t.after_id IS NULL"
								  "  THEN EXISTS (SELECT 1 FROM %s h WHERE %s AND h.%s < %s)"
								  "  ELSE EXISTS (SELECT 1 FROM %s h WHERE %s AND h.%s < %s) END,"
								  "  t.after_created_at > pg_catalog.clock_timestamp()"
								  " FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3),"
								  "                 pg_catalog.unnest($4)) WITH ORDINALITY"
								  "   AS t(id, after_created_at, after_id, n)"
								  " ORDER BY t.n",
								  history->quotedName,
								  HistoryRowsFrom(history, "t.id", "t.after_created_at"),
								  created->quotedName, watermark,
								  history->quotedName,
								  HistoryRowsPast(history, "t.id", "t.after_created_at", "t.after_id"),
								  created->quotedName, watermark),
						 4, pendingTypes, pendingValues, NULL, 0, "find tenants with rows waiting");
	foreach(cell, tenantList)
	{
		TenantToExport *tenant = lfirst(cell);

		tenant->hasPendingRows =
			DatumGetBool(SPI_getbinval(SPI_tuptable->vals[foreach_current_index(cell)],
									   SPI_tuptable->tupdesc, 1, &isNull)) ||
			StringListContains(toRevisit, tenant->id);
		tenant->aheadOfClock =
			DatumGetBool(SPI_getbinval(SPI_tuptable->vals[foreach_current_index(cell)],
									   SPI_tuptable->tupdesc, 2, &isNull));
	}
	SPI_freetuptable(SPI_tuptable);
	SPI_freetuptable(positions);
}

/*
 * ListActiveTenants returns every active tenant (or only onlyTenantId), in id
 * order, copied into resultContext, each marked when it has work waiting.
 */
List *
ListActiveTenants(const ConfiguredTable *tenants, const ConfiguredTable *history,
				  TimestampTz watermark, const char *onlyTenantId,
				  MemoryContext resultContext)
{
	List	   *tenantList = ReadActiveTenants(tenants, onlyTenantId, resultContext);

	if (tenantList != NIL)
		MarkPendingTenants(tenantList, history, watermark);
	return tenantList;
}

/* The parameter of a tenant's look-up: its id's text form. */
static Oid	TenantActivityTypes[1] = {TEXTOID};

/*
 * TenantActivitySql returns the look-up of a tenant by its id's text form:
 * a row if it exists, saying whether it matches the active tenants filter.
 */
static char *
TenantActivitySql(const ConfiguredTable *tenants)
{
	return psprintf("SELECT COALESCE(%s, false) FROM %s t WHERE %s = $1",
					tenants->activeFilter, tenants->quotedName,
					ColumnAsText(&tenants->columns[TENANT_ID_COLUMN], "t"));
}

/*
 * PrepareActivityPlanAsOwner is the body PrepareTenantActivityPlan runs as
 * the tenants table's owner.
 */
static void
PrepareActivityPlanAsOwner(void *argument)
{
	ConfiguredTable *tenants = argument;
	SPIPlanPtr	plan = NULL;

	tenants->activityPlan = PreparedStatementPlan(&plan, TenantActivitySql(tenants),
												  lengthof(TenantActivityTypes), TenantActivityTypes);
}

/*
 * PrepareTenantActivityPlan keeps the tenants table's look-up for a worker's
 * life: every claim checks its tenant again (CheckpointClaimForExport), and
 * parsing the look-up anew each time was about a twentieth of a worker's
 * time with many small tenants.  It is parsed as the table's owner, as the
 * look-up runs, and planned as a prepared statement is
 * (PreparedStatementPlan).
 */
void
PrepareTenantActivityPlan(ConfiguredTable *tenants)
{
	RunAsRole(tenants->owner, PrepareActivityPlanAsOwner, tenants);
}

/*
 * ReadTenantActivity looks a tenant up by its id's text form, as the tenants
 * table's owner (see RunQueryAsTableOwner), with its kept plan if it has one,
 * and says whether it exists and whether it matches the active tenants
 * filter.
 */
static bool
ReadTenantActivity(const ConfiguredTable *tenants, const char *tenantId, bool *active)
{
	Datum		values[1] = {CStringGetTextDatum(tenantId)};
	bool		isNull;
	bool		found;

	if (tenants->activityPlan != NULL)
		RunPlanAsTableOwner(tenants, tenants->activityPlan, values, NULL, 1, "look up tenant");
	else
		RunQueryAsTableOwner(tenants, TenantActivitySql(tenants), lengthof(TenantActivityTypes),
							 TenantActivityTypes, values, NULL, 1, "look up tenant");
	found = SPI_processed > 0;
	*active = found &&
		DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isNull));
	SPI_freetuptable(SPI_tuptable);
	return found;
}

/*
 * TenantIsActive says whether a tenant exists and matches the active
 * tenants filter.
 */
bool
TenantIsActive(const ConfiguredTable *tenants, const char *tenantId)
{
	bool		active;

	return ReadTenantActivity(tenants, tenantId, &active) && active;
}

/*
 * RequireTenant raises a clear error when a tenant id given by the caller is
 * unknown, or (with mustBeActive) not active.
 */
void
RequireTenant(const ConfiguredTable *tenants, const char *tenantId, bool mustBeActive)
{
	bool		active;

	if (!ReadTenantActivity(tenants, tenantId, &active))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("tenant \"%s\" does not exist", tenantId),
				 errdetail("No row of %s has %s \"%s\".", tenants->quotedName,
						   tenants->columns[TENANT_ID_COLUMN].quotedName, tenantId)));
	if (mustBeActive && !active)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant \"%s\" is not active", tenantId),
				 errdetail("It does not match interactions_cron.active_tenants_filter (%s); only tenants that do are exported.",
						   ActiveTenantsFilterSetting)));
}
