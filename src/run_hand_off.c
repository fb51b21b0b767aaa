/*
 * run_hand_off.c
 *	  Handing a call's run to a worker of the call's own, which records it
 *	  in job_runs, so that the row needs no free worker slot.
 *
 * The export's workers commit its tenants on their own, so its run's row
 * must be written in a transaction other than the caller's.  A worker slot
 * for that may be long in coming when max_worker_processes is tight: the
 * slots the export's workers free are taken by whoever asks first.  So the
 * export's first worker keeps its slot: once its tenants are done it takes
 * the run to record (TakeRunToRecord), and waits, cancellably, for the
 * caller to hand it over through a message queue in a small segment of the
 * call's own.  That segment is made before the job's subtransaction, so a
 * failed call can still hand over its error.
 *
 * Exactly one of the two records the run: the state below, under its
 * spinlock, moves once from open to taken (by the worker) or to withdrawn
 * (by the caller, which then records the run otherwise).  A caller that
 * ends without handing the run over (cancelled while it built its result,
 * terminated) detaches the queue; the worker that took the run then records
 * it as failed, so no taken run goes unrecorded and no worker waits for
 * ever.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/proc.h"
#include "storage/shm_mq.h"
#include "storage/spin.h"

#include "interactions_cron/run_hand_off.h"

/* Enough for most runs in one piece; a larger one streams through it. */
#define RUN_HAND_OFF_QUEUE_BYTES (64 * 1024)

/* The error recorded for a caller that ended before it handed its run over. */
#define CALLER_GONE_ERROR \
	"the call ended before it handed its run over to be recorded (cancelled, timed out or terminated); " \
	"the tenants its workers committed stay exported"

typedef enum RunRecorderState
{
	RUN_RECORDER_OPEN,			/* no worker has taken the run yet */
	RUN_RECORDER_TAKEN,			/* a worker waits for it and records it */
	RUN_RECORDER_WITHDRAWN		/* the caller records it otherwise */
} RunRecorderState;

/* The hand-off's shared memory; the message queue follows it. */
typedef struct RunHandOffShared
{
	slock_t		mutex;
	RunRecorderState state;
	bool		recorded;		/* set by the worker once its row committed */
	/* the call, for the row of a caller that ends before handing its run over */
	TimestampTz startedAt;
	char		jobName[NAMEDATALEN];
	char		runBy[NAMEDATALEN];
} RunHandOffShared;

/* Either side's view of the hand-off. */
struct RunHandOff
{
	dsm_segment *segment;
	RunHandOffShared *shared;
	shm_mq_handle *queue;		/* the caller's: sends; the worker's: receives */
	BackgroundWorkerHandle *recorder;	/* the caller's: the worker that may take the run */
};

/*
 * HandOffQueue returns the message queue that follows the shared state.
 */
static shm_mq *
HandOffQueue(RunHandOffShared *shared)
{
	return (shm_mq *) ((char *) shared + MAXALIGN(sizeof(RunHandOffShared)));
}

/*
 * CreateRunHandOff makes the hand-off of a call's run, open, in a segment
 * of the current resource owner, with this backend as the queue's sender.
 * With every shared memory segment slot taken it returns NULL: the call is
 * then recorded as without a worker of its own, rather than failed.
 */
RunHandOff *
CreateRunHandOff(const char *jobName, TimestampTz startedAt, const char *runBy)
{
	dsm_segment *segment = dsm_create(MAXALIGN(sizeof(RunHandOffShared)) + RUN_HAND_OFF_QUEUE_BYTES,
									  DSM_CREATE_NULL_IF_MAXSEGMENTS);
	RunHandOff *handOff;
	RunHandOffShared *shared;
	shm_mq	   *queue;

	if (segment == NULL)
		return NULL;
	handOff = palloc0(sizeof(RunHandOff));
	handOff->segment = segment;
	shared = handOff->shared = dsm_segment_address(segment);
	SpinLockInit(&shared->mutex);
	shared->state = RUN_RECORDER_OPEN;
	shared->recorded = false;
	shared->startedAt = startedAt;
	strlcpy(shared->jobName, jobName, sizeof(shared->jobName));
	strlcpy(shared->runBy, runBy, sizeof(shared->runBy));

	queue = shm_mq_create(HandOffQueue(shared), RUN_HAND_OFF_QUEUE_BYTES);
	shm_mq_set_sender(queue, MyProc);
	handOff->queue = shm_mq_attach(queue, handOff->segment, NULL);
	return handOff;
}

