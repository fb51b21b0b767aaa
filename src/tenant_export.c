/*
 * tenant_export.c
 *	  Tenants' batches, each in short transactions of its own, placed and
 *	  made durable a group of batches at a time.
 *
 * Transaction A claims the tenant (its checkpoint row, SKIP LOCKED), removes
 * whatever an unfinished earlier batch left (its intent), streams the rows
 * after the checkpoint and before the watermark into temporary files, and
 * commits an intent naming the files.  A worker writes a group of tenants'
 * batches so, then flushes the WAL once: every intent of the group is
 * durable before any of its files is placed.  Transaction B1 claims each
 * tenant again, checks the intent is still its own and renames the files
 * into place; transaction B2 claims it once more, fsyncs the placed files,
 * moves the checkpoint and deletes the intent.  The kernel writes one
 * tenant's files back while the next tenants' are written, and the fsyncs
 * of a group share their journal commits: the cost of durability is paid
 * per group, not per file.  Locks, XIDs and snapshots still live for one
 * transaction of one tenant; a failure anywhere leaves either nothing or an
 * intent that the next claim of the tenant undoes.
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "nodes/params.h"
#include "pgstat.h"
#include "replication/syncrep.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "interactions_cron/batch_receiver.h"
#include "interactions_cron/checkpoint.h"
#include "interactions_cron/export_shared.h"
#include "interactions_cron/guc.h"
#include "interactions_cron/hive_path.h"
#include "interactions_cron/intent.h"
#include "interactions_cron/lake_sweep.h"
#include "interactions_cron/late_rows.h"
#include "interactions_cron/relations.h"
#include "interactions_cron/spi_plans.h"
#include "interactions_cron/standby_wait.h"
#include "interactions_cron/tenant_export.h"
#include "interactions_cron/tenants.h"

/*
 * Parameters of the batch query: tenant, position (created instant, id as
 * text or NULL), watermark, limit.
 */
static const Oid RowsQueryTypes[5] = {TEXTOID, TIMESTAMPTZOID, TEXTOID, TIMESTAMPTZOID, INT8OID};

/*
 * A group closes after this many tenants or this long after its first
 * tenant was written: a cancelled call or a crash redoes at most one group.
 */
#define GROUP_MAX_TENANTS 64
#define GROUP_MAX_MILLISECONDS 1000

/*
 * While a group holds written batches, a tenant's lock waits are cut short
 * after this long: the group is finished first, then the tenant is written
 * again, free to wait, so that one blocked tenant never holds back others.
 */
#define GROUP_LOCK_WAIT_MILLISECONDS 10

/* One tenant's batch while it is being exported. */
typedef struct TenantBatch
{
	const char *tenantId;
	MemoryContext context;		/* the batch's, a child of the group's */
	TenantOutcome *outcome;
	BatchReceiver *receiver;	/* set once rows are streamed: its files */
	char	   *intentToken;	/* set once the intent is committed */
	CheckpointPosition checkpoint;	/* where its rows start, as claimed */
	bool		confirmedHere;	/* the checkpoint ends a batch of this history */
	bool		historyUnrecorded;	/* the checkpoint had no lake_epoch when claimed */
	bool		pending;		/* its intent awaits the next transaction */
	bool		lockWaitCut;	/* its lock waits are cut short (see above) */
	bool		deferred;		/* it was, and must be written again */
} TenantBatch;

/* A step of a batch, run in a transaction of its own by RunBatchStep. */
typedef void (*BatchStep) (TenantExporter *exporter, TenantBatch *batch);

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
CommitTenantTransaction(MemoryContext batchContext)
{
	FinishSpi();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextSwitchTo(batchContext);
}

/*
 * CommitWithSynchronousCommit commits the tenant's transaction with
 * synchronous_commit set to level for that commit only.
 */
static void
CommitWithSynchronousCommit(MemoryContext batchContext, int level)
{
	int			callerSynchronousCommit = synchronous_commit;

	synchronous_commit = level;
	PG_TRY();
	{
		CommitTenantTransaction(batchContext);
	}
	PG_FINALLY();
	{
		synchronous_commit = callerSynchronousCommit;
	}
	PG_END_TRY();
}

/*
 * CommitWithoutFlush commits a tenant's transaction without waiting for its
 * WAL to be flushed.  Transaction A's intent is made durable, with the rest
 * of its group's, by MakeIntentsDurable before any file is placed; losing
 * transaction B1 (see PlaceBatch) or B2 in a crash loses nothing, since the
 * intent names what they placed (B2's delete of it comes undone with it),
 * and the next claim removes the placed files and exports the rows again.
 */
static void
CommitWithoutFlush(MemoryContext batchContext)
{
	CommitWithSynchronousCommit(batchContext, SYNCHRONOUS_COMMIT_OFF);
}

/*
 * PrepareRowsPlan prepares the batch query, kept for the worker's life: the
 * tenant's rows after its position (pastLastId: a position with a last id,
 * otherwise one without; see HistoryRowsFrom and HistoryRowsPast) and
 * before the watermark, in keyset order, at most $5 of them, with the mapped
 * columns compared and ordered in their own types (the parameters are
 * converted, never the columns), so the (tenant, created, id) index is used
 * as it is.  Two statements rather than one that tests for the last id, so
 * that each one's generic plan keeps its index bounds: it is planned as a
 * prepared statement is (PreparedStatementPlan), with sorts disabled (see
 * ExecuteBatchQuery).
 */
