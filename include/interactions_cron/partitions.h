/*
 * partitions.h
 *	  Monthly range partitions created ahead of time.
 */
#ifndef INTERACTIONS_CRON_PARTITIONS_H
#define INTERACTIONS_CRON_PARTITIONS_H

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

extern int	EnsureMonthlyPartitions(TimestampTz now, List **warnings);

#endif
