/*
 * tenant_state.c
 *	  interactions_cron.tenant_state() and adopt_tenant_state(): a tenant's
 *	  export state, carried with the tenant to another database or shard.
 *
 * A tenant moved to another database (a shard of a scaled-out platform)
 * keeps its place in the shared lake only if its checkpoint moves with it:
 * without one, the new database would export its whole history again.  The
 * state is the checkpoint row and any outstanding intent, as JSON.  Taking
 * it claims the tenant until the caller's transaction ends, so no batch of
 * the source is halfway through a transaction meanwhile, and releasing it
 * deletes it there, so that it is handed over rather than copied; adopting it
 * refuses to move an existing checkpoint unless told to (force), and is
 * recorded in the run history.  An adopted intent names the source's
 * placed files in the shared lake, so the new database undoes them at its
 * first claim; its checkpoint keeps the source's history (lake_epoch), so
 * that first claim also removes any file the source placed past it.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/numeric.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "interactions_cron/checkpoint.h"
#include "interactions_cron/intent.h"
#include "interactions_cron/ndjson.h"
#include "interactions_cron/preconditions.h"
#include "interactions_cron/relations.h"
#include "interactions_cron/run_history.h"
#include "interactions_cron/sink.h"
#include "interactions_cron/spi_plans.h"
#include "interactions_cron/tenants.h"

static SPIPlanPtr statePlan = NULL;
static SPIPlanPtr adoptCheckpointPlan = NULL;
static SPIPlanPtr adoptIntentPlan = NULL;
static SPIPlanPtr intentLocationPlan = NULL;

/*
 * RequireKnownTenant checks that the caller may read the tenants table and
 * that the tenant is one of its rows (active or not), and returns the table.
 */
static ConfiguredTable
RequireKnownTenant(const char *tenantId)
{
	ConfiguredTable tenants = ResolveTenantsTable();

	RequireCallerPrivileges(&tenants, ACL_SELECT, "SELECT");
	RequireTenant(&tenants, tenantId, false);
	return tenants;
}

PGDLLEXPORT Datum tenant_state(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(tenant_state);

/*
 * ReleaseTenant deletes the tenant's intent here and marks its checkpoint
 * released, once its state is taken: the state is handed over, not copied.
 * A stale intent left behind would, were the tenant ever moved back, undo
 * files the other database had placed under the same names.  The released
 * checkpoint stays as a marker: no export claims the tenant here again, not
 * a call that listed it before the move nor one after the filter lets it in
 * again, until a state is adopted here (or reset_checkpoint is forced).
 * Only a tenant out of the export (not matching active_tenants_filter) is
 * released.  With 1.1's SQL objects, which have no released state, the
 * checkpoint is deleted, as 1.1 did; the export's claims still re-read the
 * filter.
 */
static void
ReleaseTenant(const ConfiguredTable *tenants, const char *tenantId)
{
	static SPIPlanPtr releasePlan = NULL;
	static SPIPlanPtr deletePlan = NULL;

	if (TenantIsActive(tenants, tenantId))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant \"%s\" is still exported here", tenantId),
				 errhint("Take it out of the export first (make it fail interactions_cron.active_tenants_filter), then release its state.")));
	IntentForget(tenantId);
	if (SqlObjectsAre1_2())
		(void) RunTenantStatementAsOwner(&releasePlan,
										 "UPDATE interactions_cron.export_checkpoints SET"
										 "  status = 'released', last_error = NULL, attempts = 0,"
										 "  updated_at = pg_catalog.clock_timestamp()"
										 " WHERE tenant_id = $1",
										 tenantId, SPI_OK_UPDATE, "release the checkpoint");
	else
		(void) RunTenantStatementAsOwner(&deletePlan,
										 "DELETE FROM interactions_cron.export_checkpoints WHERE tenant_id = $1",
										 tenantId, SPI_OK_DELETE, "release the checkpoint");
}

/*
 * OriginsNameDatabase says whether a list of origins names the database
 * (the origin prefix) of origin.
 */
static bool
OriginsNameDatabase(List *origins, const char *origin)
{
	OriginParts parts;
	ListCell   *cell;

	if (!ParseOrigin(origin, &parts))
		return false;
	foreach(cell, origins)
	{
		OriginParts named;

		if (ParseOrigin(lfirst(cell), &named) && strcmp(named.prefix, parts.prefix) == 0)
			return true;
	}
	return false;
}

