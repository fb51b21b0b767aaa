/*
 * late_rows.c
 *	  Rows written behind a tenant's checkpoint after it was set.
 *
 * The export never passes over a row it has not written: a batch takes the
 * rows up to a watermark that it moves only once every transaction that
 * could still stamp a row below it has ended.  That holds for one clock.  A
 * switchover to a server whose clock is behind the old primary's by more
 * than watermark_margin stamps its first rows below checkpoints the old
 * primary set.  A call that runs while the clock is still behind holds the
 * tenant back (HoldTenantsAheadOfClock in export.c), but the clock passes
 * the checkpoint by itself, and a call that comes only after that would
 * find nothing ahead of the checkpoint.
 *
 * Time cannot tell such rows; the order of transactions can.  Each batch
 * records the transaction that moved the position (position_xid).  A row
 * that lies behind the position and was inserted by a later transaction
 * was stamped by a clock behind (or given an older created value: a
 * backfill).  The first claim of each tenant in a new history (a promoted
 * standby, see CurrentLakeEpoch) looks for such rows among those created
 * within LATE_ROWS_WINDOW_USECS before its position: one index range per
 * tenant and failover.  It runs only once the call's watermark has passed
 * the checkpoint, so that no writer is still stamping rows behind it (see
 * BringIntoThisHistory in tenant_export.c).  It judges only what it can:
 * - transaction ids count on from the same place only in a physical copy
 *   of the server that set the position (the same system identifier), and
 *   within 2^31 transactions (age() compares 32-bit ids);
 * - the rows the batches exported are older than the position's
 *   transaction, or were updated or rewritten since; if none shows it any
 *   more (the table was restored from a dump, its rows copied in again),
 *   ids tell nothing;
 * - a member table rewritten since (by ALTER TABLE or a repack that swaps
 *   storage in: its storage replaced, its pg_class row newer, and no row
 *   older than the position's transaction left in it) counts only its rows
 *   written after the rewrite;
 * - an UPDATE's new row version carries the updater's id, so only rows as
 *   an INSERT wrote them (no HEAP_UPDATED) count, in heap tables only.
 * Anything else finds nothing, as before this check existed.  A late row
 * updated before the check, or one outside the window, is not found (the
 * count and the first row named are those of the window), nor one in a
 * table rewritten before the check, nor one alone in a table whose storage
 * was once replaced when a GRANT follows it; rows deleted and inserted
 * again (a cross-partition UPDATE, a partition copied by hand into a new
 * table attached in its place) are taken for late ones.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/transam.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "interactions_cron/late_rows.h"
#include "interactions_cron/preconditions.h"
#include "interactions_cron/spi_plans.h"

/*
 * How far behind a checkpoint rows written late are looked for: a day, so
 * that the look costs one day of a tenant's rows, not its whole history.  A
 * clock further behind stays behind the checkpoint for longer than a day,
 * and every call meanwhile holds the tenant (HoldTenantsAheadOfClock); with
 * no call in that day, rows further behind are neither counted nor named.
 */
#define LATE_ROWS_WINDOW_USECS USECS_PER_DAY

/* Rows a scan for late rows fetches at a time. */
#define LATE_ROWS_FETCH 1000

/*
 * Transactions since the position's beyond which its 32-bit id is not
 * trusted to compare with rows' (age() wraps at 2^31).
 */
#define POSITION_XID_REACH (UINT64CONST(1) << 30)

/* The parameters of the probes: tenant, position, its transaction, window start. */
static Oid	LateRowsQueryTypes[5] = {TEXTOID, TIMESTAMPTZOID, TEXTOID, XIDOID, TIMESTAMPTZOID};

/*
 * RecordedUnderThisSystem says whether a checkpoint recorded in lakeEpoch
 * (see CurrentLakeEpoch) was set by a server of this one's system
 * identifier, whose transaction ids this server counts on from.
 */
static bool
RecordedUnderThisSystem(const char *lakeEpoch)
{
	char	   *current = CurrentLakeEpoch();
	size_t		identifierLength = strcspn(current, "/") + 1;

	return lakeEpoch != NULL && strncmp(lakeEpoch, current, identifierLength) == 0;
}

/*
 * PositionXid reads the transaction that last moved the tenant's position by
 * exporting, or InvalidFullTransactionId when none is recorded.
 */
