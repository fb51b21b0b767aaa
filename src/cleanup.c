/*
 * cleanup.c
 *	  interactions_cron.cleanup(): retention of suppressions, daily summaries
 *	  and run history, and partition maintenance, in one transaction.
 *
 * Deletes run leaf table by leaf table in statements of at most
 * interactions_cron.cleanup_batch_size rows, found by one scan of the leaf
 * and deleted by ctid, so no statement's work (nor its queue of trigger
 * events) grows with the backlog, and the whole costs what one DELETE would
 * (see DeleteFromLeaf).  Each leaf's deletes run as the configured table's owner, who owns
 * every leaf (see RefuseMembersOfOtherOwners), in a security-restricted
 * operation, for callers that may select and delete on the configured table
 * themselves: a trigger on a platform table, a clone of the table's on a
 * leaf too, is its owner's code, and never runs with the rights of
 * cleanup()'s caller, often a superuser.  Everything
 * commits together: a real failure raises an error and deletes nothing.  A
 * second cleanup while one is running returns at once with status "skipped".
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/plannodes.h"
#include "storage/bufmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/plancache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "interactions_cron/guc.h"
#include "interactions_cron/ndjson.h"
#include "interactions_cron/partitions.h"
#include "interactions_cron/preconditions.h"
#include "interactions_cron/relations.h"
#include "interactions_cron/run_history.h"
#include "interactions_cron/spi_plans.h"

static SPIPlanPtr claimPlan = NULL;

/* What one cleanup call did. */
typedef struct CleanupCounts
{
	int64		expiredSuppressions;
	int64		oldDailySummaries;
	int			partitionsEnsured;
	int64		oldRunHistory;
	List	   *warnings;
} CleanupCounts;

/*
 * LeafRelations returns a table's leaf partitions, or the table itself when
 * it is not partitioned (pg_partition_tree() then returns no rows).
 */
static List *
LeafRelations(const ConfiguredTable *table)
{
	MemoryContext callerContext = CurrentMemoryContext;
	Oid			argumentTypes[1] = {REGCLASSOID};
	Datum		values[1] = {ObjectIdGetDatum(table->relid)};
	List	   *leaves = NIL;
	int			code = SPI_execute_with_args("SELECT c.oid,"
											 "       pg_catalog.quote_ident(n.nspname) || '.' ||"
											 "       pg_catalog.quote_ident(c.relname)"
											 " FROM pg_catalog.pg_partition_tree($1) t"
											 " JOIN pg_catalog.pg_class c ON c.oid = t.relid"
											 " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
											 " WHERE t.isleaf ORDER BY 2",
											 1, argumentTypes, values, NULL, true, 0);

	if (code != SPI_OK_SELECT)
		elog(ERROR, "could not list partitions: %s", SPI_result_code_string(code));

	MemoryContextSwitchTo(callerContext);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	tupleDesc = SPI_tuptable->tupdesc;
		ConfiguredTable *leaf = palloc(sizeof(ConfiguredTable));
		bool		isNull;

		leaf->relid = DatumGetObjectId(SPI_getbinval(tuple, tupleDesc, 1, &isNull));
		leaf->owner = table->owner;
		leaf->quotedName = SPI_getvalue(tuple, tupleDesc, 2);
		leaves = lappend(leaves, leaf);
	}
	SPI_freetuptable(SPI_tuptable);
	if (leaves == NIL)
	{
		ConfiguredTable *itself = palloc(sizeof(ConfiguredTable));

		*itself = *table;
		leaves = list_make1(itself);
	}
	return leaves;
}

/* One leaf's deletes, as RunAsRole hands them over. */
typedef struct LeafDelete
{
	Oid			relid;
	const char *leaf;
	const char *condition;
	Oid			conditionType;
	Datum		conditionValue;
	int64		deleted;
} LeafDelete;

/*
 * PrepareGenericPlan prepares a DELETE by tids or tid range with a plan made
 * once for any values: one made for a batch's thousands of tids costs them
 * as random reads and would scan the whole leaf for every batch instead.
 */