/*
 * StateOrigins returns the origins a tenant's state names (see
 * OriginInSourcesLostHistory): this database's, with the history it
 * exports in, and those its checkpoint was adopted from, when it has not
 * been exported here since; NIL on 1.1's objects.  Each of those databases
 * may have lost files past the checkpoint in a failover or a restore.  A
 * database is named once, with the history it released the tenant in last
 * (the first named: this one's own, then the newest adoption's): a tenant
 * moved back and forth without exporting would otherwise name an earlier
 * history of it too, and that database's files of its latest history would
 * look lost (see OriginInSourcesLostHistory).
 */
static List *
StateOrigins(const char *tenantId)
{
	char	   *historyId = CurrentHistoryId();
	List	   *origins;
	ListCell   *cell;

	if (historyId == NULL)
		return NIL;
	origins = list_make1(psprintf("%s/%s", CurrentOriginPrefix(), historyId));
	foreach(cell, CheckpointAdoptedFrom(tenantId))
	{
		if (!OriginsNameDatabase(origins, lfirst(cell)))
			origins = lappend(origins, lfirst(cell));
	}
	return origins;
}

/*
 * tenant_state(tenant_id, release) returns the tenant's checkpoint and
 * outstanding intent as JSON, having claimed the tenant until the end of
 * the caller's transaction (waiting for an export's transaction on it to
 * end); with release, they are deleted here in the same transaction.
 */
Datum
tenant_state(PG_FUNCTION_ARGS)
{
	MemoryContext callerContext = CurrentMemoryContext;
	char	   *tenantId = text_to_cstring(PG_GETARG_TEXT_PP(0));
	bool		release = PG_GETARG_BOOL(1);
	ConfiguredTable tenants;
	CheckpointPosition checkpoint;
	bool		isNull;
	Datum		state;
	List	   *origins;
	Oid			argumentTypes[2] = {TEXTOID, TEXTARRAYOID};
	Datum		values[2] = {(Datum) 0, (Datum) 0};

	RequireUsableDatabase();
	ConnectSpi();
	tenants = RequireKnownTenant(tenantId);
	CheckpointClaim(tenantId, &checkpoint);
	CheckpointRequireUnreleased(tenantId, checkpoint,
								"Take the state from the database that adopted it, and adopt it here with adopt_tenant_state.");
	values[0] = CStringGetTextDatum(tenantId);
	origins = StateOrigins(tenantId);
	if (origins != NIL)
		values[1] = TextArrayParameter(origins);
	(void) RunStatementAsOwner(&statePlan,
							   "SELECT pg_catalog.jsonb_build_object("
							   "  'tenantId', $1, 'format', 1, 'origins', pg_catalog.to_jsonb($2),"
							   "  'checkpoint', (SELECT pg_catalog.to_jsonb(c) - 'tenant_id'"
							   "                 FROM interactions_cron.export_checkpoints c"
							   "                 WHERE c.tenant_id = $1),"
							   "  'intent', (SELECT pg_catalog.to_jsonb(i) - 'tenant_id'"
							   "             FROM interactions_cron.export_intents i"
							   "             WHERE i.tenant_id = $1))",
							   2, argumentTypes, values, origins != NIL ? NULL : " n", SPI_OK_SELECT,
							   "read the tenant's state");
	state = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isNull);
	MemoryContextSwitchTo(callerContext);
	state = datumCopy(state, false, -1);
	if (release)
		ReleaseTenant(&tenants, tenantId);
	FinishSpi();
	PG_RETURN_DATUM(state);
}

/*
 * StateField returns a top-level field of a JSON object, or NULL when it is
 * missing or null.
 */
static JsonbValue *
StateField(Jsonb *object, const char *key)
{
	JsonbValue	keyValue;
	JsonbValue *found;

	keyValue.type = jbvString;
	keyValue.val.string.val = (char *) key;
	keyValue.val.string.len = strlen(key);
	found = findJsonbValueFromContainer(&object->root, JB_FOBJECT, &keyValue);
	return (found == NULL || found->type == jbvNull) ? NULL : found;
}

/*
 * StateText returns a top-level string or number field as text, or NULL.
 */
static char *
StateText(Jsonb *object, const char *key)
{
	JsonbValue *field = StateField(object, key);

	if (field == NULL)
		return NULL;
	if (field->type == jbvString)
		return pnstrdup(field->val.string.val, field->val.string.len);
	if (field->type == jbvNumeric)
		return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(field->val.numeric)));
	return NULL;
}

/*
 * StateObject returns a top-level object field as jsonb, or NULL.
 */
static Jsonb *
StateObject(Jsonb *object, const char *key)
{
	JsonbValue *field = StateField(object, key);

	return (field != NULL && field->type == jbvBinary) ? JsonbValueToJsonb(field) : NULL;
}

/*
 * StateOriginList returns the origins a state names (see StateOrigins), or
 * NIL when it names none (a state of 1.1's objects), and refuses anything
 * but an array of well-formed origins.  A database named twice (a state
 * made by hand) is kept with its first origin, as StateOrigins names it:
 * the history it released the tenant in last.
 */
