/*
 * run_history.c
 *	  Recording every call of export_interactions() and cleanup() in
 *	  interactions_cron.job_runs, whoever made it (a DBA, pg_cron, HTTP).
 *
 * A finished call of a job whose work is the caller's transaction's
 * (cleanup, reset_checkpoint) inserts its row in that transaction, so the row
 * lives and dies with the work it describes.  A call that raises an error
 * cannot do that: its transaction is about to abort.  Neither can the export,
 * whose workers commit each tenant's batch on their own: a caller that rolls
 * back (BEGIN; SELECT export_interactions(); ROLLBACK) keeps its files and
 * moved checkpoints.  Those rows are written in a transaction of their own,
 * as pg_cron does for job_run_details, before the error, if any, is raised
 * again: by the export's first worker, which waits for the run once its
 * tenants are done (run_hand_off.c), so the row needs no worker slot besides
 * the one the export already holds; or, for a call that has no such worker
 * (a failed cleanup, an export that failed or was stopped before that
 * worker was done), by a short-lived recorder worker, which needs a free
 * slot.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "interactions_cron/ndjson.h"
#include "interactions_cron/preconditions.h"
#include "interactions_cron/run_hand_off.h"
#include "interactions_cron/run_history.h"
#include "interactions_cron/spi_plans.h"
#include "interactions_cron/subtransaction.h"
#include "interactions_cron/worker_pool.h"

#define RUN_ROW_SQL \
	"INSERT INTO interactions_cron.job_runs (job, started_at, finished_at, ok, result, error, run_by)" \
	" VALUES ($1, $2, pg_catalog.clock_timestamp(), $3, $4, $5, $6)" \
	" RETURNING id, started_at, finished_at"
/* The run's id and duration in seconds, for the log line. */
#define RUN_LOGGED_SQL \
	" SELECT run.id, pg_catalog.date_part('epoch', run.finished_at - run.started_at) FROM run"
/* 1.1's objects: the row only. */
#define INSERT_RUN_SQL "WITH run AS (" RUN_ROW_SQL ")" RUN_LOGGED_SQL
/*
 * 1.2's: the row, and the totals the metrics report, added to in the same
 * transaction.  $7 is the outcome.  A cleanup's deletions count only when it
 * succeeded: a failed one's are rolled back.
 */
#define INSERT_RUN_WITH_TOTALS_SQL \
	"WITH run AS (" RUN_ROW_SQL ")," \
	" counted AS (" \
	"  INSERT INTO interactions_cron.job_run_totals AS t" \
	"   (job, outcome, runs, last_started_at, last_finished_at)" \
	"  SELECT $1, $7, 1, run.started_at, run.finished_at FROM run" \
	"  ON CONFLICT (job, outcome) DO UPDATE SET runs = t.runs + 1," \
	"   last_started_at = excluded.last_started_at, last_finished_at = excluded.last_finished_at)," \
	" cleaned AS (" \
	"  INSERT INTO interactions_cron.cleanup_totals AS t (kind, total)" \
	"  SELECT k.kind, ($4 -> 'cleaned' ->> k.key)::bigint" \
	"  FROM (VALUES ('expiredSuppressions', 'expired_suppressions')," \
	"               ('oldDailySummaries', 'old_daily_summaries')," \
	"               ('oldRunHistory', 'old_run_history')," \
	"               ('partitionsEnsured', 'partitions_ensured')) AS k(key, kind)" \
	"  WHERE $1 = 'cleanup' AND $7 = 'ok' AND ($4 -> 'cleaned') ? k.key" \
	"  ON CONFLICT (kind) DO UPDATE SET total = t.total + excluded.total)" \
	RUN_LOGGED_SQL

/* How long a call waits for its run to be recorded by the worker. */
#define RECORDER_WAIT_MS 10000

/*
 * How long a call waits for a worker slot for the recorder: the slots of
 * its own export workers are free only once the postmaster has reaped them.
 */
#define RECORDER_SLOT_WAIT_MS 5000

/* A run handed to its recorder through shared memory. */
struct RecordedRun
{
	Oid			databaseId;
	TimestampTz startedAt;
	bool		ok;
	char		jobName[NAMEDATALEN];
	char		runBy[NAMEDATALEN];
	Size		summaryOffset;	/* 0: no summary; else the jsonb text at that offset */
	bool		hasError;
	bool		recorded;		/* set by the recorder once its row committed */
	char		error[FLEXIBLE_ARRAY_MEMBER];
};

PGDLLEXPORT void RecordRunMain(Datum argument);