static FullTransactionId
PositionXid(const char *tenantId)
{
	static SPIPlanPtr positionXidPlan = NULL;
	Oid			argumentTypes[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(tenantId)};
	List	   *xids = TextColumnAsOwner(&positionXidPlan,
										 "SELECT position_xid::pg_catalog.text"
										 " FROM interactions_cron.export_checkpoints"
										 " WHERE tenant_id = $1 AND position_xid IS NOT NULL",
										 1, argumentTypes, values, "read the checkpoint's transaction");

	if (xids == NIL)
		return InvalidFullTransactionId;
	return FullTransactionIdFromU64(strtou64(linitial(xids), NULL, 10));
}

/*
 * WithinReach says whether a past transaction is recent enough for age() to
 * compare its 32-bit id with the rows' (see POSITION_XID_REACH).
 */
static bool
WithinReach(FullTransactionId xid)
{
	FullTransactionId next = ReadNextFullTransactionId();

	return FullTransactionIdPrecedes(xid, next) &&
		U64FromFullTransactionId(next) - U64FromFullTransactionId(xid) < POSITION_XID_REACH;
}

/*
 * RelationAccessMethod returns the table access method of relation relid,
 * or InvalidOid when it has none (a partitioned or foreign table).
 */
static Oid
RelationAccessMethod(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			accessMethod = InvalidOid;

	if (HeapTupleIsValid(tuple))
	{
		accessMethod = ((Form_pg_class) GETSTRUCT(tuple))->relam;
		ReleaseSysCache(tuple);
	}
	return accessMethod;
}

/*
 * HeapRowsOnly says whether every table the history's rows can live in (it,
 * its partitions, its inheritance children) is a heap table, whose rows
 * carry the transaction id that wrote them: a foreign member cannot give
 * xmin at all, another access method need not keep HEAP_UPDATED.
 */
static bool
HeapRowsOnly(Oid historyRelid)
{
	ListCell   *cell;

	foreach(cell, find_all_inheritors(historyRelid, AccessShareLock, NULL))
	{
		Oid			member = lfirst_oid(cell);
		char		relkind = get_rel_relkind(member);

		if (relkind == RELKIND_PARTITIONED_TABLE)
			continue;
		if (relkind != RELKIND_RELATION || RelationAccessMethod(member) != HEAP_TABLE_AM_OID)
			return false;
	}
	return true;
}

/*
 * WindowRowsBehindPosition returns the condition on history rows h of the
 * tenant ($1) at or before the position ($2, $3) and created from $5 on.
 */
static char *
WindowRowsBehindPosition(const ConfiguredTable *history)
{
	const MappedColumn *tenant = &history->columns[HISTORY_TENANT_COLUMN];
	const MappedColumn *created = &history->columns[HISTORY_CREATED_COLUMN];
	const MappedColumn *id = &history->columns[HISTORY_ID_COLUMN];

	return psprintf("h.%s = %s AND h.%s >= %s AND (h.%s, h.%s) <= (%s, %s)",
					tenant->quotedName, TextAsColumnType(tenant, "$1"),
					created->quotedName, InstantAsColumnType(created, "$5"),
					created->quotedName, id->quotedName,
					InstantAsColumnType(created, "$2"), TextAsColumnType(id, "$3"));
}

/*
 * WindowHoldsOlderRow says whether some row of the window behind the
 * position still carries a transaction id older than the position's, as
 * the rows the batches exported do unless they were updated since, or the
 * table rewritten, restored from a dump, or its rows copied in again.
 */
static bool
WindowHoldsOlderRow(const ConfiguredTable *history, Datum *values)
{
	bool		holds;

	RunQueryAsTableOwner(history,
						 psprintf("SELECT 1 FROM %s h WHERE %s"
								  " AND pg_catalog.age(h.xmin) > pg_catalog.age($4) LIMIT 1",
								  history->quotedName, WindowRowsBehindPosition(history)),
						 lengthof(LateRowsQueryTypes), LateRowsQueryTypes, values, NULL, 1,
						 "read the rows behind the checkpoint");
	holds = SPI_processed == 1;
	SPI_freetuptable(SPI_tuptable);
	return holds;
}