/*
 * RunHandOffSegment returns the handle a worker attaches the hand-off by.
 */
dsm_handle
RunHandOffSegment(const RunHandOff *handOff)
{
	return dsm_segment_handle(handOff->segment);
}

/*
 * SetRunRecorderWorker notes the worker that may take the run, so that the
 * caller can wait for it, and a send stops if it is gone.
 */
void
SetRunRecorderWorker(RunHandOff *handOff, BackgroundWorkerHandle *worker)
{
	handOff->recorder = worker;
	shm_mq_set_handle(handOff->queue, worker);
}

/*
 * RunRecorderWaits says whether a worker has taken the run to record; if
 * none has, none may from now on (the caller records it otherwise).
 */
bool
RunRecorderWaits(RunHandOff *handOff)
{
	RunHandOffShared *shared = handOff->shared;
	bool		taken;

	SpinLockAcquire(&shared->mutex);
	if (shared->state == RUN_RECORDER_OPEN)
		shared->state = RUN_RECORDER_WITHDRAWN;
	taken = shared->state == RUN_RECORDER_TAKEN;
	SpinLockRelease(&shared->mutex);
	return taken;
}

/*
 * HandOverRun sends the run to the worker that took it and waits, as for
 * the recording worker, for its row.  Only a worker that is gone before it
 * got the whole run leaves it to the caller.
 */
RunHandOverResult
HandOverRun(RunHandOff *handOff, const RecordedRun *run, Size size)
{
	if (shm_mq_send(handOff->queue, size, run, false, true) != SHM_MQ_SUCCESS)
		return RUN_NOT_HANDED_OVER;
	return WaitForRecorder(handOff->recorder, handOff->shared->jobName, &handOff->shared->recorded)
		? RUN_RECORDED : RUN_NOT_RECORDED;
}

/*
 * ReleaseRunHandOff detaches the caller from the hand-off.
 */
void
ReleaseRunHandOff(RunHandOff *handOff)
{
	dsm_detach(handOff->segment);
}

/*
 * AttachRunHandOff attaches a worker to its call's hand-off for the whole
 * of its life, or returns NULL when the call has ended already.
 */
RunHandOff *
AttachRunHandOff(dsm_handle handle)
{
	RunHandOff *handOff;
	dsm_segment *segment = dsm_attach(handle);

	if (segment == NULL)
		return NULL;
	dsm_pin_mapping(segment);
	handOff = palloc0(sizeof(RunHandOff));
	handOff->segment = segment;
	handOff->shared = dsm_segment_address(segment);
	return handOff;
}

/*
 * TakeRunToRecord takes the run for this worker to record, unless the
 * caller records it otherwise, and says whether it did.
 */
bool
TakeRunToRecord(RunHandOff *handOff)
{
	RunHandOffShared *shared = handOff->shared;
	bool		taken = false;

	SpinLockAcquire(&shared->mutex);
	if (shared->state == RUN_RECORDER_OPEN)
	{
		shared->state = RUN_RECORDER_TAKEN;
		taken = true;
	}
	SpinLockRelease(&shared->mutex);
	return taken;
}

/*
 * RecordHandedOverRun waits for the run this worker took and records it in
 * a transaction of its own; a caller that ends first is recorded as a
 * failed run.  The wait ends on a cancel, a termination or the postmaster's
 * death (shm_mq_receive).
 */
void
RecordHandedOverRun(RunHandOff *handOff)
{
	RunHandOffShared *shared = handOff->shared;
	shm_mq	   *queue = HandOffQueue(shared);
	Size		length;
	void	   *data;
	RecordedRun *run;

	shm_mq_set_receiver(queue, MyProc);
	handOff->queue = shm_mq_attach(queue, handOff->segment, NULL);
	pgstat_report_activity(STATE_RUNNING, "waiting for its interactions_cron run to record");
	if (shm_mq_receive(handOff->queue, &length, &data, false) == SHM_MQ_SUCCESS)
	{
		run = palloc(length);
		memcpy(run, data, length);
	}
	else
		run = DescribeRun(shared->jobName, shared->startedAt, false, CALLER_GONE_ERROR, NULL,
						  shared->runBy, &length);
	CommitRecordedRun(run);
	pg_write_barrier();
	shared->recorded = true;
}
