/*
 * worker_pool.c
 *	  Starting an export call's workers and collecting what they report.
 *
 * The caller puts the run into one dynamic shared memory segment, starts up
 * to interactions_cron.max_workers dynamic background workers, and waits on
 * its latch for their messages, cancellably.  Whatever ends the call (an
 * error, a cancel, statement_timeout, termination) detaches the segment, and
 * the detach callback tells every worker to stop: a worker ends within its
 * current statement, its tenant's unfinished batch left to its intent.  The
 * one exception is worker 0 once it has taken the run to record
 * (run_hand_off.c): its tenants are done, and it waits for the run.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/procarray.h"
#include "storage/proc.h"
#include "storage/shm_mq.h"
#include "storage/shm_toc.h"
#include "utils/guc.h"

#include "interactions_cron/export_shared.h"
#include "interactions_cron/guc.h"
#include "interactions_cron/pg_compat.h"
#include "interactions_cron/run_hand_off.h"
#include "interactions_cron/tenant_queue.h"
#include "interactions_cron/worker_pool.h"

/* How long the caller waits without news before it checks on its workers. */
#define WORKER_CHECK_MS 500

/*
 * How long a worker may wait for the caller's lock before the call fails.
 * Longer than the lock_timeout of a statement that may queue in between
 * (cleanup()'s partition creation waits partition_lock_timeout, 2 s by
 * default), which then gives up by itself and lets the worker go on.
 */
#define WORKER_BLOCKED_GRACE_MS 10000

/* The workers of one call, as the detach callback needs them. */
typedef struct WorkerPool
{
	int			count;
	BackgroundWorkerHandle **handles;
	shm_mq_handle **queues;
	bool	   *finished;
	TimestampTz *waitingForCallerSince; /* 0: not waiting for the caller */
	RunHandOff *handOff;		/* where worker 0 may take the run to record */
} WorkerPool;

/*
 * TenantIdsSize returns the bytes the tenant ids take in shared memory.
 */
static Size
TenantIdsSize(const WorkerAssignment *assignment)
{
	Size		size = add_size(offsetof(ExportTenantIds, offsets),
								mul_size(sizeof(Size), assignment->tenantCount));

	for (int i = 0; i < assignment->tenantCount; i++)
		size = add_size(size, strlen(assignment->tenantIds[i]) + 1);
	return size;
}

/*
 * StoreTenantIds copies the tenant ids into shared memory.
 */
static void
StoreTenantIds(ExportTenantIds *shared, const WorkerAssignment *assignment)
{
	Size		offset = offsetof(ExportTenantIds, offsets) + sizeof(Size) * assignment->tenantCount;

	shared->count = assignment->tenantCount;
	for (int i = 0; i < assignment->tenantCount; i++)
	{
		Size		length = strlen(assignment->tenantIds[i]) + 1;

		shared->offsets[i] = offset;
		memcpy((char *) shared + offset, assignment->tenantIds[i], length);
		offset += length;
	}
}

/*
 * StoreRun fills in the run's parameters and the caller's identity.
 */
static void
StoreRun(ExportRunShared *run, const WorkerAssignment *assignment)
{
	run->databaseId = MyDatabaseId;
	run->authenticatedUserId = GetAuthenticatedUserId();
	run->outerUserId = GetCurrentRoleId();
	run->roleIsSuperuser = CurrentRoleIsSuperuser;
	GetUserIdAndSecContext(&run->currentUserId, &run->securityContext);
	run->watermark = assignment->watermark;
	run->batchSize = assignment->batchSize;
	run->dryRun = assignment->dryRun;
	run->tenantCount = assignment->tenantCount;
	run->handOffSegment = assignment->handOff != NULL ? RunHandOffSegment(assignment->handOff)
		: DSM_HANDLE_INVALID;
}

/*
 * CreateRunSegment lays the run out in a new segment, with the tenant queue
 * and one message queue per worker whose receiver is this backend.
 */
