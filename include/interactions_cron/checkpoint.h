/*
 * checkpoint.h
 *	  Per-tenant export positions in interactions_cron.export_checkpoints.
 */
#ifndef INTERACTIONS_CRON_CHECKPOINT_H
#define INTERACTIONS_CRON_CHECKPOINT_H

#include "datatype/timestamp.h"

#include "interactions_cron/relations.h"
#include "interactions_cron/sink.h"

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
	bool		released;		/* handed over to another database (tenant_state) */
} CheckpointPosition;

/* What an export's claim of a tenant found. */
typedef enum ExportClaim
{
	EXPORT_CLAIM_TAKEN,			/* claimed: export it */
	EXPORT_CLAIM_BUSY,			/* another export holds it */
	EXPORT_CLAIM_NOT_EXPORTED	/* out of the filter, or released, by now */
} ExportClaim;

/*
 * The history of a checkpoint whose database was found behind its own lake
 * (see MarkIfBehindLake in tenant_export.c): no database's, so that the
 * next claim sweeps as after a change of history.
 */
#define LAKE_EPOCH_BEHIND_LAKE "behind its lake"

extern const CheckpointPosition CheckpointStart;

extern char *CurrentLakeEpoch(void);
extern char *CurrentHistoryId(void);
extern Oid	OriginDatabaseStillHere(const OriginParts *origin);
extern bool HistoryIsThisDatabases(const OriginParts *origin, bool placerStillHere);
extern List *CheckpointAdoptedFrom(const char *tenantId);
extern bool OriginInSourcesLostHistory(List *adoptedFrom, const OriginParts *origin);
extern CheckpointPosition CheckpointRead(const char *tenantId);
extern void CheckpointRecordLakeEpoch(const char *tenantId, const char *lakeEpoch);
extern void CheckpointEnterHistory(const char *tenantId, const char *lakeEpoch,
								   bool forgetPositionXid);
extern void CheckpointClaim(const char *tenantId, CheckpointPosition *position);
extern ExportClaim CheckpointClaimForExport(const ConfiguredTable *tenants, const char *tenantId,
											CheckpointPosition *position);
extern bool CheckpointReclaim(const char *tenantId);
extern void CheckpointRequireUnreleased(const char *tenantId, CheckpointPosition checkpoint,
										const char *hint);
extern void CheckpointRecordSuccess(const char *tenantId,
									CheckpointPosition position,
									int64 rowsExported, int64 filesWritten,
									const char *lastFile);
extern void CheckpointRecordFailure(const char *tenantId, const char *error);
extern void CheckpointRecordAdoption(const char *tenantId, List *sourceOrigins);

#endif