/* A scan for late rows, as RunAsRole hands it over. */
typedef struct LateRowsScan
{
	const ConfiguredTable *history;
	const char *sql;
	Datum	   *values;
	TransactionId positionXid;
	Relation	member;			/* the member table last read, kept open */
	TransactionId memberRewrittenBy;	/* the rewrite of it after
										 * positionXid, or
										 * InvalidTransactionId */
	LateRowsMemory *memory;		/* what the worker learned of its members */
	LateRows	late;			/* rows newer than the position's transaction, as inserted */
	int64		updated;		/* and as an UPDATE wrote them */
	int64		copied;			/* and as a rewrite wrote them */
} LateRowsScan;

/* The oldest row of a member table, once a look found no row older than a position. */
typedef struct MemberOldestRow
{
	Oid			relid;
	TransactionId xmin;			/* InvalidTransactionId: the table is empty */
} MemberOldestRow;

/* How a row version newer than the position's transaction was written. */
typedef enum RowVersionOrigin
{
	ROW_VERSION_INSERTED,
	ROW_VERSION_UPDATED,
	ROW_VERSION_COPIED,			/* a rewrite's copy (see MemberRewrittenBy) */
	ROW_VERSION_UNREADABLE		/* not a heap tuple any more */
} RowVersionOrigin;

/*
 * StorageReplacedBy returns the transaction that last wrote the pg_class
 * row of table relid (its raw id, which a frozen row keeps) when the table's
 * storage has ever been replaced (a rewrite, a TRUNCATE: its relfilenode is
 * no longer its OID), or InvalidTransactionId when the table still has the
 * storage it was created with, which nothing rewrote.
 */
static TransactionId
StorageReplacedBy(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	TransactionId changedBy = InvalidTransactionId;

	if (HeapTupleIsValid(tuple))
	{
		if (((Form_pg_class) GETSTRUCT(tuple))->relfilenode != relid)
			changedBy = HeapTupleHeaderGetRawXmin(tuple->t_data);
		ReleaseSysCache(tuple);
	}
	return changedBy;
}

/*
 * MemberXmin runs query, a look at member table relid's rows whose first
 * column is xmin, with the position's transaction as $1, and returns the
 * first row's xmin, or InvalidTransactionId when there is none.
 */
static TransactionId
MemberXmin(const char *query, Oid relid, TransactionId positionXid)
{
	char	   *member = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
													get_rel_name(relid));
	Oid			argumentTypes[1] = {XIDOID};
	Datum		values[1] = {TransactionIdGetDatum(positionXid)};
	int			code = SPI_execute_with_args(psprintf(query, member), 1, argumentTypes, values,
											 NULL, true, 1);
	TransactionId xmin = InvalidTransactionId;
	bool		isNull;

	if (code != SPI_OK_SELECT)
		elog(ERROR, "could not read the rows of %s: %s", member, SPI_result_code_string(code));
	if (SPI_processed == 1)
		xmin = DatumGetTransactionId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
												   &isNull));
	SPI_freetuptable(SPI_tuptable);
	return xmin;
}

/*
 * MemberHoldsOlderRow says whether member table relid holds a row, of any
 * tenant, older than the position's transaction, as a table does unless it
 * was rewritten (or created) since.  The first look reads the table until
 * it meets such a row, at once in a table that was not rewritten; one that
 * meets none has read the whole table, which is then read once more for
 * its oldest row, kept for the worker's other tenants.
 */
static bool
MemberHoldsOlderRow(LateRowsScan *scan, Oid relid)
{
	ListCell   *cell;
	MemberOldestRow *oldest;
	TransactionId oldestXmin;
	MemoryContext callerContext;

	foreach(cell, scan->memory->members)
	{
		oldest = lfirst(cell);
		if (oldest->relid == relid)
			return TransactionIdIsValid(oldest->xmin) &&
				TransactionIdPrecedes(oldest->xmin, scan->positionXid);
	}
	if (TransactionIdIsValid(MemberXmin("SELECT h.xmin FROM ONLY %s h"
										" WHERE pg_catalog.age(h.xmin) > pg_catalog.age($1) LIMIT 1",
										relid, scan->positionXid)))
		return true;
	oldestXmin = MemberXmin("SELECT h.xmin FROM ONLY %s h ORDER BY pg_catalog.age(h.xmin) DESC LIMIT 1",
							relid, scan->positionXid);
	callerContext = MemoryContextSwitchTo(scan->memory->context);
	oldest = palloc(sizeof(MemberOldestRow));
	oldest->relid = relid;
	oldest->xmin = oldestXmin;
	scan->memory->members = lappend(scan->memory->members, oldest);
	MemoryContextSwitchTo(callerContext);
	return false;
}

