/*
 * tenant_export.h
 *	  One tenant's batch, in transactions of its own, inside an export worker.
 */
#ifndef INTERACTIONS_CRON_TENANT_EXPORT_H
#define INTERACTIONS_CRON_TENANT_EXPORT_H

#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "nodes/pg_list.h"

#include "interactions_cron/sink.h"

/* What happened to one tenant, as reported in the run's result. */
typedef struct TenantOutcome
{
	uint64		exported;
	List	   *files;			/* relative paths, in order */
	char	   *error;			/* NULL unless it failed */
	bool		skipped;		/* another export held it */
	bool		batchFull;		/* more rows may be waiting */
	bool		reported;		/* an outcome arrived (leader side) */
} TenantOutcome;

/* What a worker exports with, fixed for the whole run. */
typedef struct TenantExporter
{
	ExportSink *sink;
	SPIPlanPtr	rowsPlan;
	TimestampTz watermark;
	int64		batchSize;
	bool		dryRun;
	MemoryContext tenantContext;	/* reset after every tenant */
} TenantExporter;

extern TenantExporter *CreateTenantExporter(TimestampTz watermark, int64 batchSize, bool dryRun);
extern TenantOutcome *ExportTenant(TenantExporter *exporter, const char *tenantId);

#endif
