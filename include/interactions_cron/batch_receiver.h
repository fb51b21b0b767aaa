/*
 * batch_receiver.h
 *	  A DestReceiver that streams one tenant's batch into day files.
 */
#ifndef INTERACTIONS_CRON_BATCH_RECEIVER_H
#define INTERACTIONS_CRON_BATCH_RECEIVER_H

#include "fmgr.h"
#include "pgtime.h"
#include "tcop/dest.h"

#include "interactions_cron/checkpoint.h"
#include "interactions_cron/ndjson.h"
#include "interactions_cron/relations.h"
#include "interactions_cron/sink.h"

typedef struct BatchReceiver
{
	DestReceiver pub;

	/* set by the caller */
	ExportSink *sink;
	const char *tenantId;
	const char *escapedTenantId;
	char	   *spoolDirectory;
	const char *createdColumn;	/* the history's mapped columns, as named in the result */
	const char *idColumn;
	pg_tz	   *localZone;		/* created is a timestamp in this zone; NULL: timestamptz */

	/* set at startup from the result's row type */
	NdjsonRowWriter *rowWriter;
	int			createdAtIndex;
	int			idIndex;
	FmgrInfo	idOutput;
	bool		idByValue;
	int16		idLength;
	MemoryContext rowContext;	/* reset after every row */
	MemoryContext lastIdContext;	/* holds the last row's id only */
	Datum		lastId;
	MemoryContext batchContext; /* files and paths: outlive the transaction */

	/* progress */
	SinkFile   *openFile;
	int64		openFileDay;
	List	   *files;			/* SinkFile of every day of the batch, in order */
	uint64		rowCount;
	CheckpointPosition lastRow;
} BatchReceiver;

extern BatchReceiver *CreateBatchReceiver(MemoryContext batchContext, ExportSink *sink,
										  const char *tenantId, const ConfiguredTable *history);
extern void BatchReceiverFinish(BatchReceiver *receiver);

#endif
