/*
 * tenant_export.c
 *	  One tenant's batch, in short transactions of its own.
 *
 * Transaction A claims the tenant (its checkpoint row, SKIP LOCKED), removes
 * whatever an unfinished earlier batch left (its intent), streams the rows
 * after the checkpoint and before the watermark into temporary files, and
 * commits an intent naming the files.  Transaction B claims the tenant again,
 * checks the intent is still its own, places the files, moves the checkpoint
 * and deletes the intent.  Locks, XIDs and snapshots live for one tenant's
 * batch; a failure anywhere leaves either nothing or an intent that the next
 * claim of the tenant undoes.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "nodes/params.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "interactions_cron/batch_receiver.h"
#include "interactions_cron/checkpoint.h"
#include "interactions_cron/guc.h"
#include "interactions_cron/intent.h"
#include "interactions_cron/relations.h"
#include "interactions_cron/spi_plans.h"
#include "interactions_cron/tenant_export.h"

/* Parameters of the batch query: tenant, position (created_at, id), watermark, limit. */
static const Oid RowsQueryTypes[5] = {TEXTOID, TIMESTAMPTZOID, INT8OID, TIMESTAMPTZOID, INT8OID};

/* One tenant's batch while it is being exported. */
typedef struct TenantBatch
{
	const char *tenantId;
	TenantOutcome *outcome;
	BatchReceiver *receiver;	/* set once rows are streamed: its files */
	char	   *intentToken;	/* set once the intent is committed */
} TenantBatch;

/*
 * StartTenantTransaction begins one of a tenant's transactions, with a
 * statement start of its own so that the watermark of concurrent exports
 * sees when it really began.
 */
static void
StartTenantTransaction(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
	ConnectSpi();
}

/*
 * CommitTenantTransaction commits it and returns to the tenant's context.
 */
static void
CommitTenantTransaction(MemoryContext tenantContext)
{
	FinishSpi();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextSwitchTo(tenantContext);
}

/*
 * CommitWithSynchronousCommit commits the tenant's transaction with
 * synchronous_commit set to level for that commit only.
 */
static void
CommitWithSynchronousCommit(MemoryContext tenantContext, int level)
{
	int			callerSynchronousCommit = synchronous_commit;

	synchronous_commit = level;
	PG_TRY();
	{
		CommitTenantTransaction(tenantContext);
	}
	PG_FINALLY();
	{
		synchronous_commit = callerSynchronousCommit;
	}
	PG_END_TRY();
}

/*
 * CommitIntent commits transaction A, with its intent, flushed to disk at
 * least locally whatever the caller's synchronous_commit: no file may be
 * placed before the intent naming it is durable.
 */
static void
CommitIntent(MemoryContext tenantContext)
{
	CommitWithSynchronousCommit(tenantContext,
								Max(synchronous_commit, SYNCHRONOUS_COMMIT_LOCAL_FLUSH));
}

/*
 * CommitPlacedBatch commits transaction B without waiting for its WAL to be
 * flushed.  Losing that commit in a crash loses nothing: the intent, which
 * transaction A committed durably before any file was placed, comes back
 * with it, and the next claim removes the placed files and exports the rows
 * again.  It saves one WAL flush per tenant.
 */
static void
CommitPlacedBatch(MemoryContext tenantContext)
{
	CommitWithSynchronousCommit(tenantContext, SYNCHRONOUS_COMMIT_OFF);
}

/*
 * PrepareRowsPlan prepares the batch query, kept for the worker's life: the
 * tenant's rows after its position and before the watermark, in keyset
 * order, at most $5 of them.  Each tenant's execution is planned with its
 * values, so the partitions outside its range are pruned at plan time.
 */
static SPIPlanPtr
PrepareRowsPlan(void)
{
	ConfiguredTable history = ResolveHistoryTable();
	char	   *sql = psprintf("SELECT h.* FROM %s h"
							   " WHERE h.tenant_id = $1"
							   " AND (h.created_at, h.id) > ($2, $3)"
							   " AND h.created_at < $4"
							   " ORDER BY h.created_at, h.id"
							   " LIMIT $5",
							   history.quotedName);
	SPIPlanPtr	plan = NULL;

	return PreparedPlan(&plan, sql, lengthof(RowsQueryTypes), (Oid *) RowsQueryTypes);
}

/*
 * CreateTenantExporter sets up what a worker exports with: the sink and the
 * batch query, checked in a transaction of their own.
 */
