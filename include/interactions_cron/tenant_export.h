/*
 * tenant_export.h
 *	  Tenants' batches, each in transactions of its own, in groups, inside an
 *	  export worker.
 */
#ifndef INTERACTIONS_CRON_TENANT_EXPORT_H
#define INTERACTIONS_CRON_TENANT_EXPORT_H

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "nodes/pg_list.h"

#include "interactions_cron/relations.h"
#include "interactions_cron/sink.h"

/* What happened to one tenant, as reported in the run's result. */
typedef struct TenantOutcome
{
	int			tenantIndex;	/* its place in the call's tenant list */
	uint64		exported;
	List	   *files;			/* relative paths, in order */
	char	   *error;			/* NULL unless it failed */
	bool		skipped;		/* another export held it */
	bool		notExported;	/* out of the filter, or released, by its claim */
	bool		batchFull;		/* more rows may be waiting (the last batch was full) */
	bool		writeAgain;		/* found behind its lake: write it again (worker side) */
	int			batches;		/* batches that exported rows (leader side) */
	int			batchesReported;	/* batches whose outcome arrived (leader side) */
} TenantOutcome;

/* Receives a tenant's outcome; false once nobody listens any more. */
typedef bool (*TenantOutcomeReport) (void *argument, const TenantOutcome *outcome);

/* What a worker exports with, fixed for the whole run. */
typedef struct TenantExporter
{
	ExportSink *sink;
	SPIPlanPtr	rowsFromPlan;	/* the batch query without a last id */
	SPIPlanPtr	rowsPastPlan;	/* and with one (see PrepareRowsPlan) */
	ConfiguredTable tenants;	/* a claim re-reads the active tenants filter */
	ConfiguredTable history;	/* the batch query runs as its owner */
	char	   *lakeEpoch;		/* this database's history (CurrentLakeEpoch) */
	struct LateRowsMemory *lateRowsMemory;	/* see FindLateRows */
	TimestampTz watermark;
	int64		batchSize;
	bool		dryRun;
	MemoryContext groupContext; /* the open group's, reset after each group */
	List	   *group;			/* the open group's batches, in order */
	TimestampTz groupStarted;	/* when its first batch was written */
	XLogRecPtr	intentsEnd;		/* end of the WAL of its last intent */
	TenantOutcomeReport report; /* where outcomes go, as batches end */
	void	   *reportArgument;
	bool		callerGone;		/* report returned false */
	bool		standbyWaitSpent;	/* a wait for the standbys timed out: shorter ones */
} TenantExporter;

extern TenantExporter *CreateTenantExporter(TimestampTz watermark, int64 batchSize, bool dryRun,
											 TenantOutcomeReport report, void *reportArgument);
extern bool TenantGroupAdd(TenantExporter *exporter, int index, const char *tenantId);
extern bool TenantGroupIsFull(const TenantExporter *exporter);
extern void TenantGroupFinish(TenantExporter *exporter);
extern void TenantGroupReset(TenantExporter *exporter);

#endif