static SPIPlanPtr insertRunPlan = NULL;
static SPIPlanPtr insertRunWithTotalsPlan = NULL;

static bool JsonbFlag(Jsonb *summary, const char *key, const char *expected);

/*
 * RunOutcome names a run's outcome: failed, skipped (a cleanup that found
 * another one running) or ok.
 */
static const char *
RunOutcome(bool ok, Jsonb *summary)
{
	if (!ok)
		return "failed";
	if (summary != NULL && JsonbFlag(summary, "status", "skipped"))
		return "skipped";
	return "ok";
}

/*
 * LogRun writes the run's outcome to the server log in one line, with the
 * id of its job_runs row, for alerting on the log alone.  The line is
 * written when the row is, so a row the caller then rolls back (a cleanup
 * in a transaction) leaves the line behind.
 */
static void
LogRun(const char *jobName, int64 runId, const char *outcome, double seconds,
	   const char *runBy, const char *error)
{
	ereport(LOG,
			(errmsg("interactions_cron: %s run " INT64_FORMAT " %s in %.3f s (run by %s)%s%s",
					jobName, runId, outcome, seconds, runBy, error ? ": " : "", error ? error : ""),
			 errhidestmt(true)));
}

/*
 * InsertRunRow inserts one job_runs row through SPI in the current
 * transaction, as the extension's owner: callers may read the history but
 * not write it, so no row can claim another role's run.  With 1.2's
 * objects it adds the run to the totals too.  Then it logs the run.
 * summary and error may be NULL.
 */
static void
InsertRunRow(const char *jobName, TimestampTz startedAt, bool ok,
			 Jsonb *summary, const char *error, const char *runBy)
{
	const char *outcome = RunOutcome(ok, summary);
	Oid			argumentTypes[7] = {TEXTOID, TIMESTAMPTZOID, BOOLOID, JSONBOID, TEXTOID, NAMEOID, TEXTOID};
	Datum		values[7] = {
		CStringGetTextDatum(jobName),
		TimestampTzGetDatum(startedAt),
		BoolGetDatum(ok),
		summary ? JsonbPGetDatum(summary) : (Datum) 0,
		error ? CStringGetTextDatum(error) : (Datum) 0,
		DirectFunctionCall1(namein, CStringGetDatum(runBy)),
		CStringGetTextDatum(outcome)
	};
	char		nulls[7] = {' ', ' ', ' ', summary ? ' ' : 'n', error ? ' ' : 'n', ' ', ' '};
	bool		isNull;

	ConnectSpi();
	if (SqlObjectsAre1_2())
		(void) RunStatementAsOwner(&insertRunWithTotalsPlan, INSERT_RUN_WITH_TOTALS_SQL, 7,
								   argumentTypes, values, nulls, SPI_OK_SELECT, "record the run");
	else
		(void) RunStatementAsOwner(&insertRunPlan, INSERT_RUN_SQL, 7, argumentTypes, values, nulls,
								   SPI_OK_SELECT, "record the run");
	LogRun(jobName,
		   DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isNull)),
		   outcome,
		   DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isNull)),
		   runBy, error);
	FinishSpi();
}

/*
 * CommitRecordedRun writes the run's row in a transaction of its own and
 * commits it.  The caller is a background worker connected to the run's
 * database.
 */
void
CommitRecordedRun(const RecordedRun *run)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "recording an interactions_cron run");

	InsertRunRow(run->jobName, run->startedAt, run->ok,
				 run->summaryOffset == 0 ? NULL : JsonbFromText((char *) run + run->summaryOffset),
				 run->hasError ? run->error : NULL, run->runBy);

	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * RecordRunMain is the background worker that writes a run's row and
 * commits it, independently of the caller's transaction.
 */
void
RecordRunMain(Datum argument)
{
	dsm_segment *segment;
	RecordedRun *run;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	CurrentResourceOwner = ResourceOwnerCreate(NULL, "interactions_cron run recorder");
	segment = dsm_attach(DatumGetUInt32(argument));
	if (segment == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("interactions_cron run recorder could not attach to its shared memory")));
	run = dsm_segment_address(segment);
	/* Attached: the segment now lives as long as this worker needs it. */
	dsm_unpin_segment(dsm_segment_handle(segment));

	/* The caller's role may be NOLOGIN (reached by SET ROLE); the row is the extension's. */
	BackgroundWorkerInitializeConnectionByOid(run->databaseId, BOOTSTRAP_SUPERUSERID, 0);
	CommitRecordedRun(run);
	run->recorded = true;
	dsm_detach(segment);
}

