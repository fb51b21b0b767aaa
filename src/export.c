/*
 * export.c
 *	  interactions_cron.export_interactions(): every active tenant's new rows
 *	  as Hive-partitioned NDJSON, exactly once.
 *
 * The run computes one watermark, lists the tenants with rows waiting, and
 * exports each of those in its own subtransaction under its advisory lock:
 * files first (durably, under deterministic names), then the checkpoint.  A
 * tenant that fails is rolled back alone and marked failed; a tenant locked by
 * another run is skipped.  Everything commits with the caller's transaction;
 * if that never happens, the next run writes the same rows under the same
 * names, replacing what the lost run left behind.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/params.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "interactions_cron/batch_receiver.h"
#include "interactions_cron/checkpoint.h"
#include "interactions_cron/guc.h"
#include "interactions_cron/hive_path.h"
#include "interactions_cron/ndjson.h"
#include "interactions_cron/relations.h"
#include "interactions_cron/run_history.h"
#include "interactions_cron/s3_client.h"
#include "interactions_cron/subtransaction.h"
#include "interactions_cron/tenants.h"
#include "interactions_cron/watermark.h"

/* What one call works with, fixed at its start. */
typedef struct ExportRun
{
	char	   *exportRoot;
	S3Target   *s3;				/* NULL: local files */
	TimestampTz watermark;
	int64		batchSize;
	bool		dryRun;
	SPIPlanPtr	rowsPlan;
	MemoryContext runContext;	/* outlives SPI: holds the outcomes */
	MemoryContext tenantContext;	/* reset after every tenant */
} ExportRun;

/* Parameters of the batch query: tenant, position (created_at, id), watermark, limit. */
static const Oid RowsQueryTypes[5] = {TEXTOID, TIMESTAMPTZOID, INT8OID, TIMESTAMPTZOID, INT8OID};

/* What happened to one tenant, as reported in the result. */
typedef struct TenantOutcome
{
	TenantToExport *tenant;
	uint64		exported;
	List	   *files;
	char	   *error;
	bool		skipped;
	bool		batchFull;
} TenantOutcome;

/*
 * RequireReadCommitted refuses snapshot isolation levels: the watermark is
 * only safe when the export query's snapshot is taken after it.
 */
static void
RequireReadCommitted(void)
{
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("export_interactions() must run at READ COMMITTED isolation"),
				 errdetail("A transaction snapshot taken before the export's watermark could miss rows."),
				 errhint("Call it outside an explicit REPEATABLE READ or SERIALIZABLE transaction.")));
}

/*
 * PrepareRowsPlan prepares the batch query: the tenant's rows after its
 * position and before the watermark, in keyset order, at most $5 of them.
 */
static SPIPlanPtr
PrepareRowsPlan(const ConfiguredTable *history)
{
	char	   *sql = psprintf("SELECT h.* FROM %s h"
							   " WHERE h.tenant_id = $1"
							   " AND (h.created_at, h.id) > ($2, $3)"
							   " AND h.created_at < $4"
							   " ORDER BY h.created_at, h.id"
							   " LIMIT $5",
							   history->quotedName);
	SPIPlanPtr	plan = SPI_prepare(sql, lengthof(RowsQueryTypes), (Oid *) RowsQueryTypes);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s",
			 sql, SPI_result_code_string(SPI_result));
	return plan;
}

/*
 * StreamBatch runs the batch query with rows going straight to the receiver.
 */
static void
StreamBatch(ExportRun *run, const char *tenantId, CheckpointPosition from,
			BatchReceiver *receiver)
{
	ParamListInfo parameters = makeParamList(5);
	SPIExecuteOptions options;
	Datum		values[5] = {
		CStringGetTextDatum(tenantId),
		TimestampTzGetDatum(from.createdAt),
		Int64GetDatum(from.id),
		TimestampTzGetDatum(run->watermark),
		Int64GetDatum(run->batchSize)
	};
	int			code;

	for (int i = 0; i < 5; i++)
	{
		parameters->params[i].value = values[i];
		parameters->params[i].isnull = false;
		parameters->params[i].pflags = PARAM_FLAG_CONST;
		parameters->params[i].ptype = RowsQueryTypes[i];
	}

	memset(&options, 0, sizeof(options));
	options.params = parameters;
	options.read_only = false;	/* a fresh snapshot, taken after the watermark */
	options.dest = (DestReceiver *) receiver;

	/* SPI reports a SELECT whose rows went to a DestNone receiver as utility. */
	code = SPI_execute_plan_extended(run->rowsPlan, &options);
	MemoryContextSwitchTo(run->tenantContext);
	if (code != SPI_OK_UTILITY)
		elog(ERROR, "export query failed: %s", SPI_result_code_string(code));
}

