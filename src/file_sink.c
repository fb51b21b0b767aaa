/*
 * file_sink.c
 *	  Writing an export file's bytes to a hidden temporary file.
 *
 * Rows are buffered, optionally compressed (compression.c), and written to a temporary file
 * whose name starts with "." (ignored by Hive, Spark, Athena and DuckDB
 * globs) and carries random bytes, created with O_EXCL | O_NOFOLLOW so that
 * nothing planted under a predictable name is ever written through.  The
 * sink (sink.c) decides where the file goes once the batch is complete.
 */
#include "postgres.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common/file_perm.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "interactions_cron/file_sink.h"
#include "interactions_cron/fsync_together.h"
#include "interactions_cron/guc.h"

/* Write to the kernel in chunks of about this size. */
#define WRITE_CHUNK_BYTES (256 * 1024)

/* How the fsync of a path went, since a group's files were all placed. */
typedef struct SyncedPath
{
	const char *path;			/* hash key: a copy in the record's context */
	int			syncErrno;		/* 0: durable; above 0: how its fsync failed;
								 * or NOT_SYNCED_YET */
} SyncedPath;

#define NOT_SYNCED_YET (-1)		/* collected for FsyncTogether, or not opened */

/*
 * SyncedPathHash hashes the path a key points to.
 */
static uint32
SyncedPathHash(const void *key, Size keysize)
{
	const char *path = *(const char *const *) key;

	return hash_bytes((const unsigned char *) path, strlen(path));
}

/*
 * SyncedPathMatch compares the paths two keys point to, as strcmp() does.
 */
static int
SyncedPathMatch(const void *key, const void *otherKey, Size keysize)
{
	return strcmp(*(const char *const *) key, *(const char *const *) otherKey);
}

/*
 * SyncedPathsCreate returns an empty record of synced paths in context.  Its
 * keys point to copies of the paths, in a memory context of their own,
 * each as long as it is: a group of batches with a thousand day files each
 * syncs tens of thousands of paths (test/t/048_synced_paths_memory.pl).
 */
SyncedPaths *
SyncedPathsCreate(MemoryContext context)
{
	SyncedPaths *synced = MemoryContextAllocZero(context, sizeof(SyncedPaths));
	HASHCTL		control = {0};

	/* a generation context: the copies are freed all at once, and not rounded up */
	synced->context = GenerationContextCreate(context, "interactions_cron synced paths",
											  ALLOCSET_DEFAULT_SIZES);
	control.keysize = sizeof(const char *);
	control.entrysize = sizeof(SyncedPath);
	control.hash = SyncedPathHash;
	control.match = SyncedPathMatch;
	control.hcxt = context;
	synced->results = hash_create("interactions_cron synced paths table", 256, &control,
								  HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	return synced;
}

/*
 * SyncedPathEnter returns path's record, adding it in state (*found false)
 * when there is none.  The path is copied before the entry is made, so that
 * an ERROR (out of memory) never leaves an entry keyed by the caller's
 * string or without a state (the eleventh review's finding).
 */
static SyncedPath *
SyncedPathEnter(SyncedPaths *synced, const char *path, int state, bool *found)
{
	SyncedPath *result = hash_search(synced->results, &path, HASH_FIND, NULL);
	const char *copy;

	*found = result != NULL;
	if (result != NULL)
		return result;
	copy = MemoryContextStrdup(synced->context, path);
	result = hash_search(synced->results, &copy, HASH_ENTER, NULL);
	result->syncErrno = state;
	return result;
}

/*
 * PathsToMakeDurable lists what makes a placed file durable with its name:
 * the file, then each directory from its own up to "/".  The whole path, not
 * only the directories its batch created: an interrupted batch may have
 * created them and never made them durable, and so may a process that made
 * the export root and its parents (MakeExportRoot) and failed to make one of
 * them durable; the ones above the root are fsynced once a group.
 */
static List *
PathsToMakeDurable(const char *filePath)
{
	char	   *path = pstrdup(filePath);
	List	   *paths = list_make1(pstrdup(path));

	for (;;)
	{
		char	   *slash = strrchr(path, '/');

		if (slash == NULL || (slash == path && path[1] == '\0'))
			break;
		slash[slash == path ? 1 : 0] = '\0';
		paths = lappend(paths, pstrdup(path));
	}
	pfree(path);
	return paths;
}

/*
 * FsyncPathRecorded fsyncs a path as fsync_fname_ext() does, and records its
 * result in result before raising a failure.  A path that cannot be opened
 * raises without a record (it was not fsynced; the next batch tries again),
 * or, with ignorePermission, is passed over when it may not be opened.
 */
static void
FsyncPathRecorded(const char *path, bool isDirectory, bool ignorePermission, SyncedPath *result)
{
	int			descriptor = OpenTransientFile(path, (isDirectory ? O_RDONLY : O_RDWR) | PG_BINARY);
	int			syncErrno = 0;

	if (descriptor < 0)
	{
		if (ignorePermission && errno == EACCES)
		{
			result->syncErrno = 0;
			return;
		}
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", path)));
	}
	if (pg_fsync(descriptor) != 0 && !(isDirectory && (errno == EBADF || errno == EINVAL)))
		syncErrno = errno;
	CloseTransientFile(descriptor);
	result->syncErrno = syncErrno;
	if (syncErrno != 0)
	{
		errno = syncErrno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not fsync file \"%s\": %m", path)));
	}
}

