/*
 * watermark.c
 *	  The safe upper bound of created_at for an export.
 *
 * A row's created_at defaults to now(), its transaction's start time, but the
 * row only becomes visible when that transaction commits, which can be long
 * after an export has moved past that time.  Exporting only rows older than
 * the start of every transaction still running in this database closes that
 * gap: a transaction that has not started yet will stamp a later time, and one
 * that already committed is in the snapshot the export query takes afterwards
 * (which is why the export insists on READ COMMITTED).  Waiting for the
 * table's current lockers would not do: a transaction can take its start time
 * long before it first touches the table.
 *
 * Start times come from the backends' advertised status.  A backend with
 * track_activities off advertises none, yet it can be inside a transaction
 * (it has a virtual transaction id in the proc array): the export waits for
 * such a transaction, if it was running when the watermark was taken, to
 * end, at most interactions_cron.watermark_wait, and past that refuses to
 * export rather than miss its rows.  A prepared
 * transaction (two-phase commit) advertises no start either, and is treated
 * the same way.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/sinvaladt.h"
#include "utils/backend_status.h"
#include "utils/timestamp.h"

#include "interactions_cron/guc.h"
#include "interactions_cron/pg_compat.h"
#include "interactions_cron/subtransaction.h"
#include "interactions_cron/watermark.h"

/* How long a backend may take between getting a transaction id and advertising its start. */
#define ADVERTISE_GRACE_MS 10

/*
 * AdvertisedWatermark returns min(now - margin, start of the oldest
 * advertised transaction of this database).  Autovacuum workers never
 * insert rows and are left out so that a long vacuum does not hold exports
 * back.  The margin covers the instant between a backend taking its start
 * time and advertising it.
 */
static TimestampTz
AdvertisedWatermark(void)
{
	TimestampTz watermark = GetCurrentTimestamp() -
		(TimestampTz) WatermarkMarginMs * INT64CONST(1000);
	int			backendCount;

	/* Read the shared status array afresh, not a copy cached earlier in this transaction. */
	pgstat_clear_backend_activity_snapshot();
	backendCount = pgstat_fetch_stat_numbackends();

	for (int backendIndex = 1; backendIndex <= backendCount; backendIndex++)
	{
		LocalPgBackendStatus *local = LocalBackendStatusByIndex(backendIndex);
		PgBackendStatus *backend;

		if (local == NULL)
			continue;
		backend = &local->backendStatus;
		if (backend->st_databaseid != MyDatabaseId ||
			backend->st_backendType == B_AUTOVAC_WORKER ||
			backend->st_xact_start_timestamp == 0)
			continue;

		if (backend->st_xact_start_timestamp < watermark)
			watermark = backend->st_xact_start_timestamp;
	}

	return watermark;
}

/*
 * AdvertisesTransactionStart says whether the backend with this PID
 * advertises the start of a transaction.
 */
static bool
AdvertisesTransactionStart(int pid)
{
	int			backendCount;

	pgstat_clear_backend_activity_snapshot();
	backendCount = pgstat_fetch_stat_numbackends();
	for (int backendIndex = 1; backendIndex <= backendCount; backendIndex++)
	{
		LocalPgBackendStatus *local = LocalBackendStatusByIndex(backendIndex);

		if (local != NULL && local->backendStatus.st_procpid == pid)
			return local->backendStatus.st_xact_start_timestamp != 0;
	}
	return false;
}

/*
 * TransactionsRunningNow returns the virtual transaction ids of the
 * transactions of this database running now (other than the caller's own,
 * and vacuum's), in *count.
 */
static VirtualTransactionId *
TransactionsRunningNow(int *count)
{
	return GetCurrentVirtualXIDs(InvalidTransactionId, false, false,
								 PROC_IS_AUTOVACUUM | PROC_IN_VACUUM, count);
}

/*
 * FindSilentTransaction looks through running[*next..count) for a
 * transaction still running whose start time nobody advertises, and returns
 * it with its backend's PID (0 for a prepared transaction, which has no
 * backend), *next set past it; false when there is none left.  A backend
 * that is only between getting its transaction id and advertising it gets
 * a short grace.
 */
