/*
 * standby_wait.c
 *	  Waiting for the standbys that stream from this server to have flushed
 *	  the WAL up to a position.
 *
 * After an asynchronous failover, the new primary removes what an export it
 * lost had placed, tenant by tenant, by comparing the lake with a checkpoint
 * row recorded in another history (see lake_sweep.c).  A tenant's first
 * batch has no such row on a standby that has not received it: promoted, it
 * would write the batch's rows a second time.  So such a batch is placed
 * only once every physical standby streaming from this server has flushed
 * its intent.  Synchronous standbys are waited for already, by the commit
 * (SyncRepWaitForLSN).  Not seen: a standby that is not connected, one that
 * streams from another standby (cascading), a receiver that reports no
 * flush position (pg_receivewal without --synchronous, a standby with
 * wal_receiver_status_interval = 0), and a logical walsender, which replays
 * no checkpoint.
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "replication/syncrep.h"
#include "replication/walsender.h"
#include "replication/walsender_private.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "interactions_cron/standby_wait.h"

/* How often the walsenders' positions are read again while waiting. */
#define STANDBY_POLL_MILLISECONDS 10

/*
 * IsPhysicalWalSender says whether a walsender streams WAL to a standby: a
 * logical one is connected to a database.
 */
static bool
IsPhysicalWalSender(pid_t pid)
{
	PGPROC	   *proc = BackendPidGetProc(pid);

	return proc != NULL && proc->databaseId == InvalidOid;
}

/* A standby that has not flushed the WAL far enough yet. */
typedef struct LaggingStandby
{
	pid_t		walsenderPid;
	XLogRecPtr	flushed;
} LaggingStandby;

/*
 * FindLaggingStandby looks for a physical standby, streaming or catching
 * up, that reports a flush position short of target, and says whether it
 * found one.
 */
static bool
FindLaggingStandby(XLogRecPtr target, LaggingStandby *lagging)
{
	for (int i = 0; i < max_wal_senders; i++)
	{
		WalSnd	   *walsnd = &WalSndCtl->walsnds[i];
		pid_t		pid;
		WalSndState state;
		XLogRecPtr	flushed;

		SpinLockAcquire(&walsnd->mutex);
		pid = walsnd->pid;
		state = walsnd->state;
		flushed = walsnd->flush;
		SpinLockRelease(&walsnd->mutex);
		if (pid == 0 || (state != WALSNDSTATE_STREAMING && state != WALSNDSTATE_CATCHUP) ||
			flushed == InvalidXLogRecPtr || flushed >= target || !IsPhysicalWalSender(pid))
			continue;
		lagging->walsenderPid = pid;
		lagging->flushed = flushed;
		return true;
	}
	return false;
}

/*
 * WaitForStandbysToFlush waits, at most timeoutMs, until every physical
 * standby streaming from this server has flushed the WAL up to target.  It
 * returns NULL once they have, or a description of one that has not.  The
 * wait can be cancelled.
 */
char *
WaitForStandbysToFlush(XLogRecPtr target, int timeoutMs)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeoutMs);
	LaggingStandby lagging;

	while (FindLaggingStandby(target, &lagging))
	{
		if (GetCurrentTimestamp() >= deadline)
			return psprintf("the standby of walsender PID %d has flushed the WAL up to %X/%X, not yet to %X/%X",
							(int) lagging.walsenderPid, LSN_FORMAT_ARGS(lagging.flushed),
							LSN_FORMAT_ARGS(target));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 STANDBY_POLL_MILLISECONDS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	return NULL;
}

/*
 * SynchronousStandbysHave says whether the synchronous standbys the
 * caller's synchronous_commit waits for have the WAL up to target, as far
 * as that setting asks (written, flushed or applied), or none are
 * configured.  SyncRepWaitForLSN returns, with a warning, when its wait is
 * cancelled: this tells that from a wait that ended.
 */
bool
SynchronousStandbysHave(XLogRecPtr target)
{
	int			mode;
	bool		have;

	switch (synchronous_commit)
	{
		case SYNCHRONOUS_COMMIT_REMOTE_WRITE:
			mode = SYNC_REP_WAIT_WRITE;
			break;
		case SYNCHRONOUS_COMMIT_REMOTE_FLUSH:
			mode = SYNC_REP_WAIT_FLUSH;
			break;
		case SYNCHRONOUS_COMMIT_REMOTE_APPLY:
			mode = SYNC_REP_WAIT_APPLY;
			break;
		default:
			return true;
	}
	LWLockAcquire(SyncRepLock, LW_SHARED);
	have = (WalSndCtl->sync_standbys_status & SYNC_STANDBY_DEFINED) == 0 ||
		WalSndCtl->lsn[mode] >= target;
	LWLockRelease(SyncRepLock);
	return have;
}
