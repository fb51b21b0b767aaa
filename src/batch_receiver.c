/*
 * batch_receiver.c
 *	  Streaming a tenant's batch from the executor straight into files.
 *
 * Like COPY TO, the rows are never materialised: each one is serialised into
 * the open file's buffer as the executor produces it, so memory stays flat
 * whatever the batch size.  Rows arrive in (created_at, id) order; when the
 * UTC day changes the open temporary file is closed and the next day's
 * opened, so every file holds the rows of the one day its path names.
 * Nothing is placed here: the sink places the files after the batch.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "interactions_cron/batch_receiver.h"
#include "interactions_cron/guc.h"
#include "interactions_cron/hive_path.h"

/*
 * StartFile closes the open file and begins the one for the day of the row
 * (createdAt, id), named after that row.
 */
static void
StartFile(BatchReceiver *receiver, TimestampTz createdAt, int64 id)
{
	MemoryContext executorContext = MemoryContextSwitchTo(receiver->batchContext);
	SinkFile   *file = palloc0(sizeof(SinkFile));

	if (receiver->openFile != NULL)
		SinkCloseFile(receiver->openFile);

	file->relativePath = psprintf("%s/%s",
								  BatchDirectory(receiver->escapedTenantId, createdAt),
								  BatchFileName(createdAt, id, receiver->sink->gzip));
	file->spoolDirectory = receiver->spoolDirectory;
	receiver->files = lappend(receiver->files, file);
	receiver->openFile = file;
	receiver->openFileDay = UtcDayNumber(createdAt);
	receiver->sink->ops->open(receiver->sink, file);
	MemoryContextSwitchTo(executorContext);
}

/*
 * RequireDayPartition fails the tenant on a row that cannot be placed in the
 * layout (created_at infinite or outside the years 1 to 9999), naming it.
 */
static void
RequireDayPartition(BatchReceiver *receiver, TimestampTz createdAt, int64 id)
{
	if (!HasDayPartition(createdAt))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("row id " INT64_FORMAT " of tenant \"%s\" has created_at %s, which no day partition can hold",
						id, receiver->tenantId, timestamptz_to_str(createdAt)),
				 errhint("Correct or delete the row, or move the tenant's checkpoint past it with "
						 "interactions_cron.reset_checkpoint(tenant_id, since, force => true).")));
}

/*
 * RequiredColumnIndex finds a column of the result that the export keys on.
 */
static int
RequiredColumnIndex(TupleDesc tupleDesc, const char *column)
{
	int			attributeNumber = SPI_fnumber(tupleDesc, column);

	if (attributeNumber <= 0)
		elog(ERROR, "export query result has no column \"%s\"", column);
	return attributeNumber - 1;
}

/*
 * ReceiverStartup prepares the serialiser for the result's row type.
 */
static void
ReceiverStartup(DestReceiver *self, int operation, TupleDesc tupleDesc)
{
	BatchReceiver *receiver = (BatchReceiver *) self;

	receiver->rowWriter = NdjsonCreateRowWriter(tupleDesc);
	receiver->createdAtIndex = RequiredColumnIndex(tupleDesc, "created_at");
	receiver->idIndex = RequiredColumnIndex(tupleDesc, "id");
	receiver->idType = TupleDescAttr(tupleDesc, receiver->idIndex)->atttypid;
}

/*
 * RowId reads the id of a row as int64 whatever integer type it has.
 */
static int64
RowId(BatchReceiver *receiver, Datum value)
{
	switch (receiver->idType)
	{
		case INT2OID:
			return DatumGetInt16(value);
		case INT4OID:
			return DatumGetInt32(value);
		default:
			return DatumGetInt64(value);
	}
}

/*
 * ReceiveRow appends one row to the file of its day.
 */
static bool
ReceiveRow(TupleTableSlot *slot, DestReceiver *self)
{
	BatchReceiver *receiver = (BatchReceiver *) self;
	TimestampTz createdAt;
	int64		id;

	slot_getallattrs(slot);
	if (slot->tts_isnull[receiver->createdAtIndex] || slot->tts_isnull[receiver->idIndex])
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("interaction row with a NULL id or created_at cannot be exported"),
				 errhint("The data contract requires id and created_at to be NOT NULL.")));

	createdAt = DatumGetTimestampTz(slot->tts_values[receiver->createdAtIndex]);
	id = RowId(receiver, slot->tts_values[receiver->idIndex]);

	if (receiver->rowCount == 0 || UtcDayNumber(createdAt) != receiver->openFileDay)
	{
		RequireDayPartition(receiver, createdAt, id);
		StartFile(receiver, createdAt, id);
	}

	if (receiver->openFile->file != NULL)
	{
		BatchFile  *file = receiver->openFile->file;
		MemoryContext callerContext = MemoryContextSwitchTo(receiver->rowContext);

		NdjsonAppendRow(receiver->rowWriter, &file->buffer, slot);
		MemoryContextSwitchTo(callerContext);
		MemoryContextReset(receiver->rowContext);
		BatchFileFlushIfFull(file);
	}

	receiver->rowCount++;
	receiver->lastRow.createdAt = createdAt;
	receiver->lastRow.id = id;
	return true;
}

/*
 * ReceiverShutdown has nothing to release: the last file is closed by
 * BatchReceiverFinish, outside the executor.
 */
static void
ReceiverShutdown(DestReceiver *self)
{
}

/*
 * ReceiverDestroy is a no-op: the receiver lives in the tenant's context.
 */
static void
ReceiverDestroy(DestReceiver *self)
{
}

/*
 * CreateBatchReceiver returns a receiver for one tenant's batch.  It and its
 * files live in batchContext (per tenant), not in the executor's context or
 * the transaction's: the files are placed in the batch's second transaction.
 */
BatchReceiver *
CreateBatchReceiver(MemoryContext batchContext, ExportSink *sink, const char *tenantId)
{
	MemoryContext callerContext = CurrentMemoryContext;
	BatchReceiver *receiver = MemoryContextAllocZero(batchContext, sizeof(BatchReceiver));

	receiver->pub.receiveSlot = ReceiveRow;
	receiver->pub.rStartup = ReceiverStartup;
	receiver->pub.rShutdown = ReceiverShutdown;
	receiver->pub.rDestroy = ReceiverDestroy;
	receiver->pub.mydest = DestNone;
	receiver->sink = sink;
	receiver->tenantId = MemoryContextStrdup(batchContext, tenantId);
	receiver->batchContext = batchContext;
	MemoryContextSwitchTo(batchContext);
	receiver->escapedTenantId = HiveEscapePathSegment(tenantId);
	receiver->spoolDirectory = SinkSpoolDirectory(receiver->escapedTenantId);
	receiver->rowContext = AllocSetContextCreate(batchContext,
												 "interactions_cron row",
												 ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(callerContext);
	return receiver;
}

/*
 * BatchReceiverFinish closes the last file of the batch.
 */
void
BatchReceiverFinish(BatchReceiver *receiver)
{
	if (receiver->openFile != NULL)
		SinkCloseFile(receiver->openFile);
}