/*
 * SyncPathOnce makes a path durable unless synced records its fsync since
 * the group's files were placed: one fsync of a directory then covers every
 * entry made in it.  With ignorePermission, a directory the server may not
 * open (above the export root) is passed over.  A failed fsync is recorded
 * before it is raised, and a recorded failure is raised again, never
 * retried: a second fsync() may not see the write-back error the first one
 * reported (test/t/046_shared_directory_fsync_fails_once.pl).  A failure is
 * an ERROR for the tenant, never the PANIC that fsync_fname() would raise:
 * these are not the server's own files, and the retry writes them again.
 */
static void
SyncPathOnce(const char *path, bool isDirectory, bool ignorePermission, SyncedPaths *synced)
{
	SyncedPath *result;
	bool		found;

	if (synced == NULL)
	{
		fsync_fname_ext(path, isDirectory, ignorePermission, ERROR);
		return;
	}
	result = SyncedPathEnter(synced, path, NOT_SYNCED_YET, &found);
	if (!found || result->syncErrno == NOT_SYNCED_YET)
		FsyncPathRecorded(path, isDirectory, ignorePermission, result);
	else if (result->syncErrno != 0)
	{
		errno = result->syncErrno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not fsync file \"%s\": %m", path),
				 errdetail("Its fsync failed for an earlier batch of the group, and a second fsync() may not see a write-back error.")));
	}
}

/*
 * SyncPlacedFile makes a placed file durable with its name
 * (PathsToMakeDurable); with synced, only the paths not fsynced yet.
 */
void
SyncPlacedFile(const char *exportRoot, const char *filePath, SyncedPaths *synced)
{
	List	   *paths = PathsToMakeDurable(filePath);
	size_t		rootLength = strlen(exportRoot);
	ListCell   *cell;

	foreach(cell, paths)
		SyncPathOnce(lfirst(cell), cell != list_head(paths), strlen(lfirst(cell)) < rootLength, synced);
	list_free_deep(paths);
}

/*
 * SyncPlacedFilesTogether fsyncs every path that makes the files durable,
 * each once, with many in flight (FsyncTogether), and records the results in
 * synced for SyncPlacedFile.  A path it did not fsync stays NOT_SYNCED_YET,
 * for SyncPathOnce to fsync.
 */
void
SyncPlacedFilesTogether(List *filePaths, SyncedPaths *synced)
{
	int			capacity = list_length(filePaths) * 8;
	PathToSync *toSync;
	int			count = 0;
	ListCell   *fileCell;

	if (filePaths == NIL)
		return;
	toSync = palloc(sizeof(PathToSync) * capacity);

	foreach(fileCell, filePaths)
	{
		List	   *paths = PathsToMakeDurable(lfirst(fileCell));
		ListCell   *cell;

		foreach(cell, paths)
		{
			bool		found;
			SyncedPath *result = SyncedPathEnter(synced, lfirst(cell), NOT_SYNCED_YET, &found);

			if (found)
				continue;
			if (count == capacity)
			{
				capacity *= 2;
				toSync = repalloc(toSync, sizeof(PathToSync) * capacity);
			}
			toSync[count++] = (PathToSync) {result->path, cell != list_head(paths), false, 0};
		}
		list_free_deep(paths);
	}
	FsyncTogether(toSync, count);
	for (int i = 0; i < count; i++)
	{
		if (toSync[i].synced)
			((SyncedPath *) hash_search(synced->results, &toSync[i].path, HASH_FIND, NULL))->syncErrno =
				toSync[i].syncErrno;
	}
	pfree(toSync);
}

