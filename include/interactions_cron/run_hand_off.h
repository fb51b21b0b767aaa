/*
 * run_hand_off.h
 *	  Handing a call's run to a worker of the call's own, which records it
 *	  in job_runs, so that the row needs no free worker slot.
 */
#ifndef INTERACTIONS_CRON_RUN_HAND_OFF_H
#define INTERACTIONS_CRON_RUN_HAND_OFF_H

#include "datatype/timestamp.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"

#include "interactions_cron/run_history.h"

/* What became of a run handed over. */
typedef enum RunHandOverResult
{
	RUN_RECORDED,				/* its row is written, or the worker goes on past the wait */
	RUN_NOT_RECORDED,			/* the worker got it and failed (its error is in the log) */
	RUN_NOT_HANDED_OVER			/* the worker was gone before it got the run */
} RunHandOverResult;

/* The caller's side */
extern RunHandOff *CreateRunHandOff(const char *jobName, TimestampTz startedAt, const char *runBy);
extern dsm_handle RunHandOffSegment(const RunHandOff *handOff);
extern void SetRunRecorderWorker(RunHandOff *handOff, BackgroundWorkerHandle *worker);
extern bool RunRecorderWaits(RunHandOff *handOff);
extern RunHandOverResult HandOverRun(RunHandOff *handOff, const RecordedRun *run, Size size);
extern void ReleaseRunHandOff(RunHandOff *handOff);

/* The worker's side */
extern RunHandOff *AttachRunHandOff(dsm_handle handle);
extern bool TakeRunToRecord(RunHandOff *handOff);
extern void RecordHandedOverRun(RunHandOff *handOff);

#endif