TenantExporter *
CreateTenantExporter(TimestampTz watermark, int64 batchSize, bool dryRun)
{
	MemoryContext workerContext = AllocSetContextCreate(TopMemoryContext,
														"interactions_cron export worker",
														ALLOCSET_DEFAULT_SIZES);
	TenantExporter *exporter = MemoryContextAllocZero(workerContext, sizeof(TenantExporter));

	exporter->watermark = watermark;
	exporter->batchSize = batchSize;
	exporter->dryRun = dryRun;
	exporter->tenantContext = AllocSetContextCreate(workerContext,
													"interactions_cron tenant",
													ALLOCSET_DEFAULT_SIZES);

	StartTenantTransaction("preparing an interactions_cron export");
	MemoryContextSwitchTo(workerContext);
	exporter->sink = SinkFromSettings(dryRun);
	exporter->rowsPlan = PrepareRowsPlan();
	CommitTenantTransaction(workerContext);
	return exporter;
}

/*
 * StreamBatch runs the batch query with rows going straight to the receiver.
 */
static void
StreamBatch(TenantExporter *exporter, const char *tenantId, CheckpointPosition from,
			BatchReceiver *receiver)
{
	ParamListInfo parameters = makeParamList(lengthof(RowsQueryTypes));
	SPIExecuteOptions options;
	Datum		values[lengthof(RowsQueryTypes)] = {
		CStringGetTextDatum(tenantId),
		TimestampTzGetDatum(from.createdAt),
		Int64GetDatum(from.id),
		TimestampTzGetDatum(exporter->watermark),
		Int64GetDatum(exporter->batchSize)
	};
	int			code;

	for (int i = 0; i < (int) lengthof(RowsQueryTypes); i++)
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
	code = SPI_execute_plan_extended(exporter->rowsPlan, &options);
	if (code != SPI_OK_UTILITY)
		elog(ERROR, "export query failed: %s", SPI_result_code_string(code));
}

/*
 * NoteBatch records the streamed batch in the outcome, in the tenant's context.
 */
static void
NoteBatch(TenantExporter *exporter, TenantBatch *batch)
{
	MemoryContext callerContext = MemoryContextSwitchTo(exporter->tenantContext);
	ListCell   *cell;

	batch->outcome->exported = batch->receiver->rowCount;
	batch->outcome->batchFull = batch->receiver->rowCount == (uint64) exporter->batchSize;
	foreach(cell, batch->receiver->files)
		batch->outcome->files = lappend(batch->outcome->files,
										((SinkFile *) lfirst(cell))->relativePath);
	MemoryContextSwitchTo(callerContext);
}

/*
 * WriteBatch is transaction A: claim, undo an unfinished batch, stream the
 * rows into temporary files, and commit the intent to place them.  It
 * returns false when there is nothing to place.
 */
static bool
WriteBatch(TenantExporter *exporter, TenantBatch *batch)
{
	CheckpointPosition from;

	StartTenantTransaction("exporting an interactions_cron tenant");
	if (exporter->dryRun)
		from = CheckpointRead(batch->tenantId);
	else if (!CheckpointClaim(batch->tenantId, false, &from))
	{
		batch->outcome->skipped = true;
		CommitTenantTransaction(exporter->tenantContext);
		return false;
	}
	else
		(void) IntentClear(batch->tenantId);

	batch->receiver = CreateBatchReceiver(exporter->tenantContext, exporter->sink, batch->tenantId);
	SinkPurgeSpool(exporter->sink, batch->receiver->spoolDirectory);
	StreamBatch(exporter, batch->tenantId, from, batch->receiver);
	BatchReceiverFinish(batch->receiver);
	NoteBatch(exporter, batch);
	if (batch->receiver->rowCount == 0 || exporter->dryRun)
	{
		CommitTenantTransaction(exporter->tenantContext);
		return false;
	}

	batch->intentToken = MemoryContextStrdup(exporter->tenantContext,
											 IntentRecord(batch->tenantId, exporter->sink,
														  batch->receiver->files,
														  batch->receiver->rowCount));
	CommitIntent(exporter->tenantContext);
	return true;
}

/*
 * PlaceFiles makes the batch's files visible, one after the other.
 */
static void
PlaceFiles(TenantExporter *exporter, TenantBatch *batch)
{
	ListCell   *cell;

	InjectFault(FAULT_POINT_BEFORE_PLACE, batch->tenantId);
	foreach(cell, batch->receiver->files)
	{
		if (foreach_current_index(cell) > 0)
			InjectFault(FAULT_POINT_BETWEEN_FILES, batch->tenantId);
		exporter->sink->ops->place(exporter->sink, lfirst(cell));
	}
}