static SPIPlanPtr
PrepareRowsPlan(const ConfiguredTable *history, bool pastLastId)
{
	const MappedColumn *created = &history->columns[HISTORY_CREATED_COLUMN];
	const MappedColumn *id = &history->columns[HISTORY_ID_COLUMN];
	char	   *sql = psprintf("SELECT h.* FROM %s h"
							   " WHERE %s"
							   " AND h.%s < %s"
							   " ORDER BY h.%s, h.%s"
							   " LIMIT $5",
							   history->quotedName,
							   pastLastId ? HistoryRowsPast(history, "$1", "$2", "$3")
							   : HistoryRowsFrom(history, "$1", "$2"),
							   created->quotedName, InstantAsColumnType(created, "$4"),
							   created->quotedName, id->quotedName);
	SPIPlanPtr	plan = NULL;

	return PreparedStatementPlan(&plan, sql, lengthof(RowsQueryTypes), (Oid *) RowsQueryTypes);
}

/*
 * CreateTenantExporter sets up what a worker exports with: the sink and the
 * batch query, checked in a transaction of their own.  report receives each
 * tenant's outcome as soon as its batch has ended, with reportArgument; it
 * returns false once nobody listens any more.
 */
TenantExporter *
CreateTenantExporter(TimestampTz watermark, int64 batchSize, bool dryRun,
					 TenantOutcomeReport report, void *reportArgument)
{
	MemoryContext workerContext = AllocSetContextCreate(TopMemoryContext,
														"interactions_cron export worker",
														ALLOCSET_DEFAULT_SIZES);
	TenantExporter *exporter = MemoryContextAllocZero(workerContext, sizeof(TenantExporter));

	exporter->watermark = watermark;
	exporter->batchSize = batchSize;
	exporter->dryRun = dryRun;
	exporter->report = report;
	exporter->reportArgument = reportArgument;
	exporter->groupContext = AllocSetContextCreate(workerContext,
												   "interactions_cron tenant group",
												   ALLOCSET_DEFAULT_SIZES);

	StartTenantTransaction("preparing an interactions_cron export");
	MemoryContextSwitchTo(workerContext);
	exporter->sink = SinkFromSettings(dryRun);
	SinkWatchFileSystem(exporter->sink);
	exporter->tenants = ResolveTenantsTable();
	exporter->history = ResolveHistoryTable();
	exporter->lakeEpoch = CurrentLakeEpoch();
	exporter->lateRowsMemory = NewLateRowsMemory(workerContext);
	if (!dryRun)
		SinkSetOrigin(exporter->sink, CurrentHistoryId());
	exporter->rowsFromPlan = PrepareRowsPlan(&exporter->history, false);
	exporter->rowsPastPlan = PrepareRowsPlan(&exporter->history, true);
	PrepareTenantActivityPlan(&exporter->tenants);
	CommitTenantTransaction(workerContext);
	return exporter;
}

/* The batch query's execution, as RunAsRole hands it over. */
typedef struct BatchQuery
{
	SPIPlanPtr	plan;
	SPIExecuteOptions options;
} BatchQuery;

/*
 * ExecuteBatchQuery runs the batch query with its rows going to the
 * receiver, planned (when the plan cache plans it) with sorts disabled: a
 * generic plan, made for no tenant in particular, would otherwise expect a
 * few rows and sort them, which for a tenant with a large backlog is its
 * whole backlog at every batch, where the index's order reads no more than
 * the batch.  Where no index has that order, a sort is still made.  The
 * setting ends with RunAsRole; the owner's code the query reaches (a view,
 * a policy's function) is planned with it too, which can only change its
 * speed.
 */
