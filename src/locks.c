/*
 * locks.c
 *	  Transaction-level advisory locks, taken in C so that a busy lock can be
 *	  skipped without a statement of its own.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/lock.h"

#include "interactions_cron/locks.h"

/*
 * AcquireAdvisoryXactLock takes the advisory lock (classId, key) of this
 * database until the end of the transaction, as pg_advisory_xact_lock(int4,
 * int4) would; without wait it returns false at once when another session
 * holds it.
 */
bool
AcquireAdvisoryXactLock(uint32 classId, uint32 key, bool wait)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, classId, key, 2);
	return LockAcquire(&tag, ExclusiveLock, false, !wait) != LOCKACQUIRE_NOT_AVAIL;
}