static SPIPlanPtr
PrepareGenericPlan(const char *sql, int argumentCount, Oid *argumentTypes)
{
	SPIPlanPtr	plan = SPI_prepare_cursor(sql, argumentCount, argumentTypes, CURSOR_OPT_GENERIC_PLAN);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql, SPI_result_code_string(SPI_result));
	return plan;
}

/*
 * RunDeleteBatch runs one prepared DELETE of a leaf and counts its rows.
 */
static void
RunDeleteBatch(LeafDelete *job, SPIPlanPtr plan, Datum *values)
{
	int			code = SPI_execute_plan(plan, values, NULL, false, 0);

	if (code != SPI_OK_DELETE)
		elog(ERROR, "could not delete from %s: %s", job->leaf, SPI_result_code_string(code));
	job->deleted += SPI_processed;
	CHECK_FOR_INTERRUPTS();
}

/*
 * CursorBatchTids returns the ctids SPI_cursor_fetch left in SPI_tuptable
 * as a tid[], and frees the fetched rows.
 */
static Datum
CursorBatchTids(void)
{
	Datum	   *tids = palloc(sizeof(Datum) * SPI_processed);
	ArrayType  *array;

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isNull;

		tids[i] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isNull);
	}
	array = construct_array(tids, (int) SPI_processed, TIDOID, sizeof(ItemPointerData), false,
							TYPALIGN_SHORT);
	pfree(tids);
	SPI_freetuptable(SPI_tuptable);
	return PointerGetDatum(array);
}

/*
 * DeleteByCursor deletes the rows the open cursor matches finds, in batches
 * of cleanup_batch_size, each by its ctids.  The cursor walks its index (or
 * leaf) once: a statement that searched again for each batch would walk past
 * every row the earlier batches deleted, which stay in the heap and the
 * indexes until the transaction ends, and the work would grow with the
 * square of the backlog.
 */
static void
DeleteByCursor(LeafDelete *job, Portal matches)
{
	Oid			tidArrayType = TIDARRAYOID;
	SPIPlanPtr	deletePlan = PrepareGenericPlan(psprintf("DELETE FROM %s WHERE ctid = ANY ($1)", job->leaf),
												1, &tidArrayType);

	for (;;)
	{
		Datum		tids;

		SPI_cursor_fetch(matches, true, CleanupBatchSize);
		if (SPI_processed == 0)
			break;
		tids = CursorBatchTids();
		RunDeleteBatch(job, deletePlan, &tids);
		pfree(DatumGetPointer(tids));
	}
	if (SPI_freeplan(deletePlan) != 0)
		elog(ERROR, "SPI_freeplan failed");
}

/*
 * HeapBlocksOf returns how many blocks a leaf has when it is a heap, whose
 * blocks hold at most MaxHeapTuplesPerPage rows each, or InvalidBlockNumber.
 */
static BlockNumber
HeapBlocksOf(Oid relid)
{
	Relation	leaf = table_open(relid, RowExclusiveLock);
	BlockNumber blocks = InvalidBlockNumber;

	if (leaf->rd_rel->relkind == RELKIND_RELATION && leaf->rd_rel->relam == HEAP_TABLE_AM_OID)
		blocks = RelationGetNumberOfBlocks(leaf);
	table_close(leaf, NoLock);
	return blocks;
}

/*
 * ScansTidRanges says whether a prepared DELETE reads its leaf by tid range
 * (heap blocks from $2 up to $3) and not by a scan of every block or index.
 */
static bool
ScansTidRanges(SPIPlanPtr deletePlan)
{
	CachedPlan *cached = SPI_plan_get_cached_plan(deletePlan);
	bool		byRange = false;

	if (cached != NULL && list_length(cached->stmt_list) == 1)
	{
		PlannedStmt *statement = linitial_node(PlannedStmt, cached->stmt_list);

		byRange = IsA(statement->planTree, ModifyTable) &&
			IsA(outerPlan(statement->planTree), TidRangeScan);
	}
	/* SPI takes no resource owner for a plan it has not saved. */
	if (cached != NULL)
		ReleaseCachedPlan(cached, NULL);
	return byRange;
}