static void
ExecuteBatchQuery(void *argument)
{
	BatchQuery *query = argument;
	int			code;

	(void) set_config_option("enable_sort", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	code = SPI_execute_plan_extended(query->plan, &query->options);
	/* SPI reports a SELECT whose rows went to a DestNone receiver as utility. */

	if (code != SPI_OK_UTILITY)
		elog(ERROR, "export query failed: %s", SPI_result_code_string(code));
}

/*
 * StreamBatch runs the batch query with rows going straight to the receiver,
 * as the history table's owner (see RunAsRole): a view, a policy or a type's
 * output function behind it is that owner's code.  The caller's right to
 * read the table was checked when the call began.
 */
static void
StreamBatch(TenantExporter *exporter, const char *tenantId, CheckpointPosition from,
			BatchReceiver *receiver)
{
	ParamListInfo parameters = makeParamList(lengthof(RowsQueryTypes));
	BatchQuery	query;
	Datum		values[lengthof(RowsQueryTypes)] = {
		CStringGetTextDatum(tenantId),
		TimestampTzGetDatum(from.createdAt),
		from.id != NULL ? CStringGetTextDatum(from.id) : (Datum) 0,
		TimestampTzGetDatum(exporter->watermark),
		Int64GetDatum(exporter->batchSize)
	};

	for (int i = 0; i < (int) lengthof(RowsQueryTypes); i++)
	{
		parameters->params[i].value = values[i];
		parameters->params[i].isnull = i == 2 && from.id == NULL;
		parameters->params[i].pflags = PARAM_FLAG_CONST;
		parameters->params[i].ptype = RowsQueryTypes[i];
	}

	memset(&query, 0, sizeof(query));
	query.plan = from.id != NULL ? exporter->rowsPastPlan : exporter->rowsFromPlan;
	query.options.params = parameters;
	query.options.read_only = false;	/* a fresh snapshot, taken after the watermark */
	query.options.dest = (DestReceiver *) receiver;
	RunAsRole(exporter->history.owner, ExecuteBatchQuery, &query);
}

/*
 * NoteBatch records the streamed batch in the outcome.
 */
static void
NoteBatch(TenantExporter *exporter, TenantBatch *batch)
{
	MemoryContext callerContext = MemoryContextSwitchTo(batch->context);
	ListCell   *cell;

	batch->outcome->exported = batch->receiver->rowCount;
	batch->outcome->batchFull = batch->receiver->rowCount == (uint64) exporter->batchSize;
	foreach(cell, batch->receiver->files)
		batch->outcome->files = lappend(batch->outcome->files,
										((SinkFile *) lfirst(cell))->relativePath);
	MemoryContextSwitchTo(callerContext);
}

/*
 * SkipBatch ends a batch that another export took over while this one held
 * no claim: that export undoes whatever this one wrote or placed.
 */
static void
SkipBatch(TenantExporter *exporter, TenantBatch *batch)
{
	SinkAbortFiles(exporter->sink, batch->receiver->files);
	batch->outcome->skipped = true;
	batch->outcome->exported = 0;
	batch->outcome->files = NIL;
	batch->pending = false;
}

/*
 * ReclaimBatch claims the tenant again and says whether the outstanding
 * intent is still this batch's; if not, the batch is skipped.
 */
static bool
ReclaimBatch(TenantExporter *exporter, TenantBatch *batch)
{
	if (CheckpointReclaim(batch->tenantId) &&
		IntentIsOurs(batch->tenantId, batch->intentToken))
		return true;
	SkipBatch(exporter, batch);
	return false;
}

/*
 * RefuseLateRows fails the tenant's batch when rows were written behind its
 * checkpoint after it was set (see late_rows.c): exporting on would pass
 * over them for ever.  It counts and names those of the day behind the
 * checkpoint, where it looks.
 */
static void
RefuseLateRows(TenantExporter *exporter, const char *tenantId, CheckpointPosition checkpoint)
{
	LateRows	late = FindLateRows(&exporter->history, tenantId, checkpoint, exporter->lateRowsMemory);
	char	   *firstCreatedAt;

	if (late.count == 0)
		return;
	firstCreatedAt = pstrdup(timestamptz_to_str(late.firstCreatedAt));
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("not exported: " INT64_FORMAT " of the tenant's rows created within a day behind its checkpoint were written after it was set, the first at %s",
					late.count, firstCreatedAt),
			 errdetail("A server whose clock was behind the one that set the checkpoint (a switchover), an explicit older created value (a backfill), or rows deleted and inserted again gave them; exporting on from the checkpoint would pass over them."),
			 errhint("With the clock right, replay from %s, or from further back if the clock was behind by more than a day: see \"Clock behind a checkpoint\" in doc/operations.md.",
					 firstCreatedAt)));
}

/*
 * RecordedInThisHistory says whether the checkpoint was recorded in this
 * database's history (see CurrentLakeEpoch).
 */
static bool
RecordedInThisHistory(TenantExporter *exporter, CheckpointPosition checkpoint)
{
	return checkpoint.lakeEpoch != NULL && strcmp(checkpoint.lakeEpoch, exporter->lakeEpoch) == 0;
}

/*
 * SweepOrFail removes the tenant's files past its checkpoint that the
 * export will write again (see SweepLostFiles), and fails the tenant's
 * batch when it could not judge every file, with the SQLSTATE of the first
 * file's error (a lock wait cut short defers the tenant): nothing is
 * recorded, so the next claim sweeps again.  The files in passOver (relative
 * paths) are not judged.  occasion says when it sweeps.
 */
static void
SweepOrFail(TenantExporter *exporter, const char *tenantId, CheckpointPosition checkpoint,
			SweepScope scope, List *passOver, const char *occasion)
{
	LakeSweep	sweep = SweepLostFiles(exporter->sink, &exporter->history, tenantId, checkpoint,
									   scope, passOver);

	if (sweep.unjudged > 0)
		ereport(ERROR,
				(errcode(sweep.firstErrorCode),
				 errmsg("not exported: the lake sweep %s could not judge %d of the tenant's files, \"%s\" first: %s",
						occasion, sweep.unjudged, sweep.firstUnjudged, sweep.firstErrorMessage),
				 errdetail("Files holding rows past the checkpoint must be removed before the tenant exports again; the sweep removes none until it can judge every file, and runs again at its next export."),
				 errhint("If another database exports the tenant now, release it here (see \"Moving a tenant to another database\" in doc/operations.md); if the file is not one of the export's, move it out of the tenant's directory.")));
}

/* The sweep before an undo, as IntentClear hands it over. */
typedef struct UndoSweep
{
	TenantExporter *exporter;
	TenantBatch *batch;
} UndoSweep;

/*
 * SweepBeforeUndo sweeps the tenant's files past its checkpoint (see
 * lake_sweep.c) when its claim is about to undo a batch that had placed
 * files (placedFiles, which the undo removes itself), from a checkpoint
 * ending a batch this history confirmed: that batch may have been confirmed
 * in a history this database lost while keeping its identity (a restore of
 * a base backup or snapshot taken between the batch's intent and its
 * confirmation, started without recovery.signal), which lake_epoch cannot
 * tell, and that history may have exported on.  The batch written next,
 * from the checkpoint, would then hold rows that its later files hold.  It
 * runs before the undo, so that a sweep that fails leaves the batch's
 * files for the next claim to find and sweep again.  After an ordinary cancel, error or crash it removes
 * nothing: every file this history confirmed ends at or before the
 * checkpoint.  A checkpoint of another history, or of none, is swept by
 * BringIntoThisHistory.  One at the beginning, or set by hand (new, reset,
 * adopted), is not swept: the files past it may be another installation's
 * or database's, which the lake keeps (the restore statement of doc/
 * operations.md covers a restore in the middle of such a batch).
 */
