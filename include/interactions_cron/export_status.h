/*
 * export_status.h
 *	  The backlog probe behind export_status, which the metrics share.
 */
#ifndef INTERACTIONS_CRON_EXPORT_STATUS_H
#define INTERACTIONS_CRON_EXPORT_STATUS_H

#include "executor/spi.h"
#include "nodes/pg_list.h"

#include "interactions_cron/relations.h"

/* Columns of a ReadBacklogs row. */
#define BACKLOG_WAITING_COLUMN 1
#define BACKLOG_EXCEEDS_COLUMN 2
#define BACKLOG_OLDEST_COLUMN 3

extern SPITupleTable *ReadBacklogs(const ConfiguredTable *history, List *tenantList,
								   int64 countLimit);

#endif
