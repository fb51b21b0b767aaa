/*
 * checkpoint.h
 *	  Per-tenant export positions in interactions_cron.export_checkpoints.
 */
#ifndef INTERACTIONS_CRON_CHECKPOINT_H
#define INTERACTIONS_CRON_CHECKPOINT_H

#include "datatype/timestamp.h"

/*
 * Position of the last exported row, in (created, id) keyset order: the
 * row's created instant and its id's text form.  A NULL id stands before
 * every id of that instant: rows from createdAt on are still to export.
 */
typedef struct CheckpointPosition
{
	TimestampTz createdAt;
	char	   *id;
	char	   *lakeEpoch;		/* the history it was recorded in (see CurrentLakeEpoch) */
} CheckpointPosition;

extern const CheckpointPosition CheckpointStart;

extern char *CurrentLakeEpoch(void);
extern CheckpointPosition CheckpointRead(const char *tenantId);
extern void CheckpointRecordLakeEpoch(const char *tenantId);
extern bool CheckpointClaim(const char *tenantId, bool wait, CheckpointPosition *position);
extern void CheckpointRecordSuccess(const char *tenantId,
									CheckpointPosition position,
									int64 rowsExported, int64 filesWritten,
									const char *lastFile);
extern void CheckpointRecordFailure(const char *tenantId, const char *error);

#endif
