/*
 * fsync_together.h
 *	  Many fsyncs in flight at once, so that a group's device cache flushes
 *	  overlap instead of queueing one behind the other.
 */
#ifndef INTERACTIONS_CRON_FSYNC_TOGETHER_H
#define INTERACTIONS_CRON_FSYNC_TOGETHER_H

/* A path to make durable, and what its fsync said. */
typedef struct PathToSync
{
	const char *path;
	bool		isDirectory;
	bool		synced;			/* out: its fsync ran; false: left to the caller */
	int			syncErrno;		/* out: when synced, 0 or how the fsync failed */
} PathToSync;

extern void FsyncTogether(PathToSync *paths, int count);

#endif