/*
 * MemberRewrittenBy returns the transaction that rewrote member table relid
 * after the position's, or InvalidTransactionId.  A rewrite (ALTER TABLE, a
 * copy swapped in) gives the table new storage, writes every row again with
 * a new id, and writes the table's pg_class row; a GRANT or a reloption
 * writes that row too, but rewrites nothing.  So a table whose storage was
 * replaced and whose pg_class row is newer than the position's transaction
 * (by its raw id: a frozen one may be far older and wrap) was rewritten
 * since only when it holds no row older than the position's transaction.
 */
static TransactionId
MemberRewrittenBy(LateRowsScan *scan, Oid relid)
{
	TransactionId replacedBy = StorageReplacedBy(relid);

	if (TransactionIdIsNormal(replacedBy) &&
		TransactionIdPrecedes(scan->positionXid, replacedBy) &&
		!MemberHoldsOlderRow(scan, relid))
		return replacedBy;
	return InvalidTransactionId;
}

/*
 * OpenMember keeps member table relid open in the scan, closing the one
 * read before.
 */
static void
OpenMember(LateRowsScan *scan, Oid relid)
{
	if (scan->member != NULL && RelationGetRelid(scan->member) == relid)
		return;
	if (scan->member != NULL)
		table_close(scan->member, AccessShareLock);
	scan->member = table_open(relid, AccessShareLock);
	scan->memberRewrittenBy = MemberRewrittenBy(scan, relid);
}

/*
 * RowVersionWrittenBy says whether the tuple at tid of member table relid
 * was written by an INSERT or by an UPDATE (HEAP_UPDATED), whose new
 * version carries the updater's transaction id, later than the row's, or
 * is a copy that a rewrite of its table after the position's transaction
 * made (see MemberRewrittenBy).
 */
static RowVersionOrigin
RowVersionWrittenBy(LateRowsScan *scan, Oid relid, ItemPointer tid)
{
	HeapTupleData tuple;
	Buffer		buffer;
	RowVersionOrigin origin = ROW_VERSION_UNREADABLE;

	OpenMember(scan, relid);
	tuple.t_self = *tid;
	if (scan->member->rd_rel->relam == HEAP_TABLE_AM_OID &&
		heap_fetch(scan->member, SnapshotAny, &tuple, &buffer, false))
	{
		/* The scan reads only rows newer than positionXid: they compare. */
		if (TransactionIdIsValid(scan->memberRewrittenBy) &&
			!TransactionIdPrecedes(scan->memberRewrittenBy, HeapTupleHeaderGetRawXmin(tuple.t_data)))
			origin = ROW_VERSION_COPIED;
		/* HEAP_UPDATED is set when the tuple is written and never changes. */
		else if ((tuple.t_data->t_infomask & HEAP_UPDATED) != 0)
			origin = ROW_VERSION_UPDATED;
		else
			origin = ROW_VERSION_INSERTED;
		ReleaseBuffer(buffer);
	}
	return origin;
}

/*
 * ScanLateRows is the body ScanWindow runs as the history's owner: it
 * reads the rows newer than the position's transaction through a cursor,
 * so that memory stays flat and a cancel is heard however many rows were
 * updated since, and counts them by what wrote them.
 */
static void
ScanLateRows(void *argument)
{
	LateRowsScan *scan = argument;
	Portal		portal = SPI_cursor_open_with_args(NULL, scan->sql, lengthof(LateRowsQueryTypes),
												   LateRowsQueryTypes, scan->values, NULL, false, 0);

	for (SPI_cursor_fetch(portal, true, LATE_ROWS_FETCH); SPI_processed > 0;
		 SPI_cursor_fetch(portal, true, LATE_ROWS_FETCH))
	{
		/* Judging a member runs a query of its own (MemberHoldsOlderRow). */
		SPITupleTable *fetched = SPI_tuptable;
		uint64		fetchedCount = SPI_processed;

		for (uint64 i = 0; i < fetchedCount; i++)
		{
			HeapTuple	row = fetched->vals[i];
			TupleDesc	rowDesc = fetched->tupdesc;
			bool		isNull;
			Oid			relid = DatumGetObjectId(SPI_getbinval(row, rowDesc, 1, &isNull));
			ItemPointer tid = (ItemPointer) DatumGetPointer(SPI_getbinval(row, rowDesc, 2, &isNull));
			TimestampTz createdAt = DatumGetTimestampTz(SPI_getbinval(row, rowDesc, 3, &isNull));

			CHECK_FOR_INTERRUPTS();
			switch (RowVersionWrittenBy(scan, relid, tid))
			{
				case ROW_VERSION_INSERTED:
					scan->late.count++;
					scan->late.firstCreatedAt = Min(scan->late.firstCreatedAt, createdAt);
					break;
				case ROW_VERSION_UPDATED:
					scan->updated++;
					break;
				case ROW_VERSION_COPIED:
					scan->copied++;
					break;
				case ROW_VERSION_UNREADABLE:
					break;
			}
		}
		SPI_freetuptable(fetched);
	}
	SPI_cursor_close(portal);
	if (scan->member != NULL)
		table_close(scan->member, AccessShareLock);
}

