/*
 * export_worker.c
 *	  The background worker that exports tenants for an export call.
 *
 * A worker takes the caller's identity and settings (as a parallel query
 * worker does), then takes tenant after tenant from the shared queue
 * (tenant_queue.c), exports each batch in transactions of its own, a group
 * of tenants at a time, and sends the caller one message per batch as soon
 * as it has ended.  It stops when nothing more can be queued, when the
 * caller is gone, or when it is told to (the caller was cancelled).  Worker 0
 * then records the call's run (run_hand_off.c), in the slot it already holds.
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/proc.h"
#include "storage/shm_mq.h"
#include "storage/shm_toc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "interactions_cron/export_shared.h"
#include "interactions_cron/run_hand_off.h"
#include "interactions_cron/tenant_queue.h"

PGDLLEXPORT void ExportWorkerMain(Datum argument);

/*
 * BecomeCaller gives the worker the caller's settings, every one as the
 * caller saw it (session SETs and the function's own SET clauses included),
 * and the caller's roles.  The connection was made as the caller's
 * authenticated user, who may log in; SET ROLE targets need not.
 */
static void
BecomeCaller(shm_toc *toc, const ExportRunShared *run)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	RestoreGUCState(shm_toc_lookup(toc, EXPORT_KEY_SETTINGS, false));
	CommitTransactionCommand();

	/* The watermark is only safe for snapshots taken statement by statement. */
	DefaultXactIsoLevel = XACT_READ_COMMITTED;

	SetCurrentRoleId(run->outerUserId, run->roleIsSuperuser);
	SetUserIdAndSecContext(run->currentUserId, run->securityContext);
}

/* Where a worker's batch outcomes go: the caller, and the tenant queue. */
typedef struct OutcomeDestination
{
	shm_mq_handle *caller;
	TenantQueue *tenantQueue;
	int			workerNumber;
	bool		dryRun;
} OutcomeDestination;

/*
 * SendOutcome sends the caller one batch's outcome and ends the batch in the
 * tenant queue, which takes the tenant again if its batch was full (a dry
 * run moves no checkpoint: it never takes another), or found it behind its
 * lake.  It returns false if the caller detached (a cancelled or terminated
 * call).
 */
static bool
SendOutcome(void *argument, const TenantOutcome *outcome)
{
	OutcomeDestination *destination = argument;
	StringInfoData message;
	bool		sent;

	initStringInfo(&message);
	SerializeOutcome(&message, outcome);
	sent = shm_mq_send(destination->caller, message.len, message.data, false, true) == SHM_MQ_SUCCESS;
	pfree(message.data);
	TenantQueueBatchEnded(destination->tenantQueue, destination->workerNumber, outcome->tenantIndex,
						  sent && outcome->batchFull && outcome->error == NULL &&
						  !outcome->skipped && !destination->dryRun,
						  sent && outcome->writeAgain);
	return sent;
}

/*
 * ExportQueuedTenants exports tenants' batches from the shared queue, a
 * group at a time, until nothing more can be queued; it stops early if the
 * caller detached.  A tenant that would have waited for a lock closes the
 * group and opens the next.
 */
static void
ExportQueuedTenants(ExportRunShared *run, const ExportTenantIds *tenants,
					OutcomeDestination *destination)
{
	TenantExporter *exporter = CreateTenantExporter(run->watermark, run->batchSize, run->dryRun,
													SendOutcome, destination);
	int			deferredIndex = -1;
	bool		queueEmpty = false;

	while (!exporter->callerGone)
	{
		while (!TenantGroupIsFull(exporter) && !exporter->callerGone)
		{
			int			index = deferredIndex >= 0 ? deferredIndex
				: TenantQueueTake(destination->tenantQueue, destination->workerNumber);

			deferredIndex = -1;
			queueEmpty = index < 0;
			if (queueEmpty)
				break;
			CHECK_FOR_INTERRUPTS();
			if (!TenantGroupAdd(exporter, index, SharedTenantId(tenants, index)))
			{
				deferredIndex = index;
				break;
			}
		}
		TenantGroupFinish(exporter);
		TenantGroupReset(exporter);
		if (queueEmpty && !TenantQueueAwaitMore(destination->tenantQueue))
			break;
	}
}

/*
 * ExportWorkerMain is the worker's entry point; its argument is the handle
 * of the call's shared memory, its bgw_extra its number.
 */
void
ExportWorkerMain(Datum argument)
{
	dsm_segment *segment;
	shm_toc    *toc;
	ExportRunShared *run;
	shm_mq	   *queue;
	OutcomeDestination destination;
	int			workerNumber;
	RunHandOff *handOff = NULL;
	bool		recordsRun;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	memcpy(&workerNumber, MyBgworkerEntry->bgw_extra, sizeof(int));

	CurrentResourceOwner = ResourceOwnerCreate(NULL, "interactions_cron export worker");
	segment = dsm_attach(DatumGetUInt32(argument));
	if (segment == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("interactions_cron export worker could not attach to its call's shared memory"),
				 errdetail("The call ended before the worker started.")));
	dsm_pin_mapping(segment);
	toc = shm_toc_attach(EXPORT_SHM_MAGIC, dsm_segment_address(segment));
	if (toc == NULL)
		elog(ERROR, "interactions_cron export worker found invalid shared memory");
	run = shm_toc_lookup(toc, EXPORT_KEY_RUN, false);
	if (workerNumber == 0 && run->handOffSegment != DSM_HANDLE_INVALID)
		handOff = AttachRunHandOff(run->handOffSegment);

	queue = shm_toc_lookup(toc, EXPORT_KEY_FIRST_QUEUE + workerNumber, false);
	shm_mq_set_sender(queue, MyProc);
	destination.caller = shm_mq_attach(queue, segment, NULL);
	destination.tenantQueue = shm_toc_lookup(toc, EXPORT_KEY_TENANT_QUEUE, false);
	destination.workerNumber = workerNumber;
	destination.dryRun = run->dryRun;

	BackgroundWorkerInitializeConnectionByOid(run->databaseId, run->authenticatedUserId, 0);
	BecomeCaller(toc, run);
	ExportQueuedTenants(run, shm_toc_lookup(toc, EXPORT_KEY_TENANTS, false), &destination);

	/* Taken before the caller hears this worker is done, which it waits for. */
	recordsRun = handOff != NULL && TakeRunToRecord(handOff);
	shm_mq_detach(destination.caller);
	if (recordsRun)
		RecordHandedOverRun(handOff);
	dsm_detach(segment);
}
