/*
 * file_sink.c
 *	  Writing an export file's bytes to a hidden temporary file.
 *
 * Rows are buffered, optionally gzipped, and written to a temporary file
 * whose name starts with "." (ignored by Hive, Spark, Athena and DuckDB
 * globs) and carries random bytes, created with O_EXCL | O_NOFOLLOW so that
 * nothing planted under a predictable name is ever written through.  The
 * sink (sink.c) decides where the file goes once the batch is complete.
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file_perm.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "storage/fd.h"

#include "interactions_cron/file_sink.h"

/* Write to the kernel in chunks of about this size. */
#define WRITE_CHUNK_BYTES (256 * 1024)

/*
 * SyncNewDirectories makes the entries of freshly created directories
 * durable, from the deepest one up to the export root itself.  A failure is
 * an ERROR for the tenant, never the PANIC that fsync_fname() would raise:
 * these are not the server's own files, and the retry writes them again.
 */
void
SyncNewDirectories(const char *exportRoot, const char *deepest)
{
	char	   *path = pstrdup(deepest);
	size_t		rootLength = strlen(exportRoot);

	for (;;)
	{
		char	   *slash;

		fsync_fname_ext(path, true, false, ERROR);
		if (strlen(path) <= rootLength)
			break;
		slash = strrchr(path, '/');
		if (slash == NULL || slash == path)
			break;
		*slash = '\0';
	}
	pfree(path);
}

/*
 * EnsureExportDirectory creates a directory and its parents if needed and
 * says whether it had to.  Nothing is fsynced here: a new directory of the
 * lake is made durable with the files placed in it (SyncNewDirectories),
 * and the spool's never needs to be, its contents being disposable.
 */
bool
EnsureExportDirectory(const char *directory)
{
	struct stat status;
	char	   *path;

	if (stat(directory, &status) == 0 && S_ISDIR(status.st_mode))
		return false;

	path = pstrdup(directory);
	if (pg_mkdir_p(path, pg_dir_create_mode) != 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create export directory \"%s\": %m", directory)));
	pfree(path);

	if (stat(directory, &status) != 0 || !S_ISDIR(status.st_mode))
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create export directory \"%s\": %m", directory)));
	return true;
}

/*
 * GzipAllocate lets zlib allocate in the current memory context, so that an
 * error mid-file leaks nothing.
 */
static voidpf
GzipAllocate(voidpf opaque, uInt items, uInt size)
{
	return MemoryContextAllocExtended((MemoryContext) opaque, (Size) items * size, MCXT_ALLOC_HUGE);
}

/*
 * GzipFree returns zlib's memory to its context.
 */
static void
GzipFree(voidpf opaque, voidpf address)
{
	pfree(address);
}

/*
 * StartGzip prepares a deflate stream with a gzip header and trailer.
 */
static void
StartGzip(BatchFile *file)
{
	file->gzip = palloc0(sizeof(z_stream));
	file->gzip->zalloc = GzipAllocate;
	file->gzip->zfree = GzipFree;
	file->gzip->opaque = CurrentMemoryContext;
	if (deflateInit2(file->gzip, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
					 Z_DEFAULT_STRATEGY) != Z_OK)
		elog(ERROR, "could not start gzip compression: %s", file->gzip->msg ? file->gzip->msg : "");
	file->compressed = palloc(WRITE_CHUNK_BYTES);
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
BatchFileCreate(const char *temporaryPath, bool gzip)
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
	if (gzip)
		StartGzip(file);
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
 * Deflate feeds the buffered rows to gzip and writes whatever it produces;
 * finish also writes the gzip trailer.
 */
static void
Deflate(BatchFile *file, bool finish)
{
	int			status;

	file->gzip->next_in = (Bytef *) file->buffer.data;
	file->gzip->avail_in = file->buffer.len;
	do
	{
		file->gzip->next_out = file->compressed;
		file->gzip->avail_out = WRITE_CHUNK_BYTES;
		status = deflate(file->gzip, finish ? Z_FINISH : Z_NO_FLUSH);
		if (status == Z_STREAM_ERROR)
			elog(ERROR, "gzip compression failed");
		WriteAll(file, (const char *) file->compressed, WRITE_CHUNK_BYTES - file->gzip->avail_out);
	} while (file->gzip->avail_out == 0 || (finish && status != Z_STREAM_END));
}

/*
 * WriteBuffer writes the buffered rows, compressed when gzip is on.
 */
static void
WriteBuffer(BatchFile *file, bool finish)
{
	if (file->gzip != NULL)
		Deflate(file, finish);
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
 * BatchFileClose writes what is left (and gzip's trailer) and closes the
 * file; the sink fsyncs it once it is placed.  The buffers go too: a batch
 * can span many days.
 */
void
BatchFileClose(BatchFile *file)
{
	WriteBuffer(file, true);
	if (file->gzip != NULL)
	{
		deflateEnd(file->gzip);
		pfree(file->compressed);
		file->compressed = NULL;
		file->gzip = NULL;
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
