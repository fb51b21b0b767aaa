/*
 * locks.h
 *	  Transaction-level advisory locks of interactions_cron.
 */
#ifndef INTERACTIONS_CRON_LOCKS_H
#define INTERACTIONS_CRON_LOCKS_H

/* The classid of each lock in pg_locks. */
#define TENANT_LOCK_CLASS 20260330
#define CLEANUP_LOCK_CLASS 20260331

extern bool AcquireAdvisoryXactLock(uint32 classId, uint32 key, bool wait);

#endif