static dsm_segment *
CreateRunSegment(const WorkerAssignment *assignment, int workerCount, shm_mq ***queues,
				 TenantQueue **tenantQueue)
{
	shm_toc_estimator estimator;
	Size		settingsSize = EstimateGUCStateSpace();
	Size		tenantsSize = TenantIdsSize(assignment);
	Size		tenantQueueSize = TenantQueueSize(assignment->tenantCount, workerCount);
	dsm_segment *segment;
	shm_toc    *toc;
	char	   *settings;
	ExportRunShared *run;
	ExportTenantIds *tenants;

	shm_toc_initialize_estimator(&estimator);
	shm_toc_estimate_chunk(&estimator, sizeof(ExportRunShared));
	shm_toc_estimate_chunk(&estimator, settingsSize);
	shm_toc_estimate_chunk(&estimator, tenantsSize);
	shm_toc_estimate_chunk(&estimator, tenantQueueSize);
	for (int i = 0; i < workerCount; i++)
		shm_toc_estimate_chunk(&estimator, EXPORT_QUEUE_BYTES);
	shm_toc_estimate_keys(&estimator, 4 + workerCount);

	segment = dsm_create(shm_toc_estimate(&estimator), 0);
	toc = shm_toc_create(EXPORT_SHM_MAGIC, dsm_segment_address(segment),
						 shm_toc_estimate(&estimator));

	run = shm_toc_allocate(toc, sizeof(ExportRunShared));
	StoreRun(run, assignment);
	shm_toc_insert(toc, EXPORT_KEY_RUN, run);

	settings = shm_toc_allocate(toc, settingsSize);
	SerializeGUCState(settingsSize, settings);
	shm_toc_insert(toc, EXPORT_KEY_SETTINGS, settings);

	tenants = shm_toc_allocate(toc, tenantsSize);
	StoreTenantIds(tenants, assignment);
	shm_toc_insert(toc, EXPORT_KEY_TENANTS, tenants);

	*tenantQueue = shm_toc_allocate(toc, tenantQueueSize);
	TenantQueueInit(*tenantQueue, assignment->tenantCount, workerCount, assignment->drainDeadline);
	shm_toc_insert(toc, EXPORT_KEY_TENANT_QUEUE, *tenantQueue);

	*queues = palloc(sizeof(shm_mq *) * workerCount);
	for (int i = 0; i < workerCount; i++)
	{
		(*queues)[i] = shm_mq_create(shm_toc_allocate(toc, EXPORT_QUEUE_BYTES), EXPORT_QUEUE_BYTES);
		shm_mq_set_receiver((*queues)[i], MyProc);
		shm_toc_insert(toc, EXPORT_KEY_FIRST_QUEUE + i, (*queues)[i]);
	}
	return segment;
}

/*
 * DescribeDynamicWorker fills in a dynamic background worker of this
 * library that connects to a database, never restarts, reports to this
 * backend, and gets a shared memory segment's handle as its argument.
 */
void
DescribeDynamicWorker(BackgroundWorker *worker, const char *functionName, const char *type,
					  dsm_segment *segment)
{
	memset(worker, 0, sizeof(BackgroundWorker));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker->bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker->bgw_library_name, WORKER_LIBRARY_NAME, BGW_MAXLEN);
	strlcpy(worker->bgw_function_name, functionName, BGW_MAXLEN);
	strlcpy(worker->bgw_name, type, BGW_MAXLEN);
	strlcpy(worker->bgw_type, type, BGW_MAXLEN);
	worker->bgw_main_arg = UInt32GetDatum(dsm_segment_handle(segment));
	worker->bgw_notify_pid = MyProcPid;
}

/*
 * InDynamicWorkerOfThisLibrary says whether this process is one of this
 * library's background workers (see DescribeDynamicWorker).
 */
bool
InDynamicWorkerOfThisLibrary(void)
{
	return MyBgworkerEntry != NULL &&
		strcmp(MyBgworkerEntry->bgw_library_name, WORKER_LIBRARY_NAME) == 0;
}