static void
SweepBeforeUndo(List *placedFiles, void *argument)
{
	UndoSweep  *undo = argument;

	SweepOrFail(undo->exporter, undo->batch->tenantId, undo->batch->checkpoint, SWEEP_EVERY_FILE, placedFiles,
				"before an undo");
}

/*
 * BringIntoThisHistory takes over, once per history, a checkpoint recorded
 * in another history: it removes the tenant's files that a lost history
 * placed past the checkpoint (see lake_sweep.c), refuses rows written
 * behind it (see RefuseLateRows), and marks it as recorded in this one.  A
 * checkpoint of no recorded history sweeps only the files this database,
 * or one it was adopted from, placed in a history it does not have.  A sweep that could not judge every
 * file (see SweepOrFail) fails the tenant's batch, and so do rows written
 * behind the checkpoint (see RefuseLateRows): the history stays
 * unrecorded, so the next claim sweeps and looks again.  It stays so too
 * while the call's watermark is behind the checkpoint: a transaction that
 * a clock behind started may still add rows there, and the batch has no
 * row to export until the watermark passes the checkpoint.
 */
static void
BringIntoThisHistory(TenantExporter *exporter, const char *tenantId, CheckpointPosition checkpoint)
{
	if (RecordedInThisHistory(exporter, checkpoint))
		return;
	SweepOrFail(exporter, tenantId, checkpoint,
				checkpoint.lakeEpoch == NULL ? SWEEP_LOST_HISTORY_FILES : SWEEP_EVERY_FILE, NIL,
				"after a change of history");
	/* A writer may still stamp rows behind the checkpoint: look when it has ended. */
	if (exporter->watermark < checkpoint.createdAt)
		return;
	RefuseLateRows(exporter, tenantId, checkpoint);
	CheckpointEnterHistory(tenantId, exporter->lakeEpoch, PositionXidOfAnotherSystem(checkpoint));
}

/*
 * KeepCheckpoint keeps the claimed checkpoint in the batch, and whether it
 * ends a batch this history confirmed: recorded in this history, at a row
 * (CheckpointRecordSuccess; a reset or a new checkpoint has no id).
 */
static void
KeepCheckpoint(TenantExporter *exporter, TenantBatch *batch, CheckpointPosition checkpoint)
{
	batch->checkpoint.createdAt = checkpoint.createdAt;
	batch->checkpoint.id = checkpoint.id != NULL ? MemoryContextStrdup(batch->context, checkpoint.id) : NULL;
	batch->confirmedHere = checkpoint.id != NULL && RecordedInThisHistory(exporter, checkpoint);
	batch->historyUnrecorded = checkpoint.lakeEpoch == NULL;
}

/*
 * ReadForDryRun reads the tenant's position for a dry run, which claims
 * nothing, and says whether the tenant is still exported here (see
 * CheckpointClaimForExport).
 */
static ExportClaim
ReadForDryRun(TenantExporter *exporter, const char *tenantId, CheckpointPosition *from)
{
	*from = CheckpointRead(tenantId);
	return !from->released && TenantIsActive(&exporter->tenants, tenantId)
		? EXPORT_CLAIM_TAKEN : EXPORT_CLAIM_NOT_EXPORTED;
}

/*
 * FailOnTakenName fails a batch one of whose names another file has in the
 * lake (see EndBatchAtTakenName).  The file there may be another database's
 * (a tenant exported by two) or a replay's (reset_checkpoint into names
 * still in the lake); either way it stays, and the tenant fails until
 * someone looks.
 */
static void
FailOnTakenName(const char *relativePath)
{
	ereport(ERROR,
			(errcode(ERRCODE_DUPLICATE_FILE),
			 errmsg("export file \"%s\" already exists in the lake", relativePath),
			 errdetail("A placed file never replaces another; this batch placed nothing more, and the file stays as it was."),
			 errhint("This database is behind its lake (a replay into names still there, or a restore), or another exports this tenant too: "
					 "see \"Reinstall and replay\", \"Restores that keep the identity\" and \"Moving a tenant to another database\" in doc/operations.md.")));
}

/*
 * RequireFreeNames fails, before its intent names them, a batch one of whose
 * names a file has in the lake already, when its checkpoint ends no batch
 * this history confirmed (new, reset, adopted, of another history): the
 * file may be another database's, and the undo of a batch that fails
 * before placing removes every file its intent names.  Past a confirmed
 * batch, a taken name is judged when placing (see EndBatchAtTakenName).
 */
static void
RequireFreeNames(TenantExporter *exporter, TenantBatch *batch)
{
	ListCell   *cell;

	foreach(cell, batch->receiver->files)
	{
		SinkFile   *file = lfirst(cell);

		if (exporter->sink->ops->holds(exporter->sink, file->relativePath))
			FailOnTakenName(file->relativePath);
	}
}

/*
 * WriteBatch is transaction A: claim, undo an unfinished batch, stream the
 * rows into temporary files, and commit the intent to place them.  The
 * batch stays pending when there is something to place.
 */
