/*
 * tenant_queue.c
 *	  The queue an export call's workers take tenants' batches from, round
 *	  robin, in the call's shared memory.
 *
 * The call queues every tenant with work once, in its order.  Without a time
 * budget each is taken once: one batch per tenant per call, as the seed says.
 * With one (max_runtime), a tenant whose batch was full goes to the back of
 * the queue as its batch ends, behind every tenant still waiting for its
 * first or next batch, so one tenant's backlog never starves the others.
 * Once the budget is spent no further batch starts; first batches always do,
 * so that a short budget cannot starve the tenants late in the order.  A
 * tenant is in the queue at most once at a time, and never while a batch of
 * it runs: its next batch claims it only after the last one committed.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/timestamp.h"

#include "interactions_cron/tenant_queue.h"

/* How often a worker without work looks for a tenant queued again. */
#define QUEUE_POLL_MS 10

/*
 * QueueRing returns the ring of queued tenant indexes.
 */
static int *
QueueRing(TenantQueue *queue)
{
	return (int *) queue->data;
}

/*
 * QueueBatchesTaken returns the per-tenant counts of batches taken.
 */
static uint32 *
QueueBatchesTaken(TenantQueue *queue)
{
	return (uint32 *) (queue->data + sizeof(int) * queue->tenantCount);
}

/*
 * QueueInFlight returns each worker's count of batches taken and not ended.
 */
static int *
QueueInFlight(TenantQueue *queue)
{
	return (int *) (queue->data + (sizeof(int) + sizeof(uint32)) * queue->tenantCount);
}

/*
 * DrainGoesOn says whether further batches may still start.
 */
static bool
DrainGoesOn(const TenantQueue *queue)
{
	return queue->drainDeadline != 0 && GetCurrentTimestamp() < queue->drainDeadline;
}

/*
 * TenantQueueSize returns the bytes a queue of tenantCount tenants for
 * workerCount workers takes.
 */
Size
TenantQueueSize(int tenantCount, int workerCount)
{
	return add_size(add_size(offsetof(TenantQueue, data),
							 mul_size(sizeof(int) + sizeof(uint32), tenantCount)),
					mul_size(sizeof(int), workerCount));
}

/*
 * TenantQueueInit queues tenants 0 to tenantCount - 1, in order.
 * drainDeadline is when the time budget ends, or 0 for one batch each.
 */
void
TenantQueueInit(TenantQueue *queue, int tenantCount, int workerCount, TimestampTz drainDeadline)
{
	SpinLockInit(&queue->mutex);
	queue->head = 0;
	queue->tail = tenantCount;
	queue->tenantCount = tenantCount;
	queue->workerCount = workerCount;
	queue->drainDeadline = drainDeadline;
	for (int i = 0; i < tenantCount; i++)
	{
		QueueRing(queue)[i] = i;
		QueueBatchesTaken(queue)[i] = 0;
	}
	for (int i = 0; i < workerCount; i++)
		QueueInFlight(queue)[i] = 0;
}

/*
 * TenantQueueTake takes the next tenant's batch and returns the tenant's
 * index, or -1 when nothing is queued.  Past the deadline, further batches
 * are dropped from the queue: no batch of the drain starts after the budget.
 */
int
TenantQueueTake(TenantQueue *queue, int workerNumber)
{
	bool		budgetSpent = queue->drainDeadline != 0 && !DrainGoesOn(queue);
	int			taken = -1;

	SpinLockAcquire(&queue->mutex);
	while (queue->head < queue->tail)
	{
		int			index = QueueRing(queue)[queue->head % queue->tenantCount];

		queue->head++;
		if (budgetSpent && QueueBatchesTaken(queue)[index] > 0)
			continue;
		QueueBatchesTaken(queue)[index]++;
		QueueInFlight(queue)[workerNumber]++;
		taken = index;
		break;
	}
	SpinLockRelease(&queue->mutex);
	return taken;
}

/*
 * TenantQueueBatchEnded notes that the tenant's batch has ended (committed,
 * failed or skipped) and queues the tenant again when more rows are waiting
 * and the budget allows another batch, or when the batch must be written
 * again (it found its database behind its lake: see tenant_export.c), which
 * a drain whose budget is spent takes no more (see TenantQueueTake).
 */
void
TenantQueueBatchEnded(TenantQueue *queue, int workerNumber, int tenantIndex, bool moreWaiting,
					  bool writeAgain)
{
	bool		again = writeAgain || (moreWaiting && DrainGoesOn(queue));

	SpinLockAcquire(&queue->mutex);
	if (again)
	{
		QueueRing(queue)[queue->tail % queue->tenantCount] = tenantIndex;
		queue->tail++;
	}
	QueueInFlight(queue)[workerNumber]--;
	SpinLockRelease(&queue->mutex);
}

/*
 * TenantQueueWorkerGone forgets the batches a worker that exited had taken:
 * they will not end in this call (their intents are undone by the next
 * claims), and the other workers must not wait for them.
 */
void
TenantQueueWorkerGone(TenantQueue *queue, int workerNumber)
{
	SpinLockAcquire(&queue->mutex);
	QueueInFlight(queue)[workerNumber] = 0;
	SpinLockRelease(&queue->mutex);
}

/*
 * TenantQueueAwaitMore is for a worker that found the queue empty: while
 * batches of other workers may still queue their tenants again, it waits,
 * cancellably, and returns true as soon as something is queued; it returns
 * false when nothing more can come (no drain, no batch in flight, or the
 * budget spent).
 */
bool
TenantQueueAwaitMore(TenantQueue *queue)
{
	for (;;)
	{
		bool		queued;
		bool		inFlight = false;

		SpinLockAcquire(&queue->mutex);
		queued = queue->head < queue->tail;
		for (int i = 0; i < queue->workerCount; i++)
			inFlight = inFlight || QueueInFlight(queue)[i] > 0;
		SpinLockRelease(&queue->mutex);
		if (queued)
			return true;
		if (!inFlight || !DrainGoesOn(queue))
			return false;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 QUEUE_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * TenantQueueBatchesTaken returns how many batches of the tenant workers
 * took; read once every worker has ended.
 */
uint32
TenantQueueBatchesTaken(TenantQueue *queue, int tenantIndex)
{
	return QueueBatchesTaken(queue)[tenantIndex];
}