/*
 * StartWorker registers the numbered worker of the segment's run; it
 * returns NULL when no background worker slot is free.
 */
static BackgroundWorkerHandle *
StartWorker(dsm_segment *segment, int workerNumber)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;

	DescribeDynamicWorker(&worker, "ExportWorkerMain", "interactions_cron export worker", segment);
	snprintf(worker.bgw_name, BGW_MAXLEN, "interactions_cron export worker %d for PID %d",
			 workerNumber, MyProcPid);
	memcpy(worker.bgw_extra, &workerNumber, sizeof(int));

	return RegisterDynamicBackgroundWorker(&worker, &handle) ? handle : NULL;
}

/*
 * StopWorkersOnDetach tells every worker to stop when the segment goes away:
 * at the end of the call, or when an error or termination ends it early.
 * Stopping a worker that already exited is harmless.  Worker 0 is left to
 * record the run if it took it; if it has not, it may not any more.
 */
static void
StopWorkersOnDetach(dsm_segment *segment, Datum argument)
{
	WorkerPool *pool = (WorkerPool *) DatumGetPointer(argument);

	for (int i = 0; i < pool->count; i++)
		if (i > 0 || pool->handOff == NULL || !RunRecorderWaits(pool->handOff))
			TerminateBackgroundWorker(pool->handles[i]);
}

/*
 * StartWorkers starts up to workerCount workers and attaches to their
 * queues.  Not one slot free is an error before anything was exported.
 */
static WorkerPool *
StartWorkers(dsm_segment *segment, shm_mq **queues, int workerCount, RunHandOff *handOff)
{
	WorkerPool *pool = palloc0(sizeof(WorkerPool));

	pool->handles = palloc0(sizeof(BackgroundWorkerHandle *) * workerCount);
	pool->queues = palloc0(sizeof(shm_mq_handle *) * workerCount);
	pool->finished = palloc0(sizeof(bool) * workerCount);
	pool->waitingForCallerSince = palloc0(sizeof(TimestampTz) * workerCount);
	while (pool->count < workerCount)
	{
		BackgroundWorkerHandle *handle = StartWorker(segment, pool->count);

		if (handle == NULL)
			break;
		pool->handles[pool->count] = handle;
		pool->queues[pool->count] = shm_mq_attach(queues[pool->count], segment, handle);
		pool->count++;
	}
	if (pool->count > 0 && handOff != NULL)
	{
		pool->handOff = handOff;
		SetRunRecorderWorker(handOff, pool->handles[0]);
	}

	if (pool->count == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start any interactions_cron export worker"),
				 errdetail("Nothing was exported."),
				 errhint("Every max_worker_processes slot is taken; raise max_worker_processes "
						 "(needs a restart) or lower interactions_cron.max_workers.")));
	on_dsm_detach(segment, StopWorkersOnDetach, PointerGetDatum(pool));
	return pool;
}

/*
 * AddBatchOutcome adds one batch's outcome to its tenant's: the rows and
 * files of every batch, the last batch's state.
 */
static void
AddBatchOutcome(TenantOutcome *tenant, const TenantOutcome *batch)
{
	tenant->exported += batch->exported;
	tenant->files = list_concat(tenant->files, batch->files);
	if (batch->exported > 0)
		tenant->batches++;
	tenant->batchesReported++;
	tenant->batchFull = batch->batchFull;
	tenant->skipped = batch->skipped;
	tenant->notExported = batch->notExported;
	if (batch->error != NULL)
		tenant->error = batch->error;
}

/*
 * ReceiveOutcomes reads every message waiting in the workers' queues into
 * the assignment's outcomes, and notes the workers that are gone, in the
 * tenant queue too.  It returns whether anything happened.
 */