/*
 * DeleteByBlockRanges deletes the matching rows of a heap leaf of `blocks`
 * blocks in one DELETE per range of blocksPerStatement blocks, which cannot
 * hold more than cleanup_batch_size rows: together they scan the leaf once,
 * each row found and deleted by the same statement, as a single DELETE
 * scanning the whole leaf would.  It returns false, having deleted nothing,
 * when the planner would not read the ranges by tid.
 */
static bool
DeleteByBlockRanges(LeafDelete *job, BlockNumber blocks, BlockNumber blocksPerStatement)
{
	Oid			argumentTypes[3] = {job->conditionType, TIDOID, TIDOID};
	SPIPlanPtr	deletePlan = PrepareGenericPlan(psprintf("DELETE FROM %s t WHERE t.ctid >= $2 AND t.ctid < $3 AND %s",
														 job->leaf, job->condition),
												3, argumentTypes);
	bool		byRange = ScansTidRanges(deletePlan);

	for (BlockNumber first = 0; byRange && first < blocks; first += Min(blocksPerStatement, blocks - first))
	{
		ItemPointerData from;
		ItemPointerData before;
		Datum		values[3] = {job->conditionValue, PointerGetDatum(&from), PointerGetDatum(&before)};

		ItemPointerSet(&from, first, 0);
		ItemPointerSet(&before, first + Min(blocksPerStatement, blocks - first), 0);
		RunDeleteBatch(job, deletePlan, values);
	}
	if (SPI_freeplan(deletePlan) != 0)
		elog(ERROR, "SPI_freeplan failed");
	return byRange;
}

/*
 * OpenMatchesCursor opens a cursor on the ctids of the leaf's matching rows,
 * planned for the condition's value, as the planner would plan a DELETE.
 */
static Portal
OpenMatchesCursor(LeafDelete *job)
{
	return SPI_cursor_open_with_args(NULL, psprintf("SELECT t.ctid FROM %s t WHERE %s",
													job->leaf, job->condition),
									 1, &job->conditionType, &job->conditionValue, NULL, false, 0);
}

/*
 * DeleteFromLeaf deletes the matching rows of one leaf in statements of at
 * most interactions_cron.cleanup_batch_size rows, at the cost of the single
 * DELETE a DBA would write.  The planner chooses how to find the rows for
 * the condition's value, as it would for that DELETE: when it would scan the
 * whole leaf, it is deleted by ranges of heap blocks (DeleteByBlockRanges);
 * otherwise, or when the batch is smaller than a block can hold, a cursor
 * on its plan hands batches of ctids to a DELETE by tid (DeleteByCursor).
 * Rows found and already deleted are never visited again.
 */
static void
DeleteFromLeaf(void *argument)
{
	LeafDelete *job = argument;
	Portal		matches = OpenMatchesCursor(job);
	PlannedStmt *finding = linitial_node(PlannedStmt, matches->stmts);
	BlockNumber blocksPerStatement = CleanupBatchSize / MaxHeapTuplesPerPage;
	BlockNumber blocks;

	if (IsA(finding->planTree, SeqScan) && blocksPerStatement > 0 &&
		(blocks = HeapBlocksOf(job->relid)) != InvalidBlockNumber)
	{
		SPI_cursor_close(matches);
		if (DeleteByBlockRanges(job, blocks, blocksPerStatement))
			return;
		matches = OpenMatchesCursor(job);
	}
	DeleteByCursor(job, matches);
	SPI_cursor_close(matches);
}

/*
 * DeleteInBatches deletes the rows of every leaf of table matching condition
 * (which may use $1, of type conditionType) in bounded statements, as the
 * table's owner (see RunAsRole): a trigger on it runs with its owner's
 * rights, not with those of cleanup()'s caller, often a superuser.  It returns how
 * many rows it deleted.
 */