/*
 * KernelReportsSyncfsErrors says whether syncfs() returns every error of
 * making its file system durable, as Linux does from 5.17 on: 5.8 made it
 * return write-back errors (before, it returned success whatever the disk
 * said), and 5.17 the errors of the file system's own sync (a journal
 * commit that failed).  Elsewhere only fsync() makes files durable.
 */
bool
KernelReportsSyncfsErrors(void)
{
#ifdef HAVE_SYNCFS
	struct utsname system;
	int			major;
	int			minor;

	if (uname(&system) == 0 && strcmp(system.sysname, "Linux") == 0 &&
		sscanf(system.release, "%d.%d", &major, &minor) == 2)
		return major > 5 || (major == 5 && minor >= 17);
#endif
	return false;
}

/*
 * FileSystemSyncfsKnown says whether the file system holding path is one
 * whose syncfs() makes every file durable: ext2/3/4, XFS, btrfs, and tmpfs
 * (nothing to make durable).  Not FUSE's (bindfs, sshfs, s3fs), whose
 * syncfs() never reaches the daemon that holds the files, nor network
 * file systems', which may return before the server has them; fsync() asks
 * each of those for every path.  *type is the file system's magic number,
 * 0 when statfs() fails (the path missing: the caller fsyncs then).
 */
bool
FileSystemSyncfsKnown(const char *path, unsigned long *type)
{
	struct statfs fileSystem;

	*type = 0;
	if (statfs(path, &fileSystem) != 0)
		return false;
	*type = (unsigned long) fileSystem.f_type;
	switch (fileSystem.f_type)
	{
		case EXT4_SUPER_MAGIC:	/* ext2 and ext3 too */
		case XFS_SUPER_MAGIC:
		case BTRFS_SUPER_MAGIC:
		case TMPFS_MAGIC:
			return true;
		default:
			return false;
	}
}

/*
 * RequireSafeExportRoot refuses an export directory that other OS users may
 * write to, as PostgreSQL refuses such a data directory: they could plant a
 * symbolic link or a directory below it for the export to write, rename or
 * delete through.  A root that does not exist yet is fine; it is created
 * for the server's user alone.  The root itself may be a symbolic link (the
 * superuser chose the path); what it points to is checked.  It says whether
 * the root exists.
 */
bool
RequireSafeExportRoot(const char *exportRoot)
{
	struct stat status;

	if (stat(exportRoot, &status) != 0)
	{
		if (errno == ENOENT)
			return false;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat export directory \"%s\": %m", exportRoot)));
	}
	if (!S_ISDIR(status.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("export directory \"%s\" is not a directory", exportRoot),
				 errhint("Point interactions_cron.export_dir at a directory.")));
	if ((status.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("export directory \"%s\" is writable by other OS users", exportRoot),
				 errdetail("Its permissions are %04o; another user could plant a symbolic link there for the export to write or delete through.",
						   (unsigned int) (status.st_mode & 07777)),
				 errhint("Remove the write permission of group and others: chmod go-w \"%s\".",
						 exportRoot)));
	return true;
}

/*
 * RequireOwnDirectory refuses a directory below the export root that is a
 * symbolic link, or that another OS user owns or may write to: through it a
 * file could be written, renamed or deleted outside the export directory.
 * Every directory below the root is created by the export for the server's
 * user alone, so these hold unless something was planted or changed by hand,
 * and then no one else can swap a checked directory for a link.
 */
static void
RequireOwnDirectory(const char *path, const struct stat *status)
{
	if (S_ISLNK(status->st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("\"%s\" below the export directory is a symbolic link", path),
				 errdetail("The export follows no symbolic link below interactions_cron.export_dir."),
				 errhint("Remove the link; to write the exports elsewhere, change interactions_cron.export_dir.")));
	if (!S_ISDIR(status->st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("\"%s\" below the export directory is not a directory", path),
				 errhint("Remove it; the export creates its directories itself.")));
	if (status->st_uid != geteuid() || (status->st_mode & (S_IWGRP | S_IWOTH)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("directory \"%s\" below the export directory is owned or writable by another OS user", path),
				 errhint("Make it the server's user's alone: chown it to that user and chmod go-w it.")));
}

/*
 * CreateDirectory makes one directory for the server's user alone.  One that
 * another worker or call created first is no error: the caller stats what
 * is there now and checks it.
 */