static bool
ReceiveOutcomes(WorkerPool *pool, WorkerAssignment *assignment, TenantQueue *tenantQueue)
{
	bool		progressed = false;

	for (int i = 0; i < pool->count; i++)
	{
		Size		length;
		void	   *data;
		shm_mq_result result;

		if (pool->finished[i])
			continue;
		result = shm_mq_receive(pool->queues[i], &length, &data, true);
		if (result == SHM_MQ_SUCCESS)
		{
			StringInfoData message;
			TenantOutcome outcome;

			message.data = data;
			message.len = message.maxlen = (int) length;
			message.cursor = 0;
			memset(&outcome, 0, sizeof(outcome));
			DeserializeOutcome(&message, &outcome);
			if (outcome.tenantIndex < 0 || outcome.tenantIndex >= assignment->tenantCount)
				elog(ERROR, "export worker reported an unknown tenant %d", outcome.tenantIndex);
			AddBatchOutcome(assignment->outcomes[outcome.tenantIndex], &outcome);
			progressed = true;
		}
		else if (result == SHM_MQ_DETACHED)
		{
			pool->finished[i] = true;
			TenantQueueWorkerGone(tenantQueue, i);
			progressed = true;
		}
	}
	return progressed;
}

/*
 * AllFinished says whether every worker has detached.
 */
static bool
AllFinished(const WorkerPool *pool)
{
	for (int i = 0; i < pool->count; i++)
		if (!pool->finished[i])
			return false;
	return true;
}

/* How far a chain of lock waits is followed from a worker to the caller. */
#define MAX_WAIT_CHAIN 8

/*
 * WaitingMode returns the lock mode the process waits for, among the
 * PROCLOCKs of the lock it awaits, or NoLock.
 */
static LOCKMODE
WaitingMode(const BlockedProcsData *data, const BlockedProcData *proc, int pid)
{
	for (int i = proc->first_lock; i < proc->first_lock + proc->num_locks; i++)
		if (data->locks[i].pid == pid && data->locks[i].waitLockMode != NoLock)
			return data->locks[i].waitLockMode;
	return NoLock;
}

/*
 * BlockersOf returns the PIDs the process waits for, as pg_blocking_pids()
 * finds them: holders of the lock in a conflicting mode, and waiters queued
 * ahead of it that ask for a conflicting one.
 */
static List *
BlockersOf(int pid)
{
	BlockedProcsData *data = GetBlockerStatusData(pid);
	List	   *blockers = NIL;

	for (int p = 0; p < data->nprocs; p++)
	{
		BlockedProcData *proc = &data->procs[p];
		LOCKMODE	wanted = WaitingMode(data, proc, proc->pid);
		LOCKMASK	conflicts;

		if (wanted == NoLock || proc->num_locks == 0)
			continue;
		conflicts = GetLockTagsMethodTable(&data->locks[proc->first_lock].locktag)->conflictTab[wanted];
		for (int i = proc->first_lock; i < proc->first_lock + proc->num_locks; i++)
			if (data->locks[i].pid != proc->pid && (data->locks[i].holdMask & conflicts) != 0)
				blockers = lappend_int(blockers, data->locks[i].pid);
		for (int w = proc->first_waiter; w < proc->first_waiter + proc->num_waiters; w++)
		{
			LOCKMODE	ahead = WaitingMode(data, proc, data->waiter_pids[w]);

			if (ahead != NoLock && (LOCKBIT_ON(ahead) & conflicts) != 0)
				blockers = lappend_int(blockers, data->waiter_pids[w]);
		}
	}
	return blockers;
}

/*
 * WaitsForCaller says whether the process waits, directly or through a
 * chain of other waiting sessions, for a lock this backend holds: one its
 * transaction took before calling the export (a partition cleanup() created,
 * a checkpoint row it inserted, a share lock that a DDL statement queued
 * behind).  The caller waits for its workers on a latch, which no deadlock
 * detector sees, so such a wait would never end.
 */