static void
WriteBatch(TenantExporter *exporter, TenantBatch *batch)
{
	CheckpointPosition from;
	ExportClaim claim;

	StartTenantTransaction("exporting an interactions_cron tenant");
	claim = exporter->dryRun ? ReadForDryRun(exporter, batch->tenantId, &from)
		: CheckpointClaimForExport(&exporter->tenants, batch->tenantId, &from);
	if (claim != EXPORT_CLAIM_TAKEN)
	{
		batch->outcome->skipped = claim == EXPORT_CLAIM_BUSY;
		batch->outcome->notExported = claim == EXPORT_CLAIM_NOT_EXPORTED;
		CommitTenantTransaction(batch->context);
		return;
	}
	if (!exporter->dryRun)
	{
		UndoSweep	undoSweep = {exporter, batch};

		KeepCheckpoint(exporter, batch, from);
		(void) IntentClear(batch->tenantId, batch->confirmedHere ? SweepBeforeUndo : NULL, &undoSweep);
		BringIntoThisHistory(exporter, batch->tenantId, from);
	}

	batch->receiver = CreateBatchReceiver(batch->context, exporter->sink, batch->tenantId,
										  &exporter->history);
	SinkPurgeSpool(exporter->sink, batch->receiver->spoolDirectory);
	StreamBatch(exporter, batch->tenantId, from, batch->receiver);
	BatchReceiverFinish(batch->receiver);
	NoteBatch(exporter, batch);
	if (batch->receiver->rowCount == 0 || exporter->dryRun)
	{
		CommitTenantTransaction(batch->context);
		return;
	}

	if (!batch->confirmedHere)
		RequireFreeNames(exporter, batch);
	batch->intentToken = MemoryContextStrdup(batch->context,
											 IntentRecord(batch->tenantId, exporter->sink,
														  batch->receiver->files,
														  batch->receiver->rowCount));
	CommitWithoutFlush(batch->context);
	exporter->intentsEnd = Max(exporter->intentsEnd, XactLastCommitEnd);
	batch->pending = true;
}

/* A step of undoing a batch that failed or must be written again, run by RunUndoStep. */
typedef void (*UndoStep) (TenantExporter *exporter, TenantBatch *batch, const char *message);

/*
 * RecordFailure marks the tenant failed, unless another export holds it by
 * now.
 */
static void
RecordFailure(TenantExporter *exporter, TenantBatch *batch, const char *message)
{
	CheckpointPosition unused;

	if (CheckpointClaimForExport(&exporter->tenants, batch->tenantId, &unused) == EXPORT_CLAIM_TAKEN)
		CheckpointRecordFailure(batch->tenantId, message);
}

/*
 * RemoveOwnIntentFiles removes what the batch placed, if it had committed
 * its intent, so that readers do not see those rows until the retry.
 */
static void
RemoveOwnIntentFiles(TenantExporter *exporter, TenantBatch *batch, const char *message)
{
	if (CheckpointReclaim(batch->tenantId) && IntentIsOurs(batch->tenantId, batch->intentToken))
		(void) IntentClear(batch->tenantId, NULL, NULL);
}

/*
 * RunUndoStep runs a step of undoing a batch in a transaction of its
 * own.  If that fails too (the store is down, a lock wait timed out), the
 * error is reported and the step given up: whatever the batch left, its
 * intent names, and the next claim of the tenant removes it before anything
 * else.  The worker goes on with the other tenants.
 */
static void
RunUndoStep(TenantExporter *exporter, TenantBatch *batch, const char *message, UndoStep step,
			const char *activity)
{
	PG_TRY();
	{
		StartTenantTransaction(activity);
		step(exporter, batch, message);
		CommitTenantTransaction(batch->context);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(batch->context);
		if (geterrcode() == ERRCODE_QUERY_CANCELED)
			PG_RE_THROW();
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(batch->context);
	}
	PG_END_TRY();
}

/*
 * MarkIfBehindLake says whether the file that took one of the batch's names
 * shows this database behind its own lake, and if so marks the checkpoint
 * so that the next claim sweeps (see BringIntoThisHistory).  A file name
 * is the batch's first row (see BatchFileName): a batch starting where one
 * of this history's did takes the name that one's file has.  So when the
 * checkpoint ends a batch this history confirmed (the caller asks only
 * then) and the file holds rows the table holds past it, this history placed
 * those rows and then lost that it had: a restore that kept the system
 * identifier and the timeline (a base backup started without
 * recovery.signal, an old dump restored into the same cluster), which
 * lake_epoch cannot tell.  This costs nothing until a name is taken.  A file
 * of other rows, or at a position set by hand (reset_checkpoint, a new or
 * adopted checkpoint), may be another database's: that still fails the
 * tenant (FailOnTakenName).
 */
static bool
MarkIfBehindLake(TenantExporter *exporter, TenantBatch *batch, const char *taken)
{
	if (!FileHoldsRowsPastCheckpoint(exporter->sink, &exporter->history, batch->tenantId, taken,
									 batch->checkpoint))
		return false;
	CheckpointRecordLakeEpoch(batch->tenantId, LAKE_EPOCH_BEHIND_LAKE);
	return true;
}

/*
 * EndBatchBehindLake ends a batch that found its database behind its lake
 * (see MarkIfBehindLake): it removes what the batch placed, and asks for
 * the tenant to be written again, which sweeps the files past its
 * checkpoint first.  A crash that loses the mark loses nothing: the next
 * batch meets the same name again.
 */
static void
EndBatchBehindLake(TenantExporter *exporter, TenantBatch *batch, const char *taken)
{
	ereport(LOG,
			(errmsg("interactions_cron: tenant \"%s\" is behind its lake: \"%s\" holds rows past its checkpoint",
					batch->tenantId, taken),
			 errdetail("This database lost exports it had placed (a restore that kept its system identifier and timeline); the tenant's files past its checkpoint are judged by their rows, and its batch written again.")));
	SinkAbortFiles(exporter->sink, batch->receiver->files);
	RunUndoStep(exporter, batch, NULL, RemoveOwnIntentFiles, "undoing an interactions_cron tenant's batch");
	batch->pending = false;
	batch->outcome->exported = 0;
	batch->outcome->files = NIL;
	batch->outcome->batchFull = true;	/* its rows still wait */
	batch->outcome->writeAgain = true;
}

