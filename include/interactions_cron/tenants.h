/*
 * tenants.h
 *	  The tenants an export run works through.
 */
#ifndef INTERACTIONS_CRON_TENANTS_H
#define INTERACTIONS_CRON_TENANTS_H

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

#include "interactions_cron/relations.h"

typedef struct TenantToExport
{
	char	   *id;
	char	   *name;
	bool		hasPendingRows; /* rows past its checkpoint and below the watermark,
								 * or an unfinished batch */
	bool		aheadOfClock;	/* its checkpoint is ahead of this server's clock */
} TenantToExport;

extern bool StringListContains(List *strings, const char *value);
extern Datum TenantIdArray(List *tenantList);
extern struct SPITupleTable *ReadCheckpointPositions(Datum ids, Datum *createdAts,
													  Datum *lastIds);
extern List *ReadActiveTenants(const ConfiguredTable *tenants, const char *onlyTenantId,
							   MemoryContext resultContext);
extern List *ListActiveTenants(const ConfiguredTable *tenants,
							   const ConfiguredTable *history,
							   TimestampTz watermark, const char *onlyTenantId,
							   MemoryContext resultContext);
extern void PrepareTenantActivityPlan(ConfiguredTable *tenants);
extern bool TenantIsActive(const ConfiguredTable *tenants, const char *tenantId);
extern void RequireTenant(const ConfiguredTable *tenants, const char *tenantId,
						  bool mustBeActive);

#endif
