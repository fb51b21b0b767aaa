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
	int			inFlight;		/* batches taken and not yet ended */
	int			tenantCount;	/* the ring's size: a tenant is queued once at most */
	TimestampTz drainDeadline;	/* no further batch starts after it; 0: none */
	/* then int ring[tenantCount] and uint32 batchesTaken[tenantCount] */
	char		data[FLEXIBLE_ARRAY_MEMBER];
} TenantQueue;

extern Size TenantQueueSize(int tenantCount);
extern void TenantQueueInit(TenantQueue *queue, int tenantCount, TimestampTz drainDeadline);
extern int	TenantQueueTake(TenantQueue *queue);
extern void TenantQueueBatchEnded(TenantQueue *queue, int tenantIndex, bool moreWaiting);
extern bool TenantQueueAwaitMore(TenantQueue *queue);
extern uint32 TenantQueueBatchesTaken(TenantQueue *queue, int tenantIndex);

#endif