/*
 * EndBatchAtTakenName ends a batch one of whose names another file has, once
 * its intent, which names no longer that file nor the ones after it, is
 * committed and made durable here: the batch's undo removes the files the
 * intent names, and must never remove a file it did not place, whatever
 * happens while the file is judged.  Then, in a transaction of its own, the
 * file may show the database behind its lake (see MarkIfBehindLake), and the
 * tenant is written again; otherwise the batch fails.
 */
static void
EndBatchAtTakenName(TenantExporter *exporter, TenantBatch *batch, const char *taken)
{
	bool		behindLake = false;

	XLogFlush(XactLastCommitEnd);
	if (batch->confirmedHere)
	{
		StartTenantTransaction("judging the file in an interactions_cron tenant's way");
		if (!ReclaimBatch(exporter, batch))
		{
			CommitTenantTransaction(batch->context);
			return;
		}
		behindLake = MarkIfBehindLake(exporter, batch, taken);
		CommitTenantTransaction(batch->context);
	}
	if (behindLake)
		EndBatchBehindLake(exporter, batch, taken);
	else
		FailOnTakenName(taken);
}

/*
 * PlaceBatch is transaction B1: claim again, check that nobody took over
 * the intent while no claim was held, and make the files visible, one after
 * the other, up to a name another file has (see EndBatchAtTakenName).  It
 * writes nothing but its row lock unless a name is taken, so its commit
 * waits for no WAL flush then: a crash that loses it loses no more than one
 * just before it would, and the durable intent undoes what it placed: a
 * group of many small tenants pays no disk round trip per tenant here.  A
 * commit that changed the intent is as durable as the caller asks.
 */
static void
PlaceBatch(TenantExporter *exporter, TenantBatch *batch)
{
	ListCell   *cell;
	const char *taken = NULL;

	StartTenantTransaction("placing an interactions_cron tenant's files");
	if (ReclaimBatch(exporter, batch))
	{
		InjectFault(FAULT_POINT_BEFORE_PLACE, batch->tenantId);
		foreach(cell, batch->receiver->files)
		{
			SinkFile   *file = lfirst(cell);

			if (foreach_current_index(cell) > 0)
				InjectFault(FAULT_POINT_BETWEEN_FILES, batch->tenantId);
			if (!exporter->sink->ops->place(exporter->sink, file))
			{
				taken = file->relativePath;
				InjectFault(FAULT_POINT_AT_TAKEN_NAME, batch->tenantId);
				IntentKeepFiles(batch->tenantId, foreach_current_index(cell));
				break;
			}
		}
	}
	if (taken == NULL)
		CommitWithoutFlush(batch->context);
	else
	{
		CommitTenantTransaction(batch->context);
		EndBatchAtTakenName(exporter, batch, taken);
	}
}

/*
 * ConfirmBatch is transaction B2: claim again, check the intent once more
 * (another export that took over has removed the placed files), make the
 * files durable, move the checkpoint and delete the intent, all committed
 * together.
 */
static void
ConfirmBatch(TenantExporter *exporter, TenantBatch *batch)
{
	BatchReceiver *receiver = batch->receiver;
	ListCell   *cell;

	StartTenantTransaction("confirming an interactions_cron tenant's files");
	if (!ReclaimBatch(exporter, batch))
	{
		CommitTenantTransaction(batch->context);
		return;
	}

	foreach(cell, receiver->files)
		exporter->sink->ops->sync(exporter->sink, lfirst(cell));
	CheckpointRecordSuccess(batch->tenantId, receiver->lastRow, receiver->rowCount,
							list_length(receiver->files),
							((SinkFile *) llast(receiver->files))->relativePath);
	IntentForget(batch->tenantId);
	InjectFault(FAULT_POINT_AFTER_PLACE, batch->tenantId);
	CommitWithoutFlush(batch->context);
	batch->pending = false;
}

/*
 * FailBatch ends a batch that failed, outside any transaction: it deletes
 * the batch's temporary files, marks the tenant failed, and undoes its
 * intent, if it committed one, with undoIntent; the outcome carries the
 * error (see TenantErrorText).
 */
static void
FailBatch(TenantExporter *exporter, TenantBatch *batch, char *message, UndoStep undoIntent)
{
	message = TenantErrorText(message);
	if (batch->receiver != NULL)
		SinkAbortFiles(exporter->sink, batch->receiver->files);
	if (!exporter->dryRun)
	{
		RunUndoStep(exporter, batch, message, RecordFailure, "recording an interactions_cron tenant's failure");
		if (batch->intentToken != NULL)
			RunUndoStep(exporter, batch, message, undoIntent, "undoing an interactions_cron tenant's batch");
	}
	batch->pending = false;
	batch->outcome->error = message;
	batch->outcome->exported = 0;
	batch->outcome->batchFull = false;
	batch->outcome->files = NIL;
}

/*
 * DeferBatch abandons a batch whose lock wait was cut short: its transaction
 * and temporary files go, and it is written again once the group is
 * finished.  It has no intent yet, and the earlier one it may have undone
 * is undone again, harmlessly, by the next claim.
 */
static void
DeferBatch(TenantExporter *exporter, TenantBatch *batch)
{
	FlushErrorState();
	AbortCurrentTransaction();
	MemoryContextSwitchTo(batch->context);
	if (batch->receiver != NULL)
		SinkAbortFiles(exporter->sink, batch->receiver->files);
	batch->deferred = true;
}

