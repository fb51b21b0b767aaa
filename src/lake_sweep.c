/*
 * lake_sweep.c
 *	  Removing the files a lost history placed past a tenant's checkpoint.
 *
 * A tenant's files are undone by its intent when a batch does not finish.
 * But a failover with asynchronous replication can lose whole exports:
 * their files are in the lake, and neither their checkpoint nor their
 * intent reached the new primary.  The next export writes those rows again,
 * in batches that need not start at the same rows, so their old files would
 * hold them a second time.  Once per tenant and history (see
 * CurrentLakeEpoch), under the tenant's claim, every file named after a
 * first row past the checkpoint is removed: no committed batch of this
 * history can have one, and no other export is placing files for the tenant.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "interactions_cron/checkpoint.h"
#include "interactions_cron/hive_path.h"
#include "interactions_cron/lake_sweep.h"
#include "interactions_cron/spi_plans.h"

/*
 * IdIsPast says whether a file's first id orders after the checkpoint's id,
 * compared in the history's id type and collation, as the export orders.
 * It runs as the history table's owner: the type's input function is code.
 */
static bool
IdIsPast(const ConfiguredTable *history, const char *fileId, const char *checkpointId)
{
	const MappedColumn *id = &history->columns[HISTORY_ID_COLUMN];
	Oid			argumentTypes[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(fileId), CStringGetTextDatum(checkpointId)};
	bool		isNull;
	bool		past;

	RunQueryAsTableOwner(history,
						 psprintf("SELECT %s%s > %s%s",
								  TextAsColumnType(id, "$1"), ColumnCollateClause(id),
								  TextAsColumnType(id, "$2"), ColumnCollateClause(id)),
						 2, argumentTypes, values, NULL, 1, "compare a file's first id");
	past = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isNull));
	SPI_freetuptable(SPI_tuptable);
	return past;
}

/*
 * IsPastCheckpoint says whether a file named after its first row lies past
 * the checkpoint.  A name that is not ours, or whose shortened id cannot be
 * compared at the checkpoint's instant, is kept.
 */
static bool
IsPastCheckpoint(const ConfiguredTable *history, const char *relativePath,
				 CheckpointPosition checkpoint)
{
	const char *name = strrchr(relativePath, '/');
	TimestampTz firstCreatedAt;
	char	   *firstId;

	if (!ParseBatchFileName(name != NULL ? name + 1 : relativePath, &firstCreatedAt, &firstId))
		return false;
	if (firstCreatedAt != checkpoint.createdAt)
		return firstCreatedAt > checkpoint.createdAt;
	if (checkpoint.id == NULL)
		return true;
	return firstId != NULL && IdIsPast(history, firstId, checkpoint.id);
}

/*
 * SweepLostFiles removes the tenant's files named past its checkpoint and
 * returns how many.  The caller holds the tenant's claim.
 */
int
SweepLostFiles(ExportSink *sink, const ConfiguredTable *history, const char *escapedTenantId,
			   CheckpointPosition checkpoint)
{
	List	   *files = sink->ops->list(sink, psprintf("exports/%s/interaction_history",
													   escapedTenantId));
	ListCell   *cell;
	int			removed = 0;

	foreach(cell, files)
	{
		const char *relativePath = lfirst(cell);

		if (!IsPastCheckpoint(history, relativePath, checkpoint))
			continue;
		ereport(LOG,
				(errmsg("interactions_cron: removing \"%s\", named past its tenant's checkpoint by an export this database's history lost",
						relativePath)));
		sink->ops->remove(sink, relativePath);
		removed++;
	}
	return removed;
}
