/*
 * run_history.h
 *	  One row in interactions_cron.job_runs per call of a job.
 */
#ifndef INTERACTIONS_CRON_RUN_HISTORY_H
#define INTERACTIONS_CRON_RUN_HISTORY_H

#include "utils/jsonb.h"

/* A job's body: does the work and returns its summary. */
typedef Jsonb *(*JobBody) (FunctionCallInfo fcinfo);

extern Jsonb *RunRecordedJob(const char *jobName, JobBody body, FunctionCallInfo fcinfo);

#endif