/*
 * WriteBatchWithLockWaitsCut is WriteBatch with lock_timeout lowered to
 * GROUP_LOCK_WAIT_MILLISECONDS, unless the caller's is lower already.
 */
static void
WriteBatchWithLockWaitsCut(TenantExporter *exporter, TenantBatch *batch)
{
	int			callerLockTimeout = LockTimeout;

	if (LockTimeout == 0 || LockTimeout > GROUP_LOCK_WAIT_MILLISECONDS)
	{
		LockTimeout = GROUP_LOCK_WAIT_MILLISECONDS;
		batch->lockWaitCut = true;
	}
	PG_TRY();
	{
		WriteBatch(exporter, batch);
	}
	PG_FINALLY();
	{
		LockTimeout = callerLockTimeout;
	}
	PG_END_TRY();
}

/*
 * ReportIfEnded hands the outcome of a batch that has ended (confirmed,
 * failed, skipped, or with nothing to place) to the exporter's report
 * function at once, so that the caller hears of every committed tenant even
 * if the worker is stopped before its group is finished.
 */
static void
ReportIfEnded(TenantExporter *exporter, TenantBatch *batch)
{
	if (batch->pending || batch->deferred)
		return;
	if (!exporter->report(exporter->reportArgument, batch->outcome))
		exporter->callerGone = true;
}

/*
 * RunBatchStepCatchingErrors runs the step; on an error it defers the batch
 * (a lock wait cut short in transaction A) or fails and undoes it.
 */
static void
RunBatchStepCatchingErrors(TenantExporter *exporter, TenantBatch *batch, BatchStep step)
{
	MemoryContextSwitchTo(batch->context);
	PG_TRY();
	{
		step(exporter, batch);
	}
	PG_CATCH();
	{
		ErrorData  *error;

		MemoryContextSwitchTo(batch->context);
		error = CopyErrorData();
		if (error->sqlerrcode == ERRCODE_QUERY_CANCELED)
			PG_RE_THROW();
		if (step == WriteBatchWithLockWaitsCut && batch->lockWaitCut &&
			error->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE)
		{
			DeferBatch(exporter, batch);
			return;
		}
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(batch->context);

		FailBatch(exporter, batch, error->message, RemoveOwnIntentFiles);
	}
	PG_END_TRY();
}

/*
 * RunBatchStep runs one step of a batch.  An error fails this tenant only:
 * its transaction is aborted and the batch undone.  A cancel or termination
 * ends the worker; the intents it leaves are undone by the next claims.
 */
static void
RunBatchStep(TenantExporter *exporter, TenantBatch *batch, BatchStep step)
{
	RunBatchStepCatchingErrors(exporter, batch, step);
	ReportIfEnded(exporter, batch);
}

/*
 * TenantGroupAdd writes one tenant's next batch (transaction A) and adds it
 * to the worker's open group.  index is the tenant's place in the call's
 * list, reported back with its outcome.  It returns false, having added
 * nothing, when the tenant had to wait for a lock while the group held
 * written batches: the caller finishes the group and adds the tenant again.
 */
bool
TenantGroupAdd(TenantExporter *exporter, int index, const char *tenantId)
{
	MemoryContext groupContext = exporter->groupContext;
	TenantBatch *batch = MemoryContextAllocZero(groupContext, sizeof(TenantBatch));

	if (exporter->group == NIL)
		exporter->groupStarted = GetCurrentTimestamp();
	batch->context = AllocSetContextCreate(groupContext, "interactions_cron tenant",
										   ALLOCSET_DEFAULT_SIZES);
	batch->tenantId = MemoryContextStrdup(batch->context, tenantId);
	batch->outcome = MemoryContextAllocZero(batch->context, sizeof(TenantOutcome));
	batch->outcome->tenantIndex = index;
	RunBatchStep(exporter, batch,
				 exporter->group != NIL ? WriteBatchWithLockWaitsCut : WriteBatch);

	MemoryContextSwitchTo(groupContext);
	if (batch->deferred)
	{
		MemoryContextDelete(batch->context);
		pfree(batch);
		return false;
	}
	exporter->group = lappend(exporter->group, batch);
	return true;
}

/*
 * TenantGroupIsFull says whether the open group should be finished before
 * another tenant is written.
 */
bool
TenantGroupIsFull(const TenantExporter *exporter)
{
	return list_length(exporter->group) >= GROUP_MAX_TENANTS ||
		(exporter->group != NIL &&
		 TimestampDifferenceExceeds(exporter->groupStarted, GetCurrentTimestamp(),
									GROUP_MAX_MILLISECONDS));
}

/*
 * MakeIntentsDurable flushes the WAL up to the group's last intent, and
 * waits for synchronous standbys when the caller's synchronous_commit asks
 * for them: one flush for the whole group.  A cancelled wait for them stops
 * the worker before anything is placed: a synchronous standby promoted
 * without the intents could not undo the files (SyncRepWaitForLSN itself
 * only warns, and returns).
 */
static void
MakeIntentsDurable(TenantExporter *exporter)
{
	if (exporter->intentsEnd == InvalidXLogRecPtr)
		return;
	XLogFlush(exporter->intentsEnd);
	SyncRepWaitForLSN(exporter->intentsEnd, true);
	CHECK_FOR_INTERRUPTS();
	if (!SynchronousStandbysHave(exporter->intentsEnd))
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("canceling the export while the synchronous standbys lack its intents"),
				 errdetail("The wait for the synchronous standbys was cancelled. Nothing of the worker's last group was placed; the next claims of its tenants undo their intents.")));
}

