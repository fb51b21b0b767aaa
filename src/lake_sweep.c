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
 * first row past the checkpoint, a row the export will write again, is
 * removed: no committed batch of this history can have one, and no other
 * export is placing files for the tenant.  Only a change from one recorded
 * history to another sweeps: a tenant that has none (new, reinstalled, or
 * last exported by 1.0) may share the lake with files of another database.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "interactions_cron/checkpoint.h"
#include "interactions_cron/hive_path.h"
#include "interactions_cron/lake_sweep.h"
#include "interactions_cron/spi_plans.h"
#include "interactions_cron/subtransaction.h"

/* A file's first row, judged against the checkpoint in a subtransaction. */
typedef struct FirstRowCheck
{
	const ConfiguredTable *history;
	const char *tenantId;
	TimestampTz createdAt;
	const char *id;
	CheckpointPosition checkpoint;
	bool		rewritten;		/* the verdict: the export will write this row again */
} FirstRowCheck;

/*
 * JudgeFirstRow sets check->rewritten when the file's first row exists in
 * the history table and lies past the checkpoint (ties on the created
 * instant compared in the id column's type and collation, as the export
 * orders): the export will write it again, so its old file is a duplicate.
 * A first row the table does not have (a row the lost history had, or one
 * of another database that shares the lake) keeps its file.  It runs as the
 * history table's owner: the type's input function is code.
 */
static void
JudgeFirstRow(void *argument)
{
	FirstRowCheck *check = argument;
	const ConfiguredTable *history = check->history;
	const MappedColumn *id = &history->columns[HISTORY_ID_COLUMN];
	const MappedColumn *created = &history->columns[HISTORY_CREATED_COLUMN];
	Oid			argumentTypes[4] = {TEXTOID, TIMESTAMPTZOID, TEXTOID, TEXTOID};
	Datum		values[4] = {CStringGetTextDatum(check->tenantId), TimestampTzGetDatum(check->createdAt),
		CStringGetTextDatum(check->id),
		check->checkpoint.id ? CStringGetTextDatum(check->checkpoint.id) : (Datum) 0};
	char		nulls[4] = {' ', ' ', ' ', check->checkpoint.id ? ' ' : 'n'};
	bool		isNull;

	ConnectSpi();
	RunQueryAsTableOwner(history,
						 psprintf("SELECT EXISTS (SELECT 1 FROM %s h WHERE %s AND h.%s = %s AND h.%s = %s)"
								  " AND ($4 IS NULL OR %s%s > %s%s)",
								  history->quotedName,
								  HistoryRowsFrom(history, "$1", "$2"),
								  created->quotedName, InstantAsColumnType(created, "$2"),
								  id->quotedName, TextAsColumnType(id, "$3"),
								  TextAsColumnType(id, "$3"), ColumnCollateClause(id),
								  TextAsColumnType(id, "$4"), ColumnCollateClause(id)),
						 4, argumentTypes, values, nulls, 1, "judge a file's first row");
	check->rewritten = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
												  &isNull)) && !isNull;
	FinishSpi();
}

/*
 * IsLostDuplicate says whether a file of the tenant was placed by a lost
 * history: named after a first row past the checkpoint that the export
 * will write again.  A name that is not ours, a shortened id (its full text
 * is not in the name), or a first row that cannot be judged (an id the
 * column's type no longer reads) keeps its file, the last with a warning.
 */
static bool
IsLostDuplicate(const ConfiguredTable *history, const char *tenantId, const char *relativePath,
				CheckpointPosition checkpoint)
{
	const char *name = strrchr(relativePath, '/');
	FirstRowCheck check = {history, tenantId, 0, NULL, checkpoint, false};
	char	   *firstId;
	ErrorData  *error;

	if (!ParseBatchFileName(name != NULL ? name + 1 : relativePath, &check.createdAt, &firstId) ||
		firstId == NULL || check.createdAt < checkpoint.createdAt)
		return false;
	check.id = firstId;
	if (check.createdAt > checkpoint.createdAt)
		check.checkpoint.id = NULL;	/* past whatever the ids */
	error = RunInSubtransaction(JudgeFirstRow, &check);
	if (error != NULL)
	{
		ereport(WARNING,
				(errmsg("interactions_cron: kept \"%s\": its first row could not be judged: %s",
						relativePath, error->message)));
		return false;
	}
	return check.rewritten;
}

/* A sweep of one tenant's files, as the sink's list hands them over. */
typedef struct LakeSweep
{
	ExportSink *sink;
	const ConfiguredTable *history;
	const char *tenantId;
	CheckpointPosition checkpoint;
	int			removed;
} LakeSweep;

/*
 * SweepFile removes one listed file if it is a lost duplicate.
 */
static void
SweepFile(const char *relativePath, void *argument)
{
	LakeSweep  *sweep = argument;

	if (!IsLostDuplicate(sweep->history, sweep->tenantId, relativePath, sweep->checkpoint))
		return;
	ereport(LOG,
			(errmsg("interactions_cron: removing \"%s\", named past its tenant's checkpoint by an export this database's history lost",
					relativePath)));
	sweep->sink->ops->remove(sweep->sink, relativePath);
	sweep->removed++;
}

/*
 * SweepLostFiles removes the tenant's files that a lost history placed past
 * its checkpoint (see IsLostDuplicate) and returns how many.  The caller
 * holds the tenant's claim.
 */
int
SweepLostFiles(ExportSink *sink, const ConfiguredTable *history, const char *tenantId,
			   CheckpointPosition checkpoint)
{
	LakeSweep	sweep = {sink, history, tenantId, checkpoint, 0};

	sink->ops->list(sink, psprintf("exports/%s/interaction_history", HiveEscapePathSegment(tenantId)),
					SweepFile, &sweep);
	return sweep.removed;
}