/*
 * ExportTenantBatch writes the tenant's next batch and moves its checkpoint.
 * It runs inside the tenant's subtransaction; any error rolls both back.
 */
static void
ExportTenantBatch(ExportRun *run, TenantOutcome *outcome, BatchReceiver **receiverOut)
{
	const char *tenantId = outcome->tenant->id;
	CheckpointPosition from = CheckpointRead(tenantId);
	BatchReceiver *receiver = CreateBatchReceiver(run->tenantContext, run->exportRoot, run->s3,
												  HiveEscapePathSegment(tenantId),
												  run->dryRun);
	MemoryContext tenantContext;
	ListCell   *cell;

	*receiverOut = receiver;
	StreamBatch(run, tenantId, from, receiver);
	BatchReceiverFinish(receiver);

	if (!run->dryRun && receiver->rowCount > 0)
		CheckpointRecordSuccess(tenantId, receiver->lastRow,
								receiver->rowCount,
								list_length(receiver->relativePaths),
								llast(receiver->relativePaths));

	outcome->exported = receiver->rowCount;
	outcome->batchFull = receiver->rowCount == (uint64) run->batchSize;

	tenantContext = MemoryContextSwitchTo(run->runContext);
	foreach(cell, receiver->relativePaths)
		outcome->files = lappend(outcome->files, pstrdup(lfirst(cell)));
	MemoryContextSwitchTo(tenantContext);
}

/*
 * RecordTenantFailure turns the error of a rolled-back tenant into its
 * outcome and, unless this is a dry run, its checkpoint's failed state.
 */
static void
RecordTenantFailure(ExportRun *run, TenantOutcome *outcome, ErrorData *error)
{
	MemoryContext previous = MemoryContextSwitchTo(run->runContext);

	outcome->error = pstrdup(error->message);
	outcome->exported = 0;
	list_free_deep(outcome->files);
	outcome->files = NIL;
	MemoryContextSwitchTo(previous);

	if (!run->dryRun)
		CheckpointRecordFailure(outcome->tenant->id, error->message);
}

/* One tenant's export, as run inside its subtransaction. */
typedef struct TenantExportCall
{
	ExportRun  *run;
	TenantOutcome *outcome;
	BatchReceiver *receiver;	/* set once created: names a half-written file */
} TenantExportCall;

/*
 * ExportTenantCall is the body of a tenant's subtransaction.
 */
static void
ExportTenantCall(void *argument)
{
	TenantExportCall *call = argument;

	MemoryContextSwitchTo(call->run->tenantContext);
	ExportTenantBatch(call->run, call->outcome, &call->receiver);
}

/*
 * ExportTenant exports one tenant in a subtransaction, so that its failure
 * rolls back only its own work.  A cancel or timeout still ends the run.
 */
static void
ExportTenant(ExportRun *run, TenantOutcome *outcome)
{
	TenantExportCall call = {run, outcome, NULL};
	ErrorData  *error = RunInSubtransaction(ExportTenantCall, &call);

	if (error != NULL)
	{
		const char *temporaryPath = call.receiver ? BatchReceiverTemporaryPath(call.receiver) : NULL;

		if (temporaryPath != NULL)
			BatchFileRemoveTemporary(temporaryPath);
		if (error->sqlerrcode == ERRCODE_QUERY_CANCELED)
			ReThrowError(error);
		RecordTenantFailure(run, outcome, error);
	}
	MemoryContextReset(run->tenantContext);
}

/*
 * AppendTenantJson appends one tenant's entry of the result.
 */
static void
AppendTenantJson(StringInfo json, const TenantOutcome *outcome)
{
	ListCell   *cell;

	appendStringInfoString(json, "{\"tenantId\": ");
	escape_json(json, outcome->tenant->id);
	appendStringInfoString(json, ", \"tenantName\": ");
	if (outcome->tenant->name != NULL)
		escape_json(json, outcome->tenant->name);
	else
		appendStringInfoString(json, "null");
	appendStringInfo(json, ", \"exported\": " UINT64_FORMAT ", \"filePath\": ",
					 outcome->exported);
	if (outcome->files != NIL)
		escape_json(json, linitial(outcome->files));
	else
		appendStringInfoString(json, "null");

	appendStringInfoString(json, ", \"files\": [");
	foreach(cell, outcome->files)
	{
		if (foreach_current_index(cell) > 0)
			appendStringInfoString(json, ", ");
		escape_json(json, lfirst(cell));
	}
	appendStringInfoChar(json, ']');

	if (outcome->batchFull)
		appendStringInfoString(json, ", \"batchFull\": true");
	if (outcome->skipped)
		appendStringInfoString(json, ", \"skipped\": true, \"reason\": \"tenant is being exported by another session\"");
	if (outcome->error != NULL)
	{
		appendStringInfoString(json, ", \"error\": ");
		escape_json(json, outcome->error);
	}
	appendStringInfoChar(json, '}');
}