/*
 * ScanWindow reads the rows of the window behind the position that
 * transactions later than the position's wrote (see ScanLateRows).
 */
static LateRowsScan
ScanWindow(const ConfiguredTable *history, Datum *values, LateRowsMemory *memory)
{
	LateRowsScan scan = {0};

	scan.sql = psprintf("SELECT h.tableoid, h.ctid, %s FROM %s h WHERE %s"
						" AND pg_catalog.age(h.xmin) BETWEEN 0 AND pg_catalog.age($4) - 1",
						ColumnAsInstant(&history->columns[HISTORY_CREATED_COLUMN], "h"),
						history->quotedName, WindowRowsBehindPosition(history));
	scan.history = history;
	scan.memory = memory;
	scan.values = values;
	scan.positionXid = DatumGetTransactionId(values[3]);
	scan.late.firstCreatedAt = DT_NOEND;
	RunAsRole(history->owner, ScanLateRows, &scan);
	return scan;
}

/*
 * NewLateRowsMemory returns an empty memory of member tables, kept in
 * context.
 */
LateRowsMemory *
NewLateRowsMemory(MemoryContext context)
{
	LateRowsMemory *memory = MemoryContextAllocZero(context, sizeof(LateRowsMemory));

	memory->context = context;
	return memory;
}

/*
 * FindLateRows looks for the tenant's rows that were inserted after its
 * checkpoint was set but lie behind it (see the file's comment), and counts
 * them; none when it cannot judge.
 */
LateRows
FindLateRows(const ConfiguredTable *history, const char *tenantId, CheckpointPosition checkpoint,
			 LateRowsMemory *memory)
{
	LateRows	none = {0, DT_NOEND};
	FullTransactionId positionXid;
	Datum		values[lengthof(LateRowsQueryTypes)];
	LateRowsScan scan;

	if (checkpoint.id == NULL || !RecordedUnderThisSystem(checkpoint.lakeEpoch) ||
		!SqlObjectsAre1_2() || !HeapRowsOnly(history->relid))
		return none;
	positionXid = PositionXid(tenantId);
	if (!FullTransactionIdIsValid(positionXid) || !WithinReach(positionXid))
		return none;

	values[0] = CStringGetTextDatum(tenantId);
	values[1] = TimestampTzGetDatum(checkpoint.createdAt);
	values[2] = CStringGetTextDatum(checkpoint.id);
	values[3] = TransactionIdGetDatum(XidFromFullTransactionId(positionXid));
	values[4] = TimestampTzGetDatum(checkpoint.createdAt - LATE_ROWS_WINDOW_USECS);
	scan = ScanWindow(history, values, memory);

	/*
	 * Ids tell when rows were written only if the rows exported still show
	 * it: some are older than the position's transaction, or were updated
	 * or rewritten since.
	 */
	if (scan.late.count == 0 ||
		(scan.updated == 0 && scan.copied == 0 && !WindowHoldsOlderRow(history, values)))
		return none;
	return scan.late;
}

/*
 * PositionXidOfAnotherSystem says whether the transaction recorded as having
 * moved the tenant's position comes from a server of another system
 * identifier (a dump restored, an upgraded cluster), whose transaction ids
 * mean nothing here: it must be forgotten when the checkpoint is recorded
 * in this history (CheckpointEnterHistory), since from then on nothing
 * would tell.
 */
bool
PositionXidOfAnotherSystem(CheckpointPosition checkpoint)
{
	return !RecordedUnderThisSystem(checkpoint.lakeEpoch);
}