/*
 * ForgetRefusedBatch deletes the intent of a batch refused before placing
 * (see HoldForStandbys), and leaves the lake alone: the batch placed
 * nothing, so a file of one of its names there now is another's.  A
 * checkpoint that had no history recorded gets none again: the standby may
 * lack the record, and the next batch must wait for it too (a checkpoint
 * last moved by 1.0 would otherwise count as confirmed here).
 */
static void
ForgetRefusedBatch(TenantExporter *exporter, TenantBatch *batch, const char *message)
{
	if (!CheckpointReclaim(batch->tenantId) || !IntentIsOurs(batch->tenantId, batch->intentToken))
		return;
	IntentForget(batch->tenantId);
	if (batch->historyUnrecorded)
		CheckpointRecordLakeEpoch(batch->tenantId, NULL);
}

/*
 * RefuseBeforeStandbys ends a batch that the standbys do not have yet (see
 * HoldForStandbys): it places nothing, and fails the tenant until the next
 * call.
 */
static void
RefuseBeforeStandbys(TenantExporter *exporter, TenantBatch *batch, const char *laggingStandby)
{
	char	   *message;

	MemoryContextSwitchTo(batch->context);
	message = psprintf("not exported yet: the batch waits for the standbys to have it, and %s",
					   laggingStandby);

	ereport(WARNING,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("interactions_cron: tenant \"%s\" %s", batch->tenantId, message),
			 errdetail("A standby promoted without the tenant's checkpoint could not undo the batch's files and would export its rows a second time. Nothing was placed; the next call tries again."),
			 errhint("Check the standby's replication. interactions_cron.standby_wait = 0 places such batches without waiting.")));
	FailBatch(exporter, batch, message, ForgetRefusedBatch);
	ReportIfEnded(exporter, batch);
}

/*
 * GroupHasUnconfirmedBatches says whether a pending batch of the group
 * starts from a checkpoint that ends no batch this history confirmed: a
 * tenant's first, or the first after reset_checkpoint or adopt_tenant_state.
 */
static bool
GroupHasUnconfirmedBatches(TenantExporter *exporter)
{
	ListCell   *cell;

	foreach(cell, exporter->group)
	{
		TenantBatch *batch = lfirst(cell);

		if (batch->pending && !batch->confirmedHere)
			return true;
	}
	return false;
}

/* How long a worker's groups wait for the standbys once a wait timed out. */
#define STANDBY_WAIT_ONCE_SPENT_MS 1000

/*
 * HoldForStandbys places no batch from a checkpoint this history has not
 * confirmed (a tenant's first, the first after reset_checkpoint or
 * adopt_tenant_state: see standby_wait.c) before every physical standby
 * streaming from this server has flushed the group's intents, waiting at
 * most standby_wait.  Past that, those batches fail, and are retried at the
 * next call; the worker's later groups wait STANDBY_WAIT_ONCE_SPENT_MS at
 * most, enough for a standby that has caught up.  Other batches go on.
 */
static void
HoldForStandbys(TenantExporter *exporter)
{
	ListCell   *cell;
	char	   *laggingStandby;

	if (StandbyWaitMs == 0 || !GroupHasUnconfirmedBatches(exporter))
		return;
	laggingStandby = WaitForStandbysToFlush(exporter->intentsEnd,
											exporter->standbyWaitSpent
											? Min(StandbyWaitMs, STANDBY_WAIT_ONCE_SPENT_MS) : StandbyWaitMs);
	if (laggingStandby == NULL)
		return;
	exporter->standbyWaitSpent = true;
	foreach(cell, exporter->group)
	{
		TenantBatch *batch = lfirst(cell);

		if (batch->pending && !batch->confirmedHere)
			RefuseBeforeStandbys(exporter, batch, laggingStandby);
	}
}

/*
 * RunPendingBatches runs a step for every batch of the group still pending.
 */
static void
RunPendingBatches(TenantExporter *exporter, BatchStep step)
{
	ListCell   *cell;

	foreach(cell, exporter->group)
	{
		TenantBatch *batch = lfirst(cell);

		if (batch->pending)
			RunBatchStep(exporter, batch, step);
	}
}

/*
 * PlacedFiles lists the files of the group's batches still pending once
 * placed.
 */
static List *
PlacedFiles(TenantExporter *exporter)
{
	List	   *files = NIL;
	ListCell   *cell;

	foreach(cell, exporter->group)
	{
		TenantBatch *batch = lfirst(cell);

		if (batch->pending)
			files = list_concat(files, batch->receiver->files);
	}
	return files;
}

/*
 * TenantGroupFinish places every batch of the group, makes the files durable
 * and moves the checkpoints; each batch's outcome is reported as it ends.
 * All are placed before any is made durable, so their fsyncs are in flight
 * together and a directory the group's files share is fsynced once for all
 * of them, or one syncfs() covers all.
 */
void
TenantGroupFinish(TenantExporter *exporter)
{
	MakeIntentsDurable(exporter);
	HoldForStandbys(exporter);
	RunPendingBatches(exporter, PlaceBatch);
	MemoryContextSwitchTo(exporter->groupContext);
	SinkBeginGroupSync(exporter->sink, exporter->groupContext, PlacedFiles(exporter));
	RunPendingBatches(exporter, ConfirmBatch);
	SinkEndGroupSync(exporter->sink);
	MemoryContextSwitchTo(exporter->groupContext);
}

/*
 * TenantGroupReset frees the finished group.
 */
void
TenantGroupReset(TenantExporter *exporter)
{
	exporter->group = NIL;
	exporter->intentsEnd = InvalidXLogRecPtr;
	MemoryContextReset(exporter->groupContext);
}
