/*
 * run_history.h
 *	  One row in interactions_cron.job_runs per call of a job.
 */
#ifndef INTERACTIONS_CRON_RUN_HISTORY_H
#define INTERACTIONS_CRON_RUN_HISTORY_H

#include "utils/jsonb.h"

/*
 * What a job has done so far, for the history row of a call that fails
 * midway: the export's tenants commit one by one, so a cancelled call still
 * reports those that committed.
 */
typedef struct JobProgress
{
	Jsonb	   *(*describe) (void *state);	/* NULL: nothing to report */
	void	   *state;
} JobProgress;

/* A job's body: does the work and returns its summary. */
typedef Jsonb *(*JobBody) (FunctionCallInfo fcinfo, JobProgress *progress);

extern Jsonb *RunRecordedJob(const char *jobName, JobBody body, FunctionCallInfo fcinfo,
							 bool workCommitsOnItsOwn);

#endif
