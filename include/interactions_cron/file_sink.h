/*
 * file_sink.h
 *	  Crash-safe writing of one export file.
 */
#ifndef INTERACTIONS_CRON_FILE_SINK_H
#define INTERACTIONS_CRON_FILE_SINK_H

#include <zlib.h>

#include "lib/stringinfo.h"

#include "interactions_cron/s3_client.h"

/*
 * A file being written under a temporary name; it appears under its final
 * name, complete and fsynced, only when committed.
 */
typedef struct BatchFile
{
	char	   *finalPath;
	char	   *temporaryPath;
	int			fd;
	StringInfoData buffer;		/* serialised rows not yet written */
	z_stream   *gzip;			/* NULL when not compressing */
	unsigned char *compressed;	/* gzip's output chunk */
	const S3Target *uploadTarget;	/* NULL: rename into place locally */
	char	   *objectKey;
} BatchFile;

extern BatchFile *BatchFileOpen(const char *exportRoot, const char *directory,
								const char *fileName, bool gzip);
extern BatchFile *BatchFileOpenUpload(const char *exportRoot, const S3Target *target,
									  const char *objectKey, bool gzip);
extern void BatchFileFlushIfFull(BatchFile *file);
extern void BatchFileCommit(BatchFile *file);
extern void BatchFileRemoveTemporary(const char *temporaryPath);

#endif
