/*
 * tenant_queue.h
 *	  The queue an export call's workers take tenants' batches from, round
 *	  robin, in the call's shared memory.
 */
#ifndef INTERACTIONS_CRON_TENANT_QUEUE_H
#define INTERACTIONS_CRON_TENANT_QUEUE_H

#include "datatype/timestamp.h"
#include "storage/spin.h"

typedef struct TenantQueue
{
	slock_t		mutex;
	uint64		head;			/* the next entry taken */
	uint64		tail;			/* the next entry filled */
	int			tenantCount;	/* the ring's size: a tenant is queued once at most */
	int			workerCount;
	TimestampTz drainDeadline;	/* no further batch starts after it; 0: none */
	/*
	 * then int ring[tenantCount], uint32 batchesTaken[tenantCount], and
	 * int inFlight[workerCount]: each worker's batches taken and not ended
	 */
	char		data[FLEXIBLE_ARRAY_MEMBER];
} TenantQueue;

extern Size TenantQueueSize(int tenantCount, int workerCount);
extern void TenantQueueInit(TenantQueue *queue, int tenantCount, int workerCount,
							TimestampTz drainDeadline);
extern int	TenantQueueTake(TenantQueue *queue, int workerNumber);
extern void TenantQueueBatchEnded(TenantQueue *queue, int workerNumber, int tenantIndex,
								  bool moreWaiting, bool writeAgain);
extern bool TenantQueueAwaitMore(TenantQueue *queue);
extern void TenantQueueWorkerGone(TenantQueue *queue, int workerNumber);
extern uint32 TenantQueueBatchesTaken(TenantQueue *queue, int tenantIndex);

#endif
