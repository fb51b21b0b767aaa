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
#include "utils/datum.h"
#include "utils/lsyscache.h"
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
StartFile(BatchReceiver *receiver, TimestampTz createdAt, const char *id)
{
	MemoryContext executorContext = MemoryContextSwitchTo(receiver->batchContext);
	SinkFile   *file = palloc0(sizeof(SinkFile));

	if (receiver->openFile != NULL)
		SinkCloseFile(receiver->openFile);

	file->relativePath = psprintf("%s/%s",
								  BatchDirectory(receiver->escapedTenantId, createdAt),
								  BatchFileName(createdAt, id, receiver->sink->compression));
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
RequireDayPartition(BatchReceiver *receiver, TimestampTz createdAt, const char *id)
{
	if (!HasDayPartition(createdAt))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("row id %s of tenant \"%s\" has %s %s, which no day partition can hold",
						id, receiver->tenantId, receiver->createdColumn,
						timestamptz_to_str(createdAt)),
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
	Oid			idType;
	Oid			outputFunction;
	bool		isVarlena;

	receiver->rowWriter = NdjsonCreateRowWriter(tupleDesc, receiver->localZone);
	receiver->createdAtIndex = RequiredColumnIndex(tupleDesc, receiver->createdColumn);
	receiver->idIndex = RequiredColumnIndex(tupleDesc, receiver->idColumn);
	idType = TupleDescAttr(tupleDesc, receiver->idIndex)->atttypid;
	getTypeOutputInfo(idType, &outputFunction, &isVarlena);
	fmgr_info_cxt(outputFunction, &receiver->idOutput, receiver->batchContext);
	get_typlenbyval(idType, &receiver->idLength, &receiver->idByValue);
}

/*
 * RowCreatedAt returns a row's created instant: a timestamp column's value
 * is a wall-clock time in interactions_cron.history_timezone.
 */
static TimestampTz
RowCreatedAt(BatchReceiver *receiver, Datum value)
{
	if (receiver->localZone == NULL)
		return DatumGetTimestampTz(value);
	return LocalTimestampToInstant(DatumGetTimestamp(value), receiver->localZone);
}

/*
 * KeepLastId keeps a copy of the row's id, which the checkpoint will record
 * if the row is the batch's last; only one is ever kept.
 */
static void
KeepLastId(BatchReceiver *receiver, Datum id)
{
	MemoryContext callerContext;

	if (receiver->idByValue)
	{
		receiver->lastId = id;
		return;
	}
	MemoryContextReset(receiver->lastIdContext);
	callerContext = MemoryContextSwitchTo(receiver->lastIdContext);
	receiver->lastId = datumCopy(id, false, receiver->idLength);
	MemoryContextSwitchTo(callerContext);
}

/*
 * IdText returns an id's text form, in the current memory context.
 */
static char *
IdText(BatchReceiver *receiver, Datum id)
{
	return OutputFunctionCall(&receiver->idOutput, id);
}

/*
 * ReceiveRow appends one row to the file of its day.
 */
static bool
ReceiveRow(TupleTableSlot *slot, DestReceiver *self)
{
	BatchReceiver *receiver = (BatchReceiver *) self;
	TimestampTz createdAt;
	Datum		id;

	slot_getallattrs(slot);
	if (slot->tts_isnull[receiver->createdAtIndex] || slot->tts_isnull[receiver->idIndex])
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("interaction row with a NULL %s or %s cannot be exported",
						receiver->idColumn, receiver->createdColumn),
				 errhint("The data contract requires the id and created columns to be NOT NULL.")));

	createdAt = RowCreatedAt(receiver, slot->tts_values[receiver->createdAtIndex]);
	id = slot->tts_values[receiver->idIndex];

	if (receiver->rowCount == 0 || UtcDayNumber(createdAt) != receiver->openFileDay)
	{
		MemoryContext callerContext = MemoryContextSwitchTo(receiver->rowContext);
		char	   *idText = IdText(receiver, id);

		RequireDayPartition(receiver, createdAt, idText);
		StartFile(receiver, createdAt, idText);
		MemoryContextSwitchTo(callerContext);
		MemoryContextReset(receiver->rowContext);
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
	KeepLastId(receiver, id);
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
CreateBatchReceiver(MemoryContext batchContext, ExportSink *sink, const char *tenantId,
					const ConfiguredTable *history)
{
	const MappedColumn *created = &history->columns[HISTORY_CREATED_COLUMN];
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
	receiver->createdColumn = pstrdup(created->name);
	receiver->idColumn = pstrdup(history->columns[HISTORY_ID_COLUMN].name);
	receiver->localZone = IsLocalTimestamp(created) ? pg_tzset(HistoryTimezoneSetting) : NULL;
	receiver->rowContext = AllocSetContextCreate(batchContext,
												 "interactions_cron row",
												 ALLOCSET_DEFAULT_SIZES);
	receiver->lastIdContext = AllocSetContextCreate(batchContext,
													"interactions_cron last id",
													ALLOCSET_SMALL_SIZES);
	MemoryContextSwitchTo(callerContext);
	return receiver;
}

/*
 * BatchReceiverFinish closes the last file of the batch and sets the last
 * row's position, its id in text form.
 */
void
BatchReceiverFinish(BatchReceiver *receiver)
{
	if (receiver->openFile != NULL)
		SinkCloseFile(receiver->openFile);
	if (receiver->rowCount > 0)
	{
		MemoryContext callerContext = MemoryContextSwitchTo(receiver->batchContext);

		receiver->lastRow.id = IdText(receiver, receiver->lastId);
		MemoryContextSwitchTo(callerContext);
	}
}
