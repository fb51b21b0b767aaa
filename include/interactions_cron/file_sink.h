/*
 * file_sink.h
 *	  Writing one export file's bytes to a hidden temporary file.
 */
#ifndef INTERACTIONS_CRON_FILE_SINK_H
#define INTERACTIONS_CRON_FILE_SINK_H

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/hsearch.h"

#include "interactions_cron/compression.h"

/*
 * A temporary file being written; where it ends up is the sink's business.
 */
typedef struct BatchFile
{
	char	   *temporaryPath;
	int			fd;				/* -1 once closed */
	off_t		written;		/* bytes handed to the kernel so far */
	StringInfoData buffer;		/* serialised rows not yet written */
	Compressor *compressor;		/* NULL when not compressing */
} BatchFile;

/*
 * The paths fsynced since a point after which every directory entry that
 * matters was in place (see SinkBeginGroupSync), with each fsync's result,
 * or the syncfs() that made the whole file system durable then.
 */
typedef struct SyncedPaths
{
	MemoryContext context;		/* where the copies of its paths are kept */
	HTAB	   *results;		/* by path (SyncedPath in file_sink.c) */
	bool		wholeFileSystem;	/* one syncfs() covered every file */
	int			syncfsErrno;	/* how that syncfs() failed, 0 if it did not */
} SyncedPaths;

extern bool KernelReportsSyncfsErrors(void);
extern bool FileSystemSyncfsKnown(const char *path, unsigned long *type);
extern bool RequireSafeExportRoot(const char *exportRoot);
extern void EnsureExportDirectory(const char *exportRoot, const char *relative);
extern bool ExportDirectoryExists(const char *exportRoot, const char *relative);
extern SyncedPaths *SyncedPathsCreate(MemoryContext context);
extern void SyncPlacedFile(const char *exportRoot, const char *filePath, SyncedPaths *synced);
extern void SyncPlacedFilesTogether(List *filePaths, SyncedPaths *synced);
extern char *UniqueTemporaryName(const char *stem);
extern BatchFile *BatchFileCreate(const char *temporaryPath, CompressionKind compression,
								  int compressionLevel);
extern void BatchFileFlushIfFull(BatchFile *file);
extern void BatchFileClose(BatchFile *file);
extern void RemoveFileIfPresent(const char *path, int elevel);
extern StringInfo LakeFileRead(const char *path);

#endif
