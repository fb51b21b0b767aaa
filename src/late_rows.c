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
 * was stamped by a clock behind.  The first claim of each tenant in a new
 * history (a promoted standby, see CurrentLakeEpoch) looks for such rows
 * among those created within LATE_ROWS_WINDOW_USECS before its position,
 * one index range per tenant and failover.  It judges only what it can:
 * - transaction ids count on from the same place only in a physical copy
 *   of the server that set the position (the same system identifier);
 * - the row at the position was exported, so it is older than the
 *   position's transaction; if it no longer looks so (the table was
 *   rewritten, dumped and restored, copied in again), ids tell nothing;
 * - an UPDATE's new row version carries the updater's id, so only rows as
 *   an INSERT wrote them (no HEAP_UPDATED, in a heap table) count.
 * Anything else finds nothing, as before this check existed.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/transam.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "interactions_cron/late_rows.h"
#include "interactions_cron/preconditions.h"
#include "interactions_cron/spi_plans.h"

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
 * PositionRowPrecedesItsXid says whether the row at the position, which the
 * batch that set it exported, is still older than that batch's transaction:
 * only then do the rows' transaction ids tell when they were written.
 */
static bool
PositionRowPrecedesItsXid(const ConfiguredTable *history, Datum *values)
{
	const MappedColumn *tenant = &history->columns[HISTORY_TENANT_COLUMN];
	const MappedColumn *created = &history->columns[HISTORY_CREATED_COLUMN];
	const MappedColumn *id = &history->columns[HISTORY_ID_COLUMN];
	bool		precedes = false;
	bool		isNull;

	RunQueryAsTableOwner(history,
						 psprintf("SELECT pg_catalog.age(h.xmin) > pg_catalog.age($4) FROM %s h"
								  " WHERE h.%s = %s AND h.%s = %s AND h.%s = %s",
								  history->quotedName,
								  tenant->quotedName, TextAsColumnType(tenant, "$1"),
								  created->quotedName, InstantAsColumnType(created, "$2"),
								  id->quotedName, TextAsColumnType(id, "$3")),
						 lengthof(LateRowsQueryTypes), LateRowsQueryTypes, values, NULL, 1,
						 "read the row at the checkpoint");
	if (SPI_processed == 1)
		precedes = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
											  &isNull));
	SPI_freetuptable(SPI_tuptable);
	return precedes;
}

/*
 * InsertedAsWritten says whether the tuple at tid of relation relid is as
 * an INSERT wrote it: an UPDATE's new version (HEAP_UPDATED) carries the
 * updater's transaction id, later than the row's.  A tuple of another table
 * access method cannot tell, and counts as updated.
 */
static bool
InsertedAsWritten(Oid relid, ItemPointer tid)
{
	Relation	relation = table_open(relid, AccessShareLock);
	HeapTupleData tuple;
	Buffer		buffer;
	bool		inserted = false;

	tuple.t_self = *tid;
	if (relation->rd_rel->relam == HEAP_TABLE_AM_OID &&
		heap_fetch(relation, SnapshotAny, &tuple, &buffer, false))
	{
		/* HEAP_UPDATED is set when the tuple is written and never changes. */
		inserted = (tuple.t_data->t_infomask & HEAP_UPDATED) == 0;
		ReleaseBuffer(buffer);
	}
	table_close(relation, AccessShareLock);
	return inserted;
}

/*
 * CountLateRows counts the rows created within the window behind the
 * position, at or before it, that transactions later than the position's
 * inserted, and finds the earliest one's created instant.
 */
static LateRows
CountLateRows(const ConfiguredTable *history, Datum *values)
{
	const MappedColumn *tenant = &history->columns[HISTORY_TENANT_COLUMN];
	const MappedColumn *created = &history->columns[HISTORY_CREATED_COLUMN];
	const MappedColumn *id = &history->columns[HISTORY_ID_COLUMN];
	LateRows	late = {0, DT_NOEND};

	RunQueryAsTableOwner(history,
						 psprintf("SELECT h.tableoid, h.ctid, %s FROM %s h"
								  " WHERE h.%s = %s AND h.%s >= %s AND (h.%s, h.%s) <= (%s, %s)"
								  " AND pg_catalog.age(h.xmin) BETWEEN 0 AND pg_catalog.age($4) - 1",
								  ColumnAsInstant(created, "h"), history->quotedName,
								  tenant->quotedName, TextAsColumnType(tenant, "$1"),
								  created->quotedName, InstantAsColumnType(created, "$5"),
								  created->quotedName, id->quotedName,
								  InstantAsColumnType(created, "$2"), TextAsColumnType(id, "$3")),
						 lengthof(LateRowsQueryTypes), LateRowsQueryTypes, values, NULL, 0,
						 "look for rows written behind the checkpoint");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		TupleDesc	rowDesc = SPI_tuptable->tupdesc;
		bool		isNull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(row, rowDesc, 1, &isNull));
		ItemPointer tid = (ItemPointer) DatumGetPointer(SPI_getbinval(row, rowDesc, 2, &isNull));
		TimestampTz createdAt = DatumGetTimestampTz(SPI_getbinval(row, rowDesc, 3, &isNull));

		if (!InsertedAsWritten(relid, tid))
			continue;
		late.count++;
		late.firstCreatedAt = Min(late.firstCreatedAt, createdAt);
	}
	SPI_freetuptable(SPI_tuptable);
	return late;
}

/*
 * FindLateRows looks for the tenant's rows that were inserted after its
 * checkpoint was set but lie behind it (see the file's comment), and counts
 * them; none when it cannot judge.
 */
LateRows
FindLateRows(const ConfiguredTable *history, const char *tenantId, CheckpointPosition checkpoint)
{
	LateRows	none = {0, DT_NOEND};
	char		relkind = get_rel_relkind(history->relid);
	FullTransactionId positionXid;
	Datum		values[lengthof(LateRowsQueryTypes)];

	if (checkpoint.id == NULL || !RecordedUnderThisSystem(checkpoint.lakeEpoch) ||
		(relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE) ||
		!SqlObjectsAre1_2())
		return none;
	positionXid = PositionXid(tenantId);
	if (!FullTransactionIdIsValid(positionXid) || !WithinReach(positionXid))
		return none;

	values[0] = CStringGetTextDatum(tenantId);
	values[1] = TimestampTzGetDatum(checkpoint.createdAt);
	values[2] = CStringGetTextDatum(checkpoint.id);
	values[3] = TransactionIdGetDatum(XidFromFullTransactionId(positionXid));
	values[4] = TimestampTzGetDatum(checkpoint.createdAt - LATE_ROWS_WINDOW_USECS);
	if (!PositionRowPrecedesItsXid(history, values))
		return none;
	return CountLateRows(history, values);
}
