/*
 * lake_sweep.h
 *	  Removing the files a lost history placed past a tenant's checkpoint.
 */
#ifndef INTERACTIONS_CRON_LAKE_SWEEP_H
#define INTERACTIONS_CRON_LAKE_SWEEP_H

#include "interactions_cron/checkpoint.h"
#include "interactions_cron/relations.h"
#include "interactions_cron/sink.h"

/* Which of a tenant's files past its checkpoint a sweep judges. */
typedef enum SweepScope
{
	SWEEP_EVERY_FILE,			/* every file (another database's duplicate
								 * fails it) */
	SWEEP_LOST_HISTORY_FILES	/* those this database, or one its checkpoint
								 * was adopted from, placed in a history it
								 * lost; other databases' are kept in view */
} SweepScope;

/* What a sweep did. */
typedef struct LakeSweep
{
	int			removed;		/* files removed */
	int			unjudged;		/* files that could not be judged, and stay */
	const char *firstUnjudged;	/* the first of them */
	int			firstErrorCode; /* and why: its SQLSTATE */
	const char *firstErrorMessage;	/* and message */
} LakeSweep;

extern bool FileHoldsRowsPastCheckpoint(ExportSink *sink, const ConfiguredTable *history,
										const char *tenantId, const char *relativePath,
										CheckpointPosition checkpoint);
extern LakeSweep SweepLostFiles(ExportSink *sink, const ConfiguredTable *history,
								const char *tenantId, CheckpointPosition checkpoint,
								SweepScope scope, List *passOver);

#endif
