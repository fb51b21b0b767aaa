/*
 * worker_pool.h
 *	  Starting an export call's workers and collecting what they report.
 */
#ifndef INTERACTIONS_CRON_WORKER_POOL_H
#define INTERACTIONS_CRON_WORKER_POOL_H

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"

#include "interactions_cron/run_history.h"
#include "interactions_cron/tenant_export.h"

/* The tenants a call hands to its workers, and their outcomes. */
typedef struct WorkerAssignment
{
	TimestampTz watermark;
	int64		batchSize;
	bool		dryRun;
	TimestampTz drainDeadline;	/* end of the time budget; 0: one batch each */
	int			tenantCount;
	const char **tenantIds;
	TenantOutcome **outcomes;	/* filled in as the workers report */
	int			workersStarted;
	RunHandOff *handOff;		/* for worker 0 to take the run to record; NULL: none */
} WorkerAssignment;

/* The library a dynamic worker of ours loads. */
#define WORKER_LIBRARY_NAME "interactions_cron"

extern void RunExportWorkers(WorkerAssignment *assignment);
extern void DescribeDynamicWorker(BackgroundWorker *worker, const char *functionName,
								  const char *type, dsm_segment *segment);
extern bool InDynamicWorkerOfThisLibrary(void);

#endif
