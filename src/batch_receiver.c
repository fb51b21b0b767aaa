/*
 * batch_receiver.c
 *	  Streaming a tenant's batch from the executor straight into files.
 *
 * Like COPY TO, the rows are never materialised: each one is serialised into
 * the open file's buffer as the executor produces it, so memory stays flat
 * whatever the batch size.  Rows arrive in (created_at, id) order; when the
 * UTC day changes the open file is committed and the next day's file opened,
 * so every file holds the rows of the one day its path names.
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
 * InjectFaultAfterWrite fails or stalls right after a file reached its final
 * name and before the checkpoint moves, for the failure and crash tests.
 */
static void
InjectFaultAfterWrite(const char *relativePath)
{
	if (DebugFaultSetting == DEBUG_FAULT_ERROR_AFTER_WRITE)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("injected fault after writing \"%s\"", relativePath),
				 errhint("interactions_cron.debug_fault is set; reset it outside tests.")));

	if (DebugFaultSetting == DEBUG_FAULT_SLEEP_AFTER_WRITE)
	{
		elog(LOG, "interactions_cron: sleeping after writing \"%s\" (debug_fault)", relativePath);
		for (int i = 0; i < 600; i++)
		{
			CHECK_FOR_INTERRUPTS();
			pg_usleep(100 * 1000L);
		}
	}
}

/*
 * CommitOpenFile gives the open file its final name.
 */
static void
CommitOpenFile(BatchReceiver *receiver)
{
	if (receiver->openFile == NULL)
		return;

	BatchFileCommit(receiver->openFile);
	pfree(receiver->openFile);
	receiver->openFile = NULL;
	InjectFaultAfterWrite(llast(receiver->relativePaths));
}

/*
 * StartFile begins the file for the day of the row (createdAt, id), naming it
 * after that row.
 */
static void
StartFile(BatchReceiver *receiver, TimestampTz createdAt, int64 id)
{
	MemoryContext executorContext = MemoryContextSwitchTo(receiver->batchContext);
	char	   *directory = BatchDirectory(receiver->escapedTenantId, createdAt);
	bool		gzip = CompressionSetting == COMPRESSION_GZIP;
	char	   *fileName = BatchFileName(createdAt, id, gzip);

	CommitOpenFile(receiver);

	receiver->relativePaths = lappend(receiver->relativePaths,
									  psprintf("%s/%s", directory, fileName));
	receiver->openFileDay = UtcDayNumber(createdAt);

	if (!receiver->dryRun)
		receiver->openFile = receiver->s3 != NULL
			? BatchFileOpenUpload(receiver->exportRoot, receiver->s3,
								  psprintf("%s%s/%s", receiver->s3->prefix, directory, fileName), gzip)
			: BatchFileOpen(receiver->exportRoot, psprintf("%s/%s", receiver->exportRoot, directory),
							fileName, gzip);
	MemoryContextSwitchTo(executorContext);
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
		StartFile(receiver, createdAt, id);

	if (receiver->openFile != NULL)
	{
		MemoryContext callerContext = MemoryContextSwitchTo(receiver->rowContext);

		NdjsonAppendRow(receiver->rowWriter, &receiver->openFile->buffer, slot);
		MemoryContextSwitchTo(callerContext);
		MemoryContextReset(receiver->rowContext);
		BatchFileFlushIfFull(receiver->openFile);
	}

	receiver->rowCount++;
	receiver->lastRow.createdAt = createdAt;
	receiver->lastRow.id = id;
	return true;
}

/*
 * ReceiverShutdown has nothing to release: the last file is committed by
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
 * files live in batchContext (per tenant), not in the executor's context,
 * which is gone by the time the last file is committed.
 */
BatchReceiver *
CreateBatchReceiver(MemoryContext batchContext, const char *exportRoot,
					const S3Target *s3, const char *escapedTenantId, bool dryRun)
{
	BatchReceiver *receiver = MemoryContextAllocZero(batchContext, sizeof(BatchReceiver));

	receiver->pub.receiveSlot = ReceiveRow;
	receiver->pub.rStartup = ReceiverStartup;
	receiver->pub.rShutdown = ReceiverShutdown;
	receiver->pub.rDestroy = ReceiverDestroy;
	receiver->pub.mydest = DestNone;
	receiver->exportRoot = exportRoot;
	receiver->s3 = s3;
	receiver->escapedTenantId = escapedTenantId;
	receiver->dryRun = dryRun;
	receiver->batchContext = batchContext;
	receiver->rowContext = AllocSetContextCreate(batchContext,
												 "interactions_cron row",
												 ALLOCSET_DEFAULT_SIZES);
	return receiver;
}

/*
 * BatchReceiverFinish commits the last file of the batch.
 */
void
BatchReceiverFinish(BatchReceiver *receiver)
{
	CommitOpenFile(receiver);
}

/*
 * BatchReceiverTemporaryPath names the file left half-written by an error,
 * or NULL when no file was open.
 */
const char *
BatchReceiverTemporaryPath(BatchReceiver *receiver)
{
	return receiver->openFile != NULL ? receiver->openFile->temporaryPath : NULL;
}