static List *
StateOriginList(Jsonb *state, const char *tenantId)
{
	JsonbValue *field = StateField(state, "origins");
	List	   *origins = NIL;
	JsonbIterator *iterator;
	JsonbValue	element;
	JsonbIteratorToken token;

	if (field == NULL)
		return NIL;
	if (field->type != jbvBinary || !JsonContainerIsArray(field->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the state of tenant \"%s\" names its origins in something other than an array", tenantId),
				 errhint("Pass what interactions_cron.tenant_state(tenant_id) returned, unchanged.")));
	iterator = JsonbIteratorInit(field->val.binary.data);
	while ((token = JsonbIteratorNext(&iterator, &element, true)) != WJB_DONE)
	{
		char	   *origin;
		OriginParts parts;

		if (token != WJB_ELEM)
			continue;
		if (element.type != jbvString)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the state of tenant \"%s\" names an origin that is not a string", tenantId),
					 errhint("Pass what interactions_cron.tenant_state(tenant_id) returned, unchanged.")));
		origin = pnstrdup(element.val.string.val, element.val.string.len);
		if (!ParseOrigin(origin, &parts))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the state of tenant \"%s\" names a malformed origin \"%s\"", tenantId, origin),
					 errhint("Pass what interactions_cron.tenant_state(tenant_id) returned, unchanged.")));
		if (!OriginsNameDatabase(origins, origin))
			origins = lappend(origins, origin);
	}
	return origins;
}

/*
 * RequireSameLake refuses an intent recorded for another lake than the one
 * this database exports to: its files could not be undone here, and an
 * intent names the paths it deletes.
 */
static void
RequireSameLake(const char *tenantId, Datum intent)
{
	ExportSink *sink = SinkFromSettings(false);
	Oid			argumentTypes[6] = {JSONBOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[6] = {intent, CStringGetTextDatum(sink->storage),
		CStringGetTextDatum(sink->localRoot), (Datum) 0, (Datum) 0, (Datum) 0};
	char		nulls[6] = {' ', ' ', ' ', 'n', 'n', 'n'};
	bool		isNull;
	bool		sameLake;

	if (sink->s3 != NULL)
	{
		values[3] = CStringGetTextDatum(sink->s3->endpoint);
		values[4] = CStringGetTextDatum(sink->s3->bucket);
		values[5] = CStringGetTextDatum(sink->s3->prefix);
		nulls[3] = nulls[4] = nulls[5] = ' ';
	}
	(void) RunStatementAsOwner(&intentLocationPlan,
							   "SELECT i.storage = $2 AND CASE i.storage"
							   "  WHEN 's3' THEN (i.s3_endpoint, i.s3_bucket, i.s3_prefix)"
							   "                 IS NOT DISTINCT FROM ($4, $5, $6)"
							   "  ELSE i.local_root = $3 END"
							   " FROM pg_catalog.jsonb_populate_record(NULL::interactions_cron.export_intents, $1) i",
							   6, argumentTypes, values, nulls, SPI_OK_SELECT,
							   "compare the intent's lake");
	sameLake = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isNull)) &&
		!isNull;
	SPI_freetuptable(SPI_tuptable);
	if (!sameLake)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the state of tenant \"%s\" holds an unfinished batch in another lake than this database's",
						tenantId),
				 errdetail("This database exports to %s.", SinkLocation(sink)),
				 errhint("Point interactions_cron.export_dir (or the S3 settings) at the shared lake, or let the source finish the batch first.")));
}

/*
 * RequireUnmovedCheckpoint refuses, without force, to replace a checkpoint
 * that has moved (a tenant that exported here) by another position.  A
 * released checkpoint is a marker only: its state was handed over.
 */
static void
RequireUnmovedCheckpoint(const char *tenantId, CheckpointPosition current, Jsonb *checkpoint)
{
	char	   *createdAtText = StateText(checkpoint, "last_created_at");
	char	   *id = StateText(checkpoint, "last_id");
	TimestampTz createdAt = createdAtText
		? DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(createdAtText),
												  ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)))
		: DT_NOBEGIN;
	bool		moved = !current.released && (current.createdAt != DT_NOBEGIN || current.id != NULL);
	bool		same = current.createdAt == createdAt &&
		((current.id == NULL && id == NULL) ||
		 (current.id != NULL && id != NULL && strcmp(current.id, id) == 0));

	if (moved && !same)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tenant \"%s\" already has a checkpoint here, at %s",
						tenantId, timestamptz_to_str(current.createdAt)),
				 errdetail("Adopting the state would move it to %s, and rows would be skipped or exported twice.",
						   timestamptz_to_str(createdAt)),
				 errhint("Call adopt_tenant_state(state, force => true) to replace it; the call is recorded in interactions_cron.job_runs.")));
}

