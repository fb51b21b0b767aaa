/*
 * batch_receiver.h
 *	  A DestReceiver that streams one tenant's batch into day files.
 */
#ifndef INTERACTIONS_CRON_BATCH_RECEIVER_H
#define INTERACTIONS_CRON_BATCH_RECEIVER_H

#include "tcop/dest.h"

#include "interactions_cron/checkpoint.h"
#include "interactions_cron/file_sink.h"
#include "interactions_cron/ndjson.h"

typedef struct BatchReceiver
{
	DestReceiver pub;

	/* set by the caller */
	const char *exportRoot;
	const char *escapedTenantId;
	bool		dryRun;
	const S3Target *s3;			/* NULL: local files */

	/* set at startup from the result's row type */
	NdjsonRowWriter *rowWriter;
	int			createdAtIndex;
	int			idIndex;
	Oid			idType;
	MemoryContext rowContext;	/* reset after every row */
	MemoryContext batchContext; /* files and paths: outlives the executor */

	/* progress */
	BatchFile  *openFile;
	int64		openFileDay;
	List	   *relativePaths;	/* every file of the batch, in order */
	uint64		rowCount;
	CheckpointPosition lastRow;
} BatchReceiver;

extern BatchReceiver *CreateBatchReceiver(MemoryContext batchContext,
										  const char *exportRoot,
										  const S3Target *s3,
										  const char *escapedTenantId,
										  bool dryRun);
extern void BatchReceiverFinish(BatchReceiver *receiver);
extern const char *BatchReceiverTemporaryPath(BatchReceiver *receiver);

#endif