static bool
FindSilentTransaction(const VirtualTransactionId *running, int count, int *next,
					  VirtualTransactionId *silent, int *pid)
{
	for (; *next < count; (*next)++)
	{
		VirtualTransactionId vxid = running[*next];
		PGPROC	   *proc = VirtualTransactionProc(vxid);

		/*
		 * A prepared transaction keeps the virtual transaction id of the
		 * backend that prepared it, which has moved on (or the slot was
		 * reused): that backend's start time is not this transaction's.
		 */
		int			backendPid = (proc != NULL && ProcLocalTransactionId(proc) == vxid.localTransactionId)
			? proc->pid : 0;

		if (backendPid != 0 && AdvertisesTransactionStart(backendPid))
			continue;
		if (backendPid != 0)
			pg_usleep(ADVERTISE_GRACE_MS * 1000L);
		if ((backendPid != 0 && AdvertisesTransactionStart(backendPid)) ||
			VirtualXactLock(vxid, false))
			continue;
		*silent = vxid;
		*pid = backendPid;
		(*next)++;
		return true;
	}
	return false;
}

/*
 * SilentTransactionError describes the transaction that failed the run.
 */
static char *
SilentTransactionError(int pid)
{
	if (pid == 0)
		return psprintf("not exported: a prepared transaction (two-phase commit) of this database "
						"did not end within interactions_cron.watermark_wait (%d ms); its start time "
						"is not known, so its rows could be missed (COMMIT PREPARED or ROLLBACK PREPARED it)",
						WatermarkWaitMs);
	return psprintf("not exported: the transaction of backend PID %d does not advertise its start "
					"(track_activities is off for it) and did not end within "
					"interactions_cron.watermark_wait (%d ms); its rows could be missed",
					pid, WatermarkWaitMs);
}

/* The virtual transaction WaitBody waits for. */
typedef struct SilentWait
{
	VirtualTransactionId vxid;
} SilentWait;

/*
 * WaitBody waits for the transaction's lock, the way CREATE INDEX
 * CONCURRENTLY waits for older snapshots: a heavyweight lock wait that
 * pg_locks shows and cancel interrupts.
 */
static void
WaitBody(void *argument)
{
	SilentWait *wait = argument;

	(void) VirtualXactLock(wait->vxid, true);
}

/*
 * WaitForTransactionEnd waits at most timeoutMs for the transaction to end
 * and says whether it did.  The bound is the lock_timeout machinery, so the
 * wait stays an ordinary, cancellable lock wait.
 */
static bool
WaitForTransactionEnd(VirtualTransactionId vxid, int timeoutMs)
{
	SilentWait	wait = {vxid};
	int			savedLockTimeout = LockTimeout;
	ErrorData  *error;

	if (timeoutMs <= 0)
		return false;
	LockTimeout = timeoutMs;
	error = RunInSubtransaction(WaitBody, &wait);
	LockTimeout = savedLockTimeout;

	if (error != NULL && error->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
		ReThrowError(error);
	return error == NULL;
}

/*
 * ExportWatermark returns the watermark of a run.  If a silent transaction
 * outlives interactions_cron.watermark_wait, *silentTransaction is set to the
 * error that fails the run's tenants (all of them: nothing tells which
 * tenants' rows it wrote); else it is NULL.
 *
 * Only the transactions running when the watermark is taken are waited for:
 * one that starts later stamps its rows with a later time, past the
 * watermark, so busy short writers never keep a run waiting.
 */
TimestampTz
ExportWatermark(char **silentTransaction)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), WatermarkWaitMs);

	/*
	 * The advertised starts are read first: a transaction seen advertising
	 * bounds the watermark even if it prepares (and stops advertising) a
	 * moment later, and one that was already silent is in the list taken
	 * right after.
	 */
	TimestampTz watermark = AdvertisedWatermark();
	int			count;
	VirtualTransactionId *running = TransactionsRunningNow(&count);
	int			next = 0;
	VirtualTransactionId silent;
	int			pid;

	*silentTransaction = NULL;
	while (FindSilentTransaction(running, count, &next, &silent, &pid))
	{
		long		remainingMs = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);

		if (!WaitForTransactionEnd(silent, (int) Min(remainingMs, INT_MAX)))
		{
			*silentTransaction = SilentTransactionError(pid);
			break;
		}
	}
	return watermark;
}