/*
 * AdoptBody installs a tenant's state taken elsewhere and returns what it did.
 */
static Jsonb *
AdoptBody(FunctionCallInfo fcinfo, JobProgress *progress)
{
	Jsonb	   *state;
	bool		force = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
	char	   *tenantId;
	Jsonb	   *checkpoint;
	Jsonb	   *intent;
	List	   *sourceOrigins;
	CheckpointPosition current;
	Oid			argumentTypes[2] = {TEXTOID, JSONBOID};
	Datum		values[2];
	StringInfoData result;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("state must not be NULL")));
	state = PG_GETARG_JSONB_P(0);
	tenantId = StateText(state, "tenantId");
	if (tenantId == NULL || StateText(state, "format") == NULL ||
		strcmp(StateText(state, "format"), "1") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("state is not a tenant state of interactions_cron (format 1)"),
				 errhint("Pass what interactions_cron.tenant_state(tenant_id) returned.")));
	checkpoint = StateObject(state, "checkpoint");
	intent = StateObject(state, "intent");
	sourceOrigins = StateOriginList(state, tenantId);
	if (checkpoint == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the state of tenant \"%s\" has no checkpoint", tenantId)));

	ConnectSpi();
	(void) RequireKnownTenant(tenantId);
	CheckpointClaim(tenantId, &current);
	if (!force)
		RequireUnmovedCheckpoint(tenantId, current, checkpoint);
	if (intent != NULL)
		RequireSameLake(tenantId, JsonbPGetDatum(intent));
	(void) IntentClear(tenantId, NULL, NULL);

	values[0] = CStringGetTextDatum(tenantId);
	values[1] = JsonbPGetDatum(checkpoint);
	(void) RunStatementAsOwner(&adoptCheckpointPlan,
							   "UPDATE interactions_cron.export_checkpoints c SET"
							   "  last_created_at = s.last_created_at, last_id = s.last_id,"
							   "  status = s.status, last_error = s.last_error, attempts = s.attempts,"
							   "  last_file = s.last_file, rows_exported = s.rows_exported,"
							   "  files_written = s.files_written, last_success_at = s.last_success_at,"
							   "  lake_epoch = s.lake_epoch, updated_at = pg_catalog.clock_timestamp()"
							   " FROM pg_catalog.jsonb_populate_record(NULL::interactions_cron.export_checkpoints, $2) s"
							   " WHERE c.tenant_id = $1",
							   2, argumentTypes, values, NULL, SPI_OK_UPDATE, "adopt the checkpoint");
	if (SqlObjectsAre1_2())
		CheckpointRecordAdoption(tenantId, sourceOrigins);
	if (intent != NULL)
	{
		values[1] = JsonbPGetDatum(intent);
		/* The source's temporary files are on its own machine, not ours. */
		(void) RunStatementAsOwner(&adoptIntentPlan,
								   "INSERT INTO interactions_cron.export_intents"
								   " (tenant_id, token, storage, local_root, s3_endpoint, s3_bucket, s3_prefix,"
								   "  files, temporary_files, row_count, created_at)"
								   " SELECT $1, i.token, i.storage, i.local_root, i.s3_endpoint, i.s3_bucket,"
								   "        i.s3_prefix, i.files, '{}', i.row_count, i.created_at"
								   " FROM pg_catalog.jsonb_populate_record(NULL::interactions_cron.export_intents, $2) i",
								   2, argumentTypes, values, NULL, SPI_OK_INSERT, "adopt the intent");
		IntentRequireValid(tenantId);
	}
	FinishSpi();

	initStringInfo(&result);
	appendStringInfoString(&result, "{\"ok\": true, \"tenantId\": ");
	escape_json(&result, tenantId);
	appendStringInfoString(&result, ", \"from\": ");
	NdjsonAppendUtcTimestamp(&result, current.createdAt);
	appendStringInfo(&result, ", \"force\": %s, \"intent\": %s}", force ? "true" : "false",
					 intent != NULL ? "true" : "false");
	return JsonbFromText(result.data);
}

PGDLLEXPORT Datum adopt_tenant_state(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(adopt_tenant_state);

/*
 * adopt_tenant_state(state, force) installs a tenant's state taken with
 * tenant_state() in another database, recorded in interactions_cron.job_runs.
 */
Datum
adopt_tenant_state(PG_FUNCTION_ARGS)
{
	RequireUsableDatabase();
	PG_RETURN_JSONB_P(RunRecordedJob("adopt_tenant_state", AdoptBody, fcinfo, false));
}
