/*
 * export_worker.c
 *	  The background worker that exports tenants for an export call.
 *
 * A worker takes the caller's identity and settings (as a parallel query
 * worker does), then takes tenant after tenant from the shared list, exports
 * each in transactions of its own, a group of tenants at a time, and sends
 * the caller one message per tenant as soon as its batch has ended.  It stops when the list is empty, when the caller is gone, or when
 * it is told to (the caller was cancelled).
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

/*
 * SendOutcome sends the caller one tenant's outcome; it returns false if the
 * caller detached (a cancelled or terminated call).
 */
static bool
SendOutcome(void *queue, const TenantOutcome *outcome)
{
	StringInfoData message;
	bool		sent;

	initStringInfo(&message);
	SerializeOutcome(&message, outcome);
	sent = shm_mq_send((shm_mq_handle *) queue, message.len, message.data, false, true) == SHM_MQ_SUCCESS;
	pfree(message.data);
	return sent;
}

/*
 * ExportSharedTenants exports tenants from the shared list, a group at a
 * time, until it is empty; it stops early if the caller detached.  A tenant
 * that would have waited for a lock closes the group and opens the next.
 */
static void
ExportSharedTenants(ExportRunShared *run, const ExportTenantIds *tenants, shm_mq_handle *queue)
{
	TenantExporter *exporter = CreateTenantExporter(run->watermark, run->batchSize, run->dryRun,
													SendOutcome, queue);
	int			deferredIndex = -1;
	bool		listEmpty = false;

	while ((!listEmpty || deferredIndex >= 0) && !exporter->callerGone)
	{
		while (!TenantGroupIsFull(exporter) && !exporter->callerGone)
		{
			uint32		index;

			if (deferredIndex >= 0)
				index = (uint32) deferredIndex;
			else
				index = pg_atomic_fetch_add_u32(&run->nextTenant, 1);
			deferredIndex = -1;
			if (index >= (uint32) tenants->count)
			{
				listEmpty = true;
				break;
			}
			CHECK_FOR_INTERRUPTS();
			if (!TenantGroupAdd(exporter, (int) index, SharedTenantId(tenants, index)))
			{
				deferredIndex = (int) index;
				break;
			}
		}
		TenantGroupFinish(exporter);
		TenantGroupReset(exporter);
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
	shm_mq_handle *queueHandle;
	int			workerNumber;

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

	queue = shm_toc_lookup(toc, EXPORT_KEY_FIRST_QUEUE + workerNumber, false);
	shm_mq_set_sender(queue, MyProc);
	queueHandle = shm_mq_attach(queue, segment, NULL);

	BackgroundWorkerInitializeConnectionByOid(run->databaseId, run->authenticatedUserId, 0);
	BecomeCaller(toc, run);
	ExportSharedTenants(run, shm_toc_lookup(toc, EXPORT_KEY_TENANTS, false), queueHandle);

	shm_mq_detach(queueHandle);
	dsm_detach(segment);
}