/*
 * PlaceBatch is transaction B: claim again, check that nobody took over the
 * intent while no claim was held, place the files, move the checkpoint and
 * delete the intent, all committed together.
 */
static void
PlaceBatch(TenantExporter *exporter, TenantBatch *batch)
{
	CheckpointPosition unused;
	BatchReceiver *receiver = batch->receiver;

	StartTenantTransaction("placing an interactions_cron tenant's files");
	if (!CheckpointClaim(batch->tenantId, false, &unused) ||
		!IntentIsOurs(batch->tenantId, batch->intentToken))
	{
		/* Another export claimed the tenant in between: it undoes this batch. */
		SinkAbortFiles(exporter->sink, receiver->files);
		batch->outcome->skipped = true;
		batch->outcome->exported = 0;
		batch->outcome->files = NIL;
		CommitTenantTransaction(exporter->tenantContext);
		return;
	}

	PlaceFiles(exporter, batch);
	CheckpointRecordSuccess(batch->tenantId, receiver->lastRow, receiver->rowCount,
							list_length(receiver->files),
							((SinkFile *) llast(receiver->files))->relativePath);
	IntentForget(batch->tenantId);
	InjectFault(FAULT_POINT_AFTER_PLACE, batch->tenantId);
	CommitPlacedBatch(exporter->tenantContext);
}

/*
 * RecordFailure marks the tenant failed, in a transaction of its own, unless
 * another export holds it by now.
 */
static void
RecordFailure(TenantExporter *exporter, TenantBatch *batch, const char *message)
{
	CheckpointPosition unused;

	StartTenantTransaction("recording an interactions_cron tenant's failure");
	if (CheckpointClaim(batch->tenantId, false, &unused))
		CheckpointRecordFailure(batch->tenantId, message);
	CommitTenantTransaction(exporter->tenantContext);
}

/*
 * RemoveOwnIntentFiles removes what the batch placed, if it had committed
 * its intent, so that readers do not see those rows until the retry.  If
 * that fails too (the store is down), the intent stays, and the next claim
 * of the tenant removes the files before anything else.
 */
static void
RemoveOwnIntentFiles(TenantExporter *exporter, TenantBatch *batch)
{
	CheckpointPosition unused;

	PG_TRY();
	{
		StartTenantTransaction("undoing an interactions_cron tenant's batch");
		if (CheckpointClaim(batch->tenantId, false, &unused) &&
			IntentIsOurs(batch->tenantId, batch->intentToken))
			(void) IntentClear(batch->tenantId);
		CommitTenantTransaction(exporter->tenantContext);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(exporter->tenantContext);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(exporter->tenantContext);
	}
	PG_END_TRY();
}

/*
 * UndoFailedBatch runs after a tenant's transaction aborted: it deletes the
 * batch's temporary files, marks the tenant failed, and removes what the
 * batch placed.
 */
static void
UndoFailedBatch(TenantExporter *exporter, TenantBatch *batch, const char *message)
{
	if (batch->receiver != NULL)
		SinkAbortFiles(exporter->sink, batch->receiver->files);
	if (exporter->dryRun)
		return;
	RecordFailure(exporter, batch, message);
	if (batch->intentToken != NULL)
		RemoveOwnIntentFiles(exporter, batch);
}

/*
 * ExportTenant exports one tenant's next batch and returns what happened,
 * allocated in the tenant's context.  An error fails this tenant only; a
 * cancel or termination ends the worker.
 */
TenantOutcome *
ExportTenant(TenantExporter *exporter, const char *tenantId)
{
	MemoryContext tenantContext = exporter->tenantContext;
	TenantBatch *batch = MemoryContextAllocZero(tenantContext, sizeof(TenantBatch));

	batch->tenantId = MemoryContextStrdup(tenantContext, tenantId);
	batch->outcome = MemoryContextAllocZero(tenantContext, sizeof(TenantOutcome));
	MemoryContextSwitchTo(tenantContext);

	PG_TRY();
	{
		if (WriteBatch(exporter, batch))
			PlaceBatch(exporter, batch);
	}
	PG_CATCH();
	{
		ErrorData  *error;

		MemoryContextSwitchTo(tenantContext);
		error = CopyErrorData();
		if (error->sqlerrcode == ERRCODE_QUERY_CANCELED)
			PG_RE_THROW();
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(tenantContext);

		UndoFailedBatch(exporter, batch, error->message);
		batch->outcome->error = error->message;
		batch->outcome->exported = 0;
		batch->outcome->batchFull = false;
		batch->outcome->files = NIL;
	}
	PG_END_TRY();

	return batch->outcome;
}