/*
 * WaitForRecorder waits, at most RECORDER_WAIT_MS and cancellably, for the
 * worker recording the run to finish, and says whether it recorded it
 * (*recorded, which the worker sets once its row committed).  The worker
 * holds what it needs, so giving up early (a cancel) loses nothing: it goes
 * on by itself.
 */
bool
WaitForRecorder(BackgroundWorkerHandle *handle, const char *jobName, volatile bool *recorded)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), RECORDER_WAIT_MS);
	pid_t		pid;

	while (GetBackgroundWorkerPid(handle, &pid) != BGWH_STOPPED)
	{
		if (GetCurrentTimestamp() >= deadline)
		{
			ereport(WARNING,
					(errmsg("the run history row of the %s call was not written within %d s",
							jobName, RECORDER_WAIT_MS / 1000),
					 errdetail("The recording worker (PID %d) goes on; a lock on interactions_cron.job_runs may hold it.",
							   (int) pid)));
			return true;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 100,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	pg_read_barrier();
	if (!*recorded)
		ereport(WARNING,
				(errmsg("the recording worker could not write the run history row of the %s call",
						jobName),
				 errhint("The server log holds its error.")));
	return *recorded;
}

/*
 * RegisterRecorder starts the recording worker, waiting (cancellably) up to
 * RECORDER_SLOT_WAIT_MS for a free worker slot, and says whether it started.
 */
static bool
RegisterRecorder(BackgroundWorker *worker, BackgroundWorkerHandle **handle)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), RECORDER_SLOT_WAIT_MS);

	while (!RegisterDynamicBackgroundWorker(worker, handle))
	{
		if (GetCurrentTimestamp() >= deadline)
			return false;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 20,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	return true;
}

/*
 * DescribeRun lays a run out in one palloc'd block (error and summary may be
 * NULL) and returns it and its size.
 */
RecordedRun *
DescribeRun(const char *jobName, TimestampTz startedAt, bool ok, const char *error,
			Jsonb *summary, const char *runBy, Size *size)
{
	Size		errorLength = error ? strlen(error) + 1 : 1;
	char	   *summaryText = summary ? JsonbToCString(NULL, &summary->root, VARSIZE(summary)) : NULL;
	Size		summaryLength = summaryText ? strlen(summaryText) + 1 : 0;
	RecordedRun *run;

	*size = offsetof(RecordedRun, error) + errorLength + summaryLength;
	run = palloc0(*size);
	run->databaseId = MyDatabaseId;
	run->startedAt = startedAt;
	run->ok = ok;
	run->hasError = error != NULL;
	strlcpy(run->jobName, jobName, sizeof(run->jobName));
	strlcpy(run->runBy, runBy, sizeof(run->runBy));
	memcpy(run->error, error ? error : "", errorLength);
	if (summaryText != NULL)
	{
		run->summaryOffset = offsetof(RecordedRun, error) + errorLength;
		memcpy((char *) run + run->summaryOffset, summaryText, summaryLength);
	}
	return run;
}

/*
 * StartRecorder starts the recording worker for a run and waits for it.  It
 * returns false, after a warning, when no worker slot came free within
 * RECORDER_SLOT_WAIT_MS or the worker failed; true once the row is written,
 * or when the worker goes on past the wait.
 */
static bool
StartRecorder(const RecordedRun *described, Size size)
{
	dsm_segment *segment = dsm_create(size, 0);
	RecordedRun *run = dsm_segment_address(segment);
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	bool		recorded;

	memcpy(run, described, size);
	DescribeDynamicWorker(&worker, "RecordRunMain", "interactions_cron run recorder", segment);

	/* The worker unpins it once attached, whatever happens to this call meanwhile. */
	dsm_pin_segment(segment);
	recorded = RegisterRecorder(&worker, &handle);
	if (!recorded)
	{
		dsm_unpin_segment(dsm_segment_handle(segment));
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start a worker to record the %s run in interactions_cron.job_runs",
						run->jobName),
				 errdetail("The call has no worker of its own waiting to record it."),
				 errhint("Raise max_worker_processes.")));
	}
	else
		recorded = WaitForRecorder(handle, run->jobName, &run->recorded);

	dsm_detach(segment);
	return recorded;
}

/*
 * RecordRunOnItsOwn records a run (error may be NULL) in a transaction of
 * its own: through the call's worker that waits for it when there is one
 * (see the hand-off), else through the recording worker.  It returns false,
 * after a warning, when the run could not be recorded so.
 */
