/*
 * run_history.h
 *	  One row in interactions_cron.job_runs per call of a job.
 */
#ifndef INTERACTIONS_CRON_RUN_HISTORY_H
#define INTERACTIONS_CRON_RUN_HISTORY_H

#include "datatype/timestamp.h"
#include "postmaster/bgworker.h"
#include "utils/jsonb.h"

/* A run as its recorder gets it: one flat block, for shared memory. */
typedef struct RecordedRun RecordedRun;

/* Where a worker of the call's own takes its run to record (run_hand_off.c). */
typedef struct RunHandOff RunHandOff;

/*
 * What a job has done so far, for the history row of a call that fails
 * midway: the export's tenants commit one by one, so a cancelled call still
 * reports those that committed.  A job whose work commits on its own gets a
 * hand-off, to give to the worker that is to record its run.
 */
typedef struct JobProgress
{
	Jsonb	   *(*describe) (void *state);	/* NULL: nothing to report */
	void	   *state;
	RunHandOff *handOff;		/* NULL: the job's work is the caller's transaction's */
	bool		committedElsewhere; /* work committed outside the caller's transaction */
} JobProgress;

/* A job's body: does the work and returns its summary. */
typedef Jsonb *(*JobBody) (FunctionCallInfo fcinfo, JobProgress *progress);

extern Jsonb *RunRecordedJob(const char *jobName, JobBody body, FunctionCallInfo fcinfo,
							 bool workCommitsOnItsOwn);
extern RecordedRun *DescribeRun(const char *jobName, TimestampTz startedAt, bool ok,
								const char *error, Jsonb *summary, const char *runBy, Size *size);
extern void CommitRecordedRun(const RecordedRun *run);
extern bool WaitForRecorder(BackgroundWorkerHandle *handle, const char *jobName,
							volatile bool *recorded);

#endif