static int64
DeleteInBatches(const ConfiguredTable *table, const char *condition,
				Oid conditionType, Datum conditionValue)
{
	List	   *leaves = LeafRelations(table);
	ListCell   *cell;
	int64		deleted = 0;

	foreach(cell, leaves)
	{
		ConfiguredTable *leaf = lfirst(cell);
		LeafDelete	job = {leaf->relid, leaf->quotedName, condition, conditionType, conditionValue, 0};

		RunAsRole(leaf->owner, DeleteFromLeaf, &job);
		deleted += job.deleted;
	}
	return deleted;
}

/*
 * DeleteExpiredSuppressions deletes the suppressions whose expiry, in its
 * column's own type, is before now.
 */
static int64
DeleteExpiredSuppressions(const ConfiguredTable *suppressions, TimestampTz now)
{
	const MappedColumn *expires = &suppressions->columns[SUPPRESSIONS_EXPIRES_COLUMN];

	return DeleteInBatches(suppressions,
						   psprintf("t.%s < %s", expires->quotedName,
									InstantAsColumnType(expires, "$1")),
						   TIMESTAMPTZOID, TimestampTzGetDatum(now));
}

/*
 * DeleteOldDailySummaries deletes the daily summaries whose period starts
 * before the UTC day cutoff, in the columns' own types: the daily value is
 * given as text and converted to the period type's column (text or enum),
 * the cutoff to the start's (a date, or the first instant of that UTC day,
 * for a timestamp as the clocks of interactions_cron.history_timezone showed).
 */
static int64
DeleteOldDailySummaries(const ConfiguredTable *summaries, DateADT cutoff)
{
	const MappedColumn *periodType = &summaries->columns[SUMMARIES_PERIOD_TYPE_COLUMN];
	const MappedColumn *periodStart = &summaries->columns[SUMMARIES_PERIOD_START_COLUMN];
	char	   *cutoffValue = getBaseType(periodStart->type) == DATEOID ? "$1"
		: InstantAsColumnType(periodStart, "CAST($1 AS pg_catalog.timestamp) AT TIME ZONE 'UTC'");

	return DeleteInBatches(summaries,
						   psprintf("t.%s = %s AND t.%s < %s",
									periodType->quotedName,
									TextAsColumnType(periodType,
													 quote_literal_cstr(SummariesDailyValueSetting)),
									periodStart->quotedName, cutoffValue),
						   DATEOID, DateADTGetDatum(cutoff));
}

/*
 * UtcDateDaysAgo returns the UTC calendar date `days` days before now.
 */
static DateADT
UtcDateDaysAgo(TimestampTz now, int days)
{
	return DatumGetDateADT(DirectFunctionCall1(timestamp_date,
											   DirectFunctionCall2(timestamptz_zone,
																   CStringGetTextDatum("UTC"),
																   TimestampTzGetDatum(now)))) - days;
}

/*
 * AppendTimestampMs writes an instant the way the seed does:
 * "2026-03-30T02:00:00.000Z".
 */
static void
AppendTimestampMs(StringInfo json, TimestampTz value)
{
	struct pg_tm tm;
	fsec_t		fractionUs;

	if (timestamp2tm(value, NULL, &tm, &fractionUs, NULL, NULL) != 0)
		elog(ERROR, "timestamp out of range");
	appendStringInfo(json, "\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"",
					 tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
					 (int) (fractionUs / 1000));
}

/*
 * CleanupResultJson builds the seed's summary, with warnings when any and a
 * reason when skipped.
 */