static bool
RecordRunOnItsOwn(RunHandOff *handOff, const char *jobName, TimestampTz startedAt, bool ok,
				  const char *error, Jsonb *summary, const char *runBy)
{
	Size		size;
	RecordedRun *run = DescribeRun(jobName, startedAt, ok, error, summary, runBy, &size);
	RunHandOverResult handedOver = RUN_NOT_HANDED_OVER;

	if (handOff != NULL && RunRecorderWaits(handOff))
		handedOver = HandOverRun(handOff, run, size);
	if (handOff != NULL)
		ReleaseRunHandOff(handOff);
	if (handedOver == RUN_NOT_HANDED_OVER)
		return StartRecorder(run, size);
	return handedOver == RUN_RECORDED;
}

/*
 * JsonbFlag says whether the summary's top-level key holds the scalar text
 * expected (true, "ok", ...).
 */
static bool
JsonbFlag(Jsonb *summary, const char *key, const char *expected)
{
	JsonbValue	keyValue;
	JsonbValue *found;
	char	   *text;

	keyValue.type = jbvString;
	keyValue.val.string.val = (char *) key;
	keyValue.val.string.len = strlen(key);
	found = findJsonbValueFromContainer(&summary->root, JB_FOBJECT, &keyValue);
	if (found == NULL)
		return false;
	if (found->type == jbvBool)
		text = found->val.boolean ? "true" : "false";
	else if (found->type == jbvString)
		text = pnstrdup(found->val.string.val, found->val.string.len);
	else
		return false;
	return strcmp(text, expected) == 0;
}

/* A job's body and its summary, as run inside the job's subtransaction. */
typedef struct JobCall
{
	JobBody		body;
	FunctionCallInfo fcinfo;
	Jsonb	   *summary;
	JobProgress progress;
} JobCall;

/*
 * RunJobCall is the body of a job's subtransaction.
 */
static void
RunJobCall(void *argument)
{
	JobCall    *call = argument;

	call->summary = call->body(call->fcinfo, &call->progress);
}

/*
 * RunRecordedJob runs a job's body in a subtransaction and records the call
 * with the session user as run_by, the role that logged in (or pg_cron's
 * job owner), whatever role it has SET ROLE to.  A failed call is recorded
 * in a transaction of its own (RecordRunOnItsOwn), with what the body
 * reports it had done, before the error is raised again (with the body's
 * own transaction's work undone; work it committed elsewhere stays).  A
 * finished call is recorded in the caller's transaction, or, when
 * workCommitsOnItsOwn, on its own too (or, if that fails, in the caller's
 * transaction); a call that succeeded and committed nothing elsewhere (an
 * export that started no worker) is recorded in the caller's transaction at
 * once, needing no worker to record it; a failed one is recorded on its own
 * all the same, so that a caller's ROLLBACK keeps the failure.
 */
Jsonb *
RunRecordedJob(const char *jobName, JobBody body, FunctionCallInfo fcinfo,
			   bool workCommitsOnItsOwn)
{
	MemoryContext callerContext = CurrentMemoryContext;
	TimestampTz startedAt = GetCurrentTimestamp();
	char	   *runBy = GetUserNameFromId(GetSessionUserId(), false);
	JobCall		call = {body, fcinfo, NULL, {NULL, NULL, NULL, false}};
	ErrorData  *error;
	bool		ok;
	bool		recordHere;

	/* Made before the job's subtransaction, it outlives the job's error. */
	if (workCommitsOnItsOwn)
		call.progress.handOff = CreateRunHandOff(jobName, startedAt, runBy);
	error = RunInSubtransaction(RunJobCall, &call);
	if (error != NULL)
	{
		Jsonb	   *partial = call.progress.describe ? call.progress.describe(call.progress.state) : NULL;

		(void) RecordRunOnItsOwn(call.progress.handOff, jobName, startedAt, false, error->message,
								 partial, runBy);
		ReThrowError(error);
	}

	ok = JsonbFlag(call.summary, "ok", "true") || JsonbFlag(call.summary, "status", "ok") ||
		JsonbFlag(call.summary, "status", "skipped");
	recordHere = !workCommitsOnItsOwn || (ok && !call.progress.committedElsewhere);
	if (recordHere && call.progress.handOff != NULL)
		ReleaseRunHandOff(call.progress.handOff);
	if (recordHere ||
		!RecordRunOnItsOwn(call.progress.handOff, jobName, startedAt, ok, NULL, call.summary, runBy))
		InsertRunRow(jobName, startedAt, ok, call.summary, NULL, runBy);
	MemoryContextSwitchTo(callerContext);
	return call.summary;
}
