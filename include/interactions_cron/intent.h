/*
 * intent.h
 *	  Intent records: the files a tenant's batch is about to place, committed
 *	  before any of them is placed.
 */
#ifndef INTERACTIONS_CRON_INTENT_H
#define INTERACTIONS_CRON_INTENT_H

#include "nodes/pg_list.h"

#include "interactions_cron/sink.h"

extern char *IntentRecord(const char *tenantId, const ExportSink *sink,
						  List *sinkFiles, uint64 rowCount);
extern bool IntentIsOurs(const char *tenantId, const char *token);
/* A step run with the placed files of an intent before it is undone (see IntentClear). */
typedef void (*IntentPlacedFilesStep) (List *placedFiles, void *argument);

extern int	IntentClear(const char *tenantId, IntentPlacedFilesStep beforeRemoving, void *argument);
extern void IntentForget(const char *tenantId);
extern void IntentKeepFiles(const char *tenantId, int placedCount);
extern void IntentRequireValid(const char *tenantId);
extern List *TenantsWithIntents(void);

#endif