/*
 * RunResultJson builds the seed's summary: ok, totalExported, tenants; plus
 * the watermark and, for a dry run, dryRun.
 */
static Jsonb *
RunResultJson(ExportRun *run, List *outcomes)
{
	StringInfoData json;
	uint64		totalExported = 0;
	bool		allOk = true;
	ListCell   *cell;

	foreach(cell, outcomes)
	{
		TenantOutcome *outcome = lfirst(cell);

		totalExported += outcome->exported;
		allOk = allOk && outcome->error == NULL;
	}

	initStringInfo(&json);
	appendStringInfo(&json, "{\"ok\": %s, \"totalExported\": " UINT64_FORMAT ", \"watermark\": ",
					 allOk ? "true" : "false", totalExported);
	NdjsonAppendUtcTimestamp(&json, run->watermark);
	if (run->s3 != NULL)
	{
		appendStringInfoString(&json, ", \"storage\": \"s3\", \"location\": ");
		escape_json(&json, S3Location(run->s3));
	}
	if (run->dryRun)
		appendStringInfoString(&json, ", \"dryRun\": true");
	appendStringInfoString(&json, ", \"tenants\": [");
	foreach(cell, outcomes)
	{
		if (foreach_current_index(cell) > 0)
			appendStringInfoString(&json, ", ");
		AppendTenantJson(&json, lfirst(cell));
	}
	appendStringInfoString(&json, "]}");

	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(json.data)));
}

/*
 * ExportTenants works through the listed tenants: idle ones cost nothing
 * more, busy ones are skipped, the rest are exported one by one.
 */
static List *
ExportTenants(ExportRun *run, List *tenants)
{
	List	   *outcomes = NIL;
	ListCell   *cell;

	foreach(cell, tenants)
	{
		TenantToExport *tenant = lfirst(cell);
		TenantOutcome *outcome = MemoryContextAllocZero(run->runContext,
														sizeof(TenantOutcome));

		outcome->tenant = tenant;
		outcomes = lappend(outcomes, outcome);

		if (!tenant->hasPendingRows)
			continue;
		if (!run->dryRun && !LockTenant(tenant->id, false))
		{
			outcome->skipped = true;
			continue;
		}
		ExportTenant(run, outcome);
	}
	return outcomes;
}

/*
 * ExportBody exports the rows of every active tenant (or one) created since
 * its checkpoint and returns the run's summary.
 */
static Jsonb *
ExportBody(FunctionCallInfo fcinfo)
{
	ExportRun	run;
	char	   *onlyTenantId = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	ConfiguredTable tenantsTable;
	ConfiguredTable historyTable;
	List	   *tenants;
	List	   *outcomes;
	Jsonb	   *result;

	memset(&run, 0, sizeof(run));
	run.batchSize = PG_ARGISNULL(0) ? DefaultBatchSize : PG_GETARG_INT32(0);
	run.dryRun = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
	if (run.batchSize < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be at least 1, not " INT64_FORMAT, run.batchSize)));

	RequireReadCommitted();
	run.runContext = CurrentMemoryContext;
	run.tenantContext = AllocSetContextCreate(CurrentMemoryContext,
											  "interactions_cron tenant",
											  ALLOCSET_DEFAULT_SIZES);
	run.exportRoot = ResolvedExportDirectory();
	if (StorageSetting == STORAGE_S3 && !run.dryRun)
		run.s3 = S3TargetFromSettings();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	tenantsTable = ResolveTenantsTable();
	historyTable = ResolveHistoryTable();
	if (onlyTenantId != NULL)
		RequireTenant(&tenantsTable, onlyTenantId, true);

	run.watermark = ExportWatermark();
	run.rowsPlan = PrepareRowsPlan(&historyTable);
	tenants = ListActiveTenants(&tenantsTable, &historyTable, run.watermark,
								onlyTenantId, run.runContext);
	outcomes = ExportTenants(&run, tenants);

	MemoryContextSwitchTo(run.runContext);
	result = RunResultJson(&run, outcomes);

	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");

	return result;
}

PG_FUNCTION_INFO_V1(export_interactions);

/*
 * export_interactions(batch_size, tenant_id, dry_run) runs the export and
 * records the call in interactions_cron.job_runs.
 */
Datum
export_interactions(PG_FUNCTION_ARGS)
{
	PG_RETURN_JSONB_P(RunRecordedJob("export", ExportBody, fcinfo));
}