static Jsonb *
CleanupResultJson(const char *status, const CleanupCounts *counts, TimestampTz startedAt)
{
	StringInfoData json;
	ListCell   *cell;

	initStringInfo(&json);
	appendStringInfo(&json, "{\"status\": \"%s\", \"cleaned\": {\"expiredSuppressions\": " INT64_FORMAT
					 ", \"oldDailySummaries\": " INT64_FORMAT ", \"partitionsEnsured\": %d"
					 ", \"oldRunHistory\": " INT64_FORMAT "}, \"timestamp\": ",
					 status, counts->expiredSuppressions, counts->oldDailySummaries,
					 counts->partitionsEnsured, counts->oldRunHistory);
	AppendTimestampMs(&json, startedAt);
	if (strcmp(status, "skipped") == 0)
		appendStringInfoString(&json, ", \"reason\": \"another cleanup is running in this database\"");
	if (counts->warnings != NIL)
	{
		appendStringInfoString(&json, ", \"warnings\": [");
		foreach(cell, counts->warnings)
		{
			if (foreach_current_index(cell) > 0)
				appendStringInfoString(&json, ", ");
			escape_json(&json, lfirst(cell));
		}
		appendStringInfoChar(&json, ']');
	}
	appendStringInfoChar(&json, '}');
	return JsonbFromText(json.data);
}

/*
 * ClaimCleanup locks cleanup's row of interactions_cron.job_claims, as the
 * extension's owner, until the end of the transaction, or returns false at
 * once when another cleanup holds it.  Unlike an advisory lock, which any
 * role can take, no caller needs (or gets) a grant on that table.
 */
static bool
ClaimCleanup(void)
{
	return RunStatementAsOwner(&claimPlan,
						"SELECT 1 FROM interactions_cron.job_claims"
						" WHERE job = 'cleanup' FOR UPDATE SKIP LOCKED",
						0, NULL, NULL, NULL, SPI_OK_SELECT, "claim the cleanup job") == 1;
}

/*
 * CleanupBody does the cleanup's work and returns its summary.
 */
static Jsonb *
CleanupBody(FunctionCallInfo fcinfo, JobProgress *progress)
{
	MemoryContext callerContext = CurrentMemoryContext;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	CleanupCounts counts;
	ConfiguredTable suppressions;
	ConfiguredTable summaries;
	ConfiguredTable runHistory;

	memset(&counts, 0, sizeof(counts));
	ConnectSpi();
	if (!ClaimCleanup())
	{
		FinishSpi();
		return CleanupResultJson("skipped", &counts, now);
	}

	suppressions = ResolveSuppressionsTable();
	summaries = ResolveSummariesTable();
	runHistory = ResolveConfiguredTable("interactions_cron.job_runs", "interactions_cron.job_runs");
	/* job_runs is the extension's: cleanup() itself grants pruning it. */
	RequireCallerPrivileges(&suppressions, ACL_SELECT | ACL_DELETE, "SELECT, DELETE");
	RequireCallerPrivileges(&summaries, ACL_SELECT | ACL_DELETE, "SELECT, DELETE");

	counts.expiredSuppressions = DeleteExpiredSuppressions(&suppressions, now);
	counts.oldDailySummaries =
		DeleteOldDailySummaries(&summaries, UtcDateDaysAgo(now, SummaryRetentionDays));
	counts.partitionsEnsured = EnsureMonthlyPartitions(now, &counts.warnings);
	counts.oldRunHistory =
		DeleteInBatches(&runHistory, "t.started_at < $1", TIMESTAMPTZOID,
						TimestampTzGetDatum(now - (TimestampTz) RunHistoryRetentionDays * USECS_PER_DAY));

	MemoryContextSwitchTo(callerContext);
	FinishSpi();

	return CleanupResultJson("ok", &counts, now);
}

/* PostgreSQL 15's PG_FUNCTION_INFO_V1 exports only the info function. */
PGDLLEXPORT Datum cleanup(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(cleanup);

/*
 * cleanup() deletes expired suppressions, old daily summaries and old run
 * history, creates the coming months' partitions, and returns the summary.
 */
Datum
cleanup(PG_FUNCTION_ARGS)
{
	RequireUsableDatabase();
	PG_RETURN_JSONB_P(RunRecordedJob("cleanup", CleanupBody, fcinfo, false));
}
