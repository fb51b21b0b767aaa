/*
 * export.c
 *	  interactions_cron.export_interactions(): every active tenant's new rows
 *	  as Hive-partitioned NDJSON, exactly once.
 *
 * The call itself only decides: it computes the watermark, lists the active
 * tenants with one query (idle ones cost nothing more), and hands those with
 * work to background workers, each exporting tenant after tenant in short
 * transactions of their own (tenant_export.c).  It then reports what the
 * workers did.  A tenant's batch commits on its own, whatever happens to the
 * call afterwards.
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/int.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "interactions_cron/guc.h"
#include "interactions_cron/ndjson.h"
#include "interactions_cron/preconditions.h"
#include "interactions_cron/relations.h"
#include "interactions_cron/run_history.h"
#include "interactions_cron/sink.h"
#include "interactions_cron/spi_plans.h"
#include "interactions_cron/tenants.h"
#include "interactions_cron/watermark.h"
#include "interactions_cron/worker_pool.h"

/* One call: its tenants and what became of them. */
typedef struct ExportRun
{
	ExportSink *sink;
	bool		dryRun;
	TimestampTz watermark;
	List	   *tenants;		/* TenantToExport, in id order */
	TenantOutcome **outcomes;	/* one per tenant, same order */
	WorkerAssignment *assignment;	/* the tenants with work, and the workers */
} ExportRun;

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
 * CaughtUp says whether the tenant's rows up to the watermark are all
 * exported: it had none waiting, or its last batch was not full and ended
 * well.  A tenant held back (see HoldTenantsAheadOfClock), skipped or no
 * longer exported here is not.
 */
static bool
CaughtUp(const TenantToExport *tenant, const TenantOutcome *outcome)
{
	return outcome->error == NULL && !outcome->skipped && !outcome->notExported &&
		(!tenant->hasPendingRows || (outcome->batchesReported > 0 && !outcome->batchFull));
}

/*
 * AppendTenantJson appends one tenant's entry of the result: what all its
 * batches of the call exported, and whether it is caught up.
 */
static void
AppendTenantJson(StringInfo json, const TenantToExport *tenant, const TenantOutcome *outcome)
{
	ListCell   *cell;

	appendStringInfoString(json, "{\"tenantId\": ");
	escape_json(json, tenant->id);
	appendStringInfoString(json, ", \"tenantName\": ");
	if (tenant->name != NULL)
		escape_json(json, tenant->name);
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
	appendStringInfo(json, "], \"batches\": %d, \"caughtUp\": %s",
					 outcome->batches, CaughtUp(tenant, outcome) ? "true" : "false");

	if (outcome->batchFull)
		appendStringInfoString(json, ", \"batchFull\": true");
	if (outcome->skipped)
		appendStringInfoString(json, ", \"skipped\": true, \"reason\": \"tenant is being exported by another session\"");
	if (outcome->notExported)
		appendStringInfoString(json, ", \"skipped\": true, \"reason\": \"tenant is no longer exported here: out of the active tenants filter, or its state released to another database\"");
	if (outcome->error != NULL)
	{
		appendStringInfoString(json, ", \"error\": ");
		escape_json(json, outcome->error);
	}
	appendStringInfoChar(json, '}');
}

/*
 * RunResultJson builds the seed's summary: ok, totalExported, tenants; plus
 * the watermark, the number of workers and, for a dry run, dryRun.  Called
 * for a call cut short, it reports what the workers had committed.
 */
