/*
 * sink.h
 *	  Where a batch's files go: local files or S3, chosen once per run.
 */
#ifndef INTERACTIONS_CRON_SINK_H
#define INTERACTIONS_CRON_SINK_H

#include "nodes/pg_list.h"

#include "interactions_cron/file_sink.h"
#include "interactions_cron/s3_client.h"

/* One file of a batch: written under a temporary name, placed at batch end. */
typedef struct SinkFile
{
	char	   *relativePath;	/* exports/.../batch-....json: its name in the lake */
	const char *spoolDirectory; /* the tenant's, relative to export_dir */
	char	   *temporaryPath;	/* absolute; NULL in a dry run */
	BatchFile  *file;			/* open while rows are written into it */
} SinkFile;

typedef struct ExportSink ExportSink;

/*
 * What differs between destinations.  Rows are always written to a local
 * temporary file first (file_sink.c), in the tenant's own spool directory
 * (<export_dir>/.spool/<database>/<tenant>); nothing becomes visible to lake readers
 * before place, which runs at batch end, outside the executor.
 */
/*
 * Called by a sink's list with each relative path, in a memory context that
 * may be reset once it returns: it copies whatever it keeps.
 */
typedef void (*SinkFileVisitor) (const char *relativePath, void *argument);

typedef struct ExportSinkOps
{
	/* create the temporary file of a new file of the batch */
	void		(*open) (ExportSink *sink, SinkFile *file);
	/*
	 * make a closed temporary file visible under its relative path; false,
	 * having placed nothing, when a file has that name already
	 */
	bool		(*place) (ExportSink *sink, SinkFile *file);
	/* make a placed file durable, with its name */
	void		(*sync) (ExportSink *sink, SinkFile *file);
	/* delete a file of the lake (one a failed batch may have placed) */
	void		(*remove) (ExportSink *sink, const char *relativePath);
	/* delete a temporary file that will not be placed */
	void		(*abort) (ExportSink *sink, const char *temporaryPath);
	/* visit the relative path of each of the lake's files under a relative directory */
	void		(*list) (ExportSink *sink, const char *relativeDirectory, SinkFileVisitor visit,
						 void *argument);
	/* the content of a file of the lake, as stored (compressed or not) */
	StringInfo	(*read) (ExportSink *sink, const char *relativePath);
	/* whether the lake has a file under a relative path */
	bool		(*holds) (ExportSink *sink, const char *relativePath);
	/*
	 * the origin a file of the lake was placed with (see SinkSetOrigin),
	 * NULL if none; the op is NULL where files have none (dry run)
	 */
	char	   *(*origin) (ExportSink *sink, const char *relativePath);
} ExportSinkOps;

/* An origin (see SinkSetOrigin), taken apart by ParseOrigin. */
typedef struct OriginParts
{
	uint64		systemIdentifier;
	Oid			databaseOid;
	char	   *prefix;			/* the system identifier, database and extension OIDs */
	const char *historyId;		/* within the origin's text */
} OriginParts;

struct ExportSink
{
	const ExportSinkOps *ops;
	const char *storage;		/* "local", "s3" or "none" (dry run) */
	char	   *localRoot;		/* export_dir: local files, temporaries, spool */
	S3Target   *s3;				/* NULL unless storage is s3 */
	CompressionKind compression;
	int			compressionLevel;
	SyncedPaths *syncedPaths;	/* NULL: fsync every path */
	int			fileSystemDescriptor;	/* the export root, open for syncfs(); -1 if not */
	dev_t		fileSystemDevice;	/* the file system it is on */
	/* system identifier, database and extension OIDs (see SinkSetOrigin); NULL: none */
	char	   *originPrefix;
	char	   *origin;			/* the prefix, then the history id: what placed files carry */
};

extern ExportSink *SinkFromSettings(bool dryRun);
extern ExportSink *SinkAtLocation(const char *storage, const char *localRoot,
								  const char *s3Endpoint, const char *s3Bucket,
								  const char *s3Prefix);
extern char *CurrentOriginPrefix(void);
extern bool ParseOrigin(const char *text, OriginParts *parts);
extern void SinkSetOrigin(ExportSink *sink, const char *historyId);
extern char *SinkFileOrigin(ExportSink *sink, const char *relativePath);
extern bool SinkOriginInLostHistory(const ExportSink *sink, const char *origin);
extern bool SinkOriginIsAnotherDatabases(const ExportSink *sink, const char *origin);
extern char *SinkLocation(const ExportSink *sink);
extern void SinkCloseFile(SinkFile *file);
extern void SinkAbortFiles(ExportSink *sink, List *files);
extern char *SinkRelativeTemporaryPath(const ExportSink *sink, const char *temporaryPath);
extern char *SinkSpoolDirectory(const char *escapedTenantId);
extern char *SinkFileIdentity(const ExportSink *sink, const SinkFile *file);
extern void SinkRequireOwnPlaced(const ExportSink *sink, const char *relativePath, const char *identity);
extern void SinkRemoveSpooled(ExportSink *sink, const char *relativeTemporaryPath);
extern void SinkWatchFileSystem(ExportSink *sink);
extern void SinkBeginGroupSync(ExportSink *sink, MemoryContext context, List *placedFiles);
extern void SinkEndGroupSync(ExportSink *sink);
extern void SinkPurgeSpool(const ExportSink *sink, const char *spoolRelative);

#endif