static bool
WaitsForCaller(int pid)
{
	List	   *frontier = list_make1_int(pid);

	for (int depth = 0; depth < MAX_WAIT_CHAIN && frontier != NIL; depth++)
	{
		List	   *next = NIL;
		ListCell   *cell;

		foreach(cell, frontier)
		{
			List	   *blockers = BlockersOf(lfirst_int(cell));

			if (list_member_int(blockers, MyProcPid))
				return true;
			next = list_concat_unique_int(next, blockers);
		}
		frontier = next;
	}
	return false;
}

/*
 * RequireNoWorkerBlockedByCaller fails the call when a worker has waited
 * for a lock of the caller's transaction for WORKER_BLOCKED_GRACE_MS,
 * instead of waiting for ever.
 */
static void
RequireNoWorkerBlockedByCaller(WorkerPool *pool)
{
	TimestampTz now = GetCurrentTimestamp();

	for (int i = 0; i < pool->count; i++)
	{
		pid_t		pid;
		PGPROC	   *proc;

		if (pool->finished[i] || GetBackgroundWorkerPid(pool->handles[i], &pid) != BGWH_STARTED ||
			(proc = BackendPidGetProc(pid)) == NULL || proc->waitLock == NULL || !WaitsForCaller(pid))
		{
			pool->waitingForCallerSince[i] = 0;
			continue;
		}
		if (pool->waitingForCallerSince[i] == 0)
			pool->waitingForCallerSince[i] = now;
		if (!TimestampDifferenceExceeds(pool->waitingForCallerSince[i], now, WORKER_BLOCKED_GRACE_MS))
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_T_R_DEADLOCK_DETECTED),
				 errmsg("interactions_cron export worker (PID %d) has waited %d s for a lock held by this transaction",
						(int) pid, WORKER_BLOCKED_GRACE_MS / 1000),
				 errdetail("It waits for this transaction directly, or behind another session's lock request "
						   "(DDL, LOCK TABLE) that itself waits for this transaction; "
						   "tenants committed so far stay exported."),
				 errhint("Call export_interactions() in a transaction of its own that has not written or "
						 "locked anything, and keep DDL on the exported tables away from export runs.")));
	}
}

/*
 * FailUnreported fails the tenants with a batch no worker reported on: a
 * worker exited (or crashed) in the middle of one, or none was left to take
 * the tenant.  Called once every worker has ended.
 */
static void
FailUnreported(WorkerAssignment *assignment, TenantQueue *tenantQueue)
{
	for (int i = 0; i < assignment->tenantCount; i++)
	{
		TenantOutcome *outcome = assignment->outcomes[i];
		uint32		taken = TenantQueueBatchesTaken(tenantQueue, i);

		if (taken == 0 || taken > (uint32) outcome->batchesReported)
			outcome->error = pstrdup("an interactions_cron export worker exited before reporting this tenant; "
									 "the next run finishes or undoes its batch (see the server log)");
	}
}

/*
 * RunExportWorkers exports the assignment's tenants on background workers
 * (one batch each, or as many as the time budget allows) and waits until
 * all of them have reported or exited.  Cancel, timeouts and
 * termination interrupt the wait at once.
 */
void
RunExportWorkers(WorkerAssignment *assignment)
{
	int			workerCount = Min(MaxExportWorkers, assignment->tenantCount);
	shm_mq	  **queues;
	TenantQueue *tenantQueue;
	dsm_segment *segment;
	WorkerPool *pool;

	if (workerCount == 0)
		return;
	segment = CreateRunSegment(assignment, workerCount, &queues, &tenantQueue);
	pool = StartWorkers(segment, queues, workerCount, assignment->handOff);
	assignment->workersStarted = pool->count;

	while (!AllFinished(pool))
	{
		if (!ReceiveOutcomes(pool, assignment, tenantQueue))
		{
			int			events = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
										   WORKER_CHECK_MS, PG_WAIT_EXTENSION);

			ResetLatch(MyLatch);
			if (events & WL_TIMEOUT)
				RequireNoWorkerBlockedByCaller(pool);
		}
		CHECK_FOR_INTERRUPTS();
	}

	FailUnreported(assignment, tenantQueue);
	dsm_detach(segment);
}