static Jsonb *
RunResultJson(void *state)
{
	ExportRun  *run = state;
	StringInfoData json;
	Jsonb	   *summary;
	uint64		totalExported = 0;
	bool		allOk = true;
	ListCell   *cell;

	for (int i = 0; i < list_length(run->tenants); i++)
	{
		totalExported += run->outcomes[i]->exported;
		allOk = allOk && run->outcomes[i]->error == NULL;
	}

	initStringInfo(&json);
	appendStringInfo(&json, "{\"ok\": %s, \"totalExported\": " UINT64_FORMAT ", \"watermark\": ",
					 allOk ? "true" : "false", totalExported);
	NdjsonAppendUtcTimestamp(&json, run->watermark);
	appendStringInfo(&json, ", \"workers\": %d",
					 run->assignment != NULL ? run->assignment->workersStarted : 0);
	if (run->sink->s3 != NULL)
	{
		appendStringInfoString(&json, ", \"storage\": \"s3\", \"location\": ");
		escape_json(&json, SinkLocation(run->sink));
		/* Where the credentials came from, never what they are. */
		appendStringInfoString(&json, ", \"credentials\": ");
		escape_json(&json, S3CredentialsSourceName(run->sink->s3->credentials));
	}
	if (run->dryRun)
		appendStringInfoString(&json, ", \"dryRun\": true");
	appendStringInfoString(&json, ", \"tenants\": [");
	foreach(cell, run->tenants)
	{
		if (foreach_current_index(cell) > 0)
			appendStringInfoString(&json, ", ");
		AppendTenantJson(&json, lfirst(cell), run->outcomes[foreach_current_index(cell)]);
	}
	appendStringInfoString(&json, "]}");

	summary = JsonbFromText(json.data);
	pfree(json.data);
	return summary;
}

/*
 * TimeBudget returns the call's time budget for catching up, in
 * microseconds: max_runtime when given (a database still on the 1.1 SQL
 * objects calls without it), else interactions_cron.max_runtime.  0 is off:
 * one batch per tenant.
 */
static int64
TimeBudget(FunctionCallInfo fcinfo)
{
	Interval   *span;
	int64		dayMicroseconds;
	int64		budget;

	if (PG_NARGS() < 4 || PG_ARGISNULL(3))
		return (int64) MaxRuntimeMs * 1000;
	span = PG_GETARG_INTERVAL_P(3);
	if (span->month != 0 ||
		pg_mul_s64_overflow(span->day, USECS_PER_DAY, &dayMicroseconds) ||
		pg_add_s64_overflow(dayMicroseconds, span->time, &budget) ||
		budget < 0 || budget > (int64) INT_MAX * 1000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_runtime must be an interval from 0 to %d days, without months or years",
						INT_MAX / (int) (USECS_PER_DAY / 1000)),
				 errhint("For example max_runtime => '50 minutes'; '0' means one batch per tenant.")));
	return budget;
}

/*
 * AssignPendingTenants returns the tenants with rows waiting (or an
 * unfinished batch to undo), with their outcomes to fill in.  A time budget
 * (not for a dry run, which moves no checkpoint) lets the workers take
 * further batches until drainDeadline.
 */
static WorkerAssignment *
AssignPendingTenants(ExportRun *run, int64 batchSize, TimestampTz drainDeadline)
{
	WorkerAssignment *assignment = palloc0(sizeof(WorkerAssignment));
	ListCell   *cell;

	assignment->watermark = run->watermark;
	assignment->batchSize = batchSize;
	assignment->dryRun = run->dryRun;
	assignment->drainDeadline = run->dryRun ? 0 : drainDeadline;
	assignment->tenantIds = palloc(sizeof(char *) * Max(list_length(run->tenants), 1));
	assignment->outcomes = palloc(sizeof(TenantOutcome *) * Max(list_length(run->tenants), 1));
	foreach(cell, run->tenants)
	{
		TenantToExport *tenant = lfirst(cell);

		if (!tenant->hasPendingRows)
			continue;
		assignment->tenantIds[assignment->tenantCount] = tenant->id;
		assignment->outcomes[assignment->tenantCount] = run->outcomes[foreach_current_index(cell)];
		assignment->tenantCount++;
	}
	return assignment;
}

/*
 * HoldTenantsAheadOfClock fails, unexported, the tenants whose checkpoint is
 * ahead of this server's clock (a switchover to a server whose clock is
 * behind the old primary's, or a clock stepped back), with a warning: rows
 * written now get created values behind their checkpoint, which the export
 * has moved past.  They are held back every run until the clock has passed
 * their checkpoint; doc/operations.md ("Clock behind a checkpoint") says how
 * to export those rows.
 */