static void
CreateDirectory(const char *path)
{
	InjectConcurrentMkdir(path);
	if (mkdir(path, pg_dir_create_mode) != 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create export directory \"%s\": %m", path)));
}

/*
 * SyncParentDirectory makes a new directory's entry in its parent durable.
 */
static void
SyncParentDirectory(const char *path)
{
	char	   *parent = pstrdup(path);
	char	   *slash = strrchr(parent, '/');

	if (slash == parent)
		slash[1] = '\0';
	else
		*slash = '\0';
	fsync_fname_ext(parent, true, false, ERROR);
	pfree(parent);
}

/*
 * MakeExportRoot creates the export root and its missing parents, one
 * component at a time, each made durable in its parent at once (every
 * batch's syncs make them durable again, up to "/").  Unlike pg_mkdir_p, which gives up
 * when another process creates a parent between its stat and its mkdir, it
 * carries on below that parent, so the whole path exists afterwards whoever
 * made each part.  The parents may be symbolic links (the superuser chose the path);
 * each must lead to a directory.
 */
static void
MakeExportRoot(const char *exportRoot)
{
	char	   *path = pstrdup(exportRoot);

	for (char *slash = strchr(path + 1, '/');; slash = strchr(slash + 1, '/'))
	{
		struct stat status;

		if (slash != NULL)
			*slash = '\0';
		if (stat(path, &status) != 0)
		{
			if (errno != ENOENT)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not stat export directory \"%s\": %m", path)));
			CreateDirectory(path);
			SyncParentDirectory(path);
			if (stat(path, &status) != 0)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not stat export directory \"%s\": %m", path)));
		}
		if (!S_ISDIR(status.st_mode))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("\"%s\" on the path of the export directory is not a directory", path),
					 errhint("Point interactions_cron.export_dir at a directory.")));
		if (slash == NULL)
			break;
		*slash = '/';
	}
	pfree(path);
}

/*
 * WalkExportDirectory checks every directory from the export root down to
 * root/relative, one path component at a time with lstat, so that a planted
 * symbolic link at any level is refused rather than followed.  With create,
 * missing directories are made (for the server's user alone); without it,
 * the walk stops at the first missing one and returns false.
 */
static bool
WalkExportDirectory(const char *exportRoot, const char *relative, bool create)
{
	StringInfoData path;
	char	   *components = pstrdup(relative);
	char	   *savePointer = NULL;
	struct stat status;

	if (!RequireSafeExportRoot(exportRoot))
	{
		if (!create)
			return false;
		MakeExportRoot(exportRoot);
		/* whoever created it, it must be as safe as one found in place */
		(void) RequireSafeExportRoot(exportRoot);
	}

	initStringInfo(&path);
	appendStringInfoString(&path, exportRoot);
	for (char *component = strtok_r(components, "/", &savePointer); component != NULL;
		 component = strtok_r(NULL, "/", &savePointer))
	{
		appendStringInfo(&path, "/%s", component);
		if (lstat(path.data, &status) != 0)
		{
			if (errno != ENOENT)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not stat export directory \"%s\": %m", path.data)));
			if (!create)
				return false;
			CreateDirectory(path.data);
			if (lstat(path.data, &status) != 0)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not stat export directory \"%s\": %m", path.data)));
		}
		RequireOwnDirectory(path.data, &status);
	}
	return true;
}

/*
 * EnsureExportDirectory creates root/relative and the directories above it
 * as needed, refusing any symbolic link below the root.  Nothing is fsynced
 * here: a new directory of the lake is made durable with the files placed
 * in it (SyncPlacedFile), and the spool's never needs to be, its
 * contents being disposable.
 */
void
EnsureExportDirectory(const char *exportRoot, const char *relative)
{
	(void) WalkExportDirectory(exportRoot, relative, true);
}

/*
 * ExportDirectoryExists says whether root/relative exists, refusing any
 * symbolic link below the root on the way, before a file in it is deleted.
 */
bool
ExportDirectoryExists(const char *exportRoot, const char *relative)
{
	return WalkExportDirectory(exportRoot, relative, false);
}

/*
 * UniqueTemporaryName returns ".<stem>.<16 random hex digits>.tmp": hidden
 * from lake readers, and impossible to plant in advance.
 */
