/*
 * lake_sweep.h
 *	  Removing the files a lost history placed past a tenant's checkpoint.
 */
#ifndef INTERACTIONS_CRON_LAKE_SWEEP_H
#define INTERACTIONS_CRON_LAKE_SWEEP_H

#include "interactions_cron/checkpoint.h"
#include "interactions_cron/relations.h"
#include "interactions_cron/sink.h"

extern int	SweepLostFiles(ExportSink *sink, const ConfiguredTable *history,
						   const char *tenantId, CheckpointPosition checkpoint);

#endif
