/*
 * export_status.h
 *	  What export_status and the metrics share: the start of a status
 *	  read, the tenants' checkpoints, and the backlog probe.
 */
#ifndef INTERACTIONS_CRON_EXPORT_STATUS_H
#define INTERACTIONS_CRON_EXPORT_STATUS_H

#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/pg_list.h"

#include "interactions_cron/relations.h"

/* Columns of a ReadBacklogs row. */
#define BACKLOG_WAITING_COLUMN 1
#define BACKLOG_EXCEEDS_COLUMN 2
#define BACKLOG_OLDEST_COLUMN 3

extern List *StartStatusRead(FunctionCallInfo fcinfo, ConfiguredTable *history);
extern SPITupleTable *ReadTenantCheckpoints(SPIPlanPtr *cache, const char *columns,
											List *tenantList);
extern SPITupleTable *ReadBacklogs(const ConfiguredTable *history, List *tenantList,
								   int64 countLimit);

#endif