char *
UniqueTemporaryName(const char *stem)
{
	uint64		random;

	if (!pg_strong_random(&random, sizeof(random)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random temporary file name")));
	return psprintf(".%s.%016llx.tmp", stem, (unsigned long long) random);
}

/*
 * BatchFileCreate creates a new temporary file; it never opens an existing
 * file or follows a symbolic link.
 */
BatchFile *
BatchFileCreate(const char *temporaryPath, CompressionKind compression, int compressionLevel)
{
	BatchFile  *file = palloc0(sizeof(BatchFile));

	file->temporaryPath = pstrdup(temporaryPath);
	file->fd = OpenTransientFile(file->temporaryPath,
								 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | PG_BINARY);
	if (file->fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create export file \"%s\": %m", file->temporaryPath)));

	initStringInfo(&file->buffer);
	enlargeStringInfo(&file->buffer, WRITE_CHUNK_BYTES);
	file->compressor = CompressorStart(compression, compressionLevel);
	return file;
}

/*
 * WriteAll hands bytes to the kernel, treating a short write without errno
 * as a full disk, as PostgreSQL itself does.  It asks the kernel to start
 * writing them back at once (pg_flush_data, as the checkpointer does), so
 * that the fsync before the file is placed finds little left to do.
 */
static void
WriteAll(BatchFile *file, const char *data, size_t remaining)
{
	off_t		start = file->written;

	while (remaining > 0)
	{
		ssize_t		written;

		errno = 0;
		written = write(file->fd, data, remaining);
		if (written < 0 && errno == EINTR)
			continue;
		if (written <= 0)
		{
			if (errno == 0)
				errno = ENOSPC;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not write export file \"%s\": %m", file->temporaryPath)));
		}
		data += written;
		remaining -= written;
		file->written += written;
	}
	if (file->written > start)
		pg_flush_data(file->fd, start, file->written - start);
}

/*
 * WriteCompressed writes what the compressor produced.
 */
static void
WriteCompressed(void *argument, const char *data, size_t length)
{
	WriteAll((BatchFile *) argument, data, length);
}

/*
 * WriteBuffer writes the buffered rows, compressed when compression is on.
 */
static void
WriteBuffer(BatchFile *file, bool finish)
{
	if (file->compressor != NULL)
		CompressorWrite(file->compressor, file->buffer.data, file->buffer.len, finish,
						WriteCompressed, file);
	else
		WriteAll(file, file->buffer.data, file->buffer.len);
	resetStringInfo(&file->buffer);
}

/*
 * BatchFileFlushIfFull writes the buffer once it holds a chunk's worth.
 */
void
BatchFileFlushIfFull(BatchFile *file)
{
	if (file->buffer.len >= WRITE_CHUNK_BYTES)
		WriteBuffer(file, false);
}

/*
 * BatchFileClose writes what is left (and the compressed stream's end) and closes the
 * file; the sink fsyncs it once it is placed.  The buffers go too: a batch
 * can span many days.
 */
void
BatchFileClose(BatchFile *file)
{
	WriteBuffer(file, true);
	if (file->compressor != NULL)
	{
		CompressorEnd(file->compressor);
		file->compressor = NULL;
	}

	if (CloseTransientFile(file->fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not close export file \"%s\": %m", file->temporaryPath)));
	file->fd = -1;
	pfree(file->buffer.data);
	file->buffer.data = NULL;
}

/*
 * RemoveFileIfPresent deletes a file; one that is already gone is fine.
 */
void
RemoveFileIfPresent(const char *path, int elevel)
{
	if (unlink(path) != 0 && errno != ENOENT)
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("could not remove export file \"%s\": %m", path)));
}

/*
 * LakeFileRead returns the whole content of a file of the lake, refusing a
 * symbolic link in its last component as the writer does.
 */
StringInfo
LakeFileRead(const char *path)
{
	StringInfo	content = makeStringInfo();
	int			fd = OpenTransientFile(path, O_RDONLY | O_NOFOLLOW | PG_BINARY);
	char	   *buffer = palloc(WRITE_CHUNK_BYTES);
	ssize_t		length;

	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open export file \"%s\": %m", path)));
	while ((length = read(fd, buffer, WRITE_CHUNK_BYTES)) != 0)
	{
		if (length < 0)
		{
			if (errno == EINTR)
				continue;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read export file \"%s\": %m", path)));
		}
		appendBinaryStringInfo(content, buffer, length);
		CHECK_FOR_INTERRUPTS();
	}
	if (CloseTransientFile(fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not close export file \"%s\": %m", path)));
	return content;
}