static void
HoldTenantsAheadOfClock(ExportRun *run)
{
	ListCell   *cell;
	int			held = 0;

	foreach(cell, run->tenants)
	{
		TenantToExport *tenant = lfirst(cell);

		if (!tenant->aheadOfClock)
			continue;
		tenant->hasPendingRows = false;
		run->outcomes[foreach_current_index(cell)]->error =
			"not exported: its checkpoint is ahead of this server's clock, and rows written now would lie behind it";
		held++;
	}
	if (held > 0)
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("interactions_cron: %d tenants held back: their checkpoint is ahead of this server's clock", held),
				 errdetail("Rows written while the clock is behind a checkpoint get created values the export has moved past."),
				 errhint("Correct the server's clock (NTP); then export the rows written since the switchover as \"Clock behind a checkpoint\" in doc/operations.md says.")));
}

/*
 * FailAll fails every assigned tenant with one error, exporting nothing.
 */
static void
FailAll(WorkerAssignment *assignment, const char *error)
{
	for (int i = 0; i < assignment->tenantCount; i++)
		assignment->outcomes[i]->error = pstrdup(error);
}

/*
 * ExportBody exports the rows of every active tenant (or one) created since
 * its checkpoint and returns the run's summary.
 */
static Jsonb *
ExportBody(FunctionCallInfo fcinfo, JobProgress *progress)
{
	MemoryContext runContext = CurrentMemoryContext;
	TimestampTz callStarted = GetCurrentTimestamp();
	ExportRun  *run = palloc0(sizeof(ExportRun));
	char	   *onlyTenantId = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	int64		batchSize = PG_ARGISNULL(0) ? DefaultBatchSize : PG_GETARG_INT32(0);
	ConfiguredTable tenantsTable;
	ConfiguredTable historyTable;
	char	   *silentTransaction;
	int64		budget = TimeBudget(fcinfo);

	run->dryRun = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
	if (batchSize < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be at least 1, not " INT64_FORMAT, batchSize)));
	RequireReadCommitted();
	RequireUtf8Database();
	run->sink = SinkFromSettings(run->dryRun);

	ConnectSpi();
	ResolveExportTables(&tenantsTable, &historyTable);
	if (onlyTenantId != NULL)
		RequireTenant(&tenantsTable, onlyTenantId, true);
	run->watermark = ExportWatermark(&silentTransaction) - CreatedRounding(&historyTable);
	run->tenants = ListActiveTenants(&tenantsTable, &historyTable, run->watermark,
									 onlyTenantId, runContext);
	FinishSpi();
	MemoryContextSwitchTo(runContext);

	run->outcomes = palloc(sizeof(TenantOutcome *) * Max(list_length(run->tenants), 1));
	for (int i = 0; i < list_length(run->tenants); i++)
		run->outcomes[i] = palloc0(sizeof(TenantOutcome));
	progress->describe = RunResultJson;
	progress->state = run;

	HoldTenantsAheadOfClock(run);
	run->assignment = AssignPendingTenants(run, batchSize, budget > 0 ? callStarted + budget : 0);
	run->assignment->handOff = progress->handOff;
	if (silentTransaction != NULL)
		FailAll(run->assignment, silentTransaction);
	else
		RunExportWorkers(run->assignment);
	progress->committedElsewhere = run->assignment->workersStarted > 0;
	InjectFault(FAULT_POINT_AFTER_WORKERS, NULL);
	return RunResultJson(run);
}

/* PostgreSQL 15's PG_FUNCTION_INFO_V1 exports only the info function. */
PGDLLEXPORT Datum export_interactions(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(export_interactions);

/*
 * export_interactions(batch_size, tenant_id, dry_run, max_runtime) runs the
 * export and records the call in interactions_cron.job_runs.  The 1.0 and
 * 1.1 SQL functions have no max_runtime.
 */
Datum
export_interactions(PG_FUNCTION_ARGS)
{
	RequireUsableDatabase();
	PG_RETURN_JSONB_P(RunRecordedJob("export", ExportBody, fcinfo, true));
}
