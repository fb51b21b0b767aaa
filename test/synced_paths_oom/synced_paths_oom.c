/*
 * synced_paths_oom.c
 *	  A check of src/file_sink.c's record of synced paths when an entry's
 *	  copy of its path runs out of memory (t/049 builds and runs it).
 *
 * SyncedPathEnter() must copy the path before it enters it: with HASH_ENTER
 * first (54f0009), the entry's key was the CALLER's pointer until the copy
 * replaced it, and its state was set after the copy.  When the copy raised
 * (out of memory: the generation context asks for a new block exactly when
 * memory is short), the entry stayed in the group's record with
 *   - a key pointing into the caller's memory (ConfirmBatch's transaction
 *     context, freed by the abort that follows), and
 *   - syncErrno never set: whatever the fresh or recycled element held.
 * The next batch of the group that leads to the same directory could then
 * find that entry and take the garbage state for a result: 0 means "durable"
 * and the directory's fsync is skipped although it never ran; -1 fails every
 * later batch of the group.  (The eleventh hostile review's reproduction,
 * test/repro/synced_paths_oom on branch rev11-fsync-review; fixed by a9aaee1.)
 *
 * The module compiles the tree's src/file_sink.c itself, with
 * MemoryContextStrdup redirected to a wrapper that raises "out of memory"
 * once, for one path (the only way to inject it: the server's own symbol
 * wins over LD_PRELOAD), and stubs of what file_sink.c takes from the rest
 * of the extension (FsyncTogether does nothing: io_uring refused, as under a
 * seccomp profile, so every path is fsynced one at a time).  It is loaded by
 * absolute path into an ordinary backend, nothing installed:
 *
 *   CREATE FUNCTION synced_paths_oom(text) RETURNS text
 *     AS '<dir>/synced_paths_oom.so' LANGUAGE C STRICT;
 *   SELECT synced_paths_oom('<lake>');      -- an existing directory
 *
 * With the fsync failure shim preloaded (FSYNC_FAIL_MATCH='exports$'), batch
 * A's copy of "<lake>/exports" fails, and batch B, of the same group and
 * directory, must fsync that directory and fail with its EIO.  The result
 * says what each batch did and what the record holds; "FAIL" lines say what
 * went wrong, an "ok:" line that batch B saw the failure.
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

PG_MODULE_MAGIC;

/* The path whose next copy fails, and the caller's string it failed for. */
static const char *failStrdupOf = NULL;
static const char *failedCallerPointer = NULL;

/*
 * TestStrdup copies string into context, as MemoryContextStrdup does, but
 * raises "out of memory" instead for failStrdupOf, once.
 */
static char *
TestStrdup(MemoryContext context, const char *string)
{
	if (failStrdupOf != NULL && strcmp(string, failStrdupOf) == 0)
	{
		failStrdupOf = NULL;
		failedCallerPointer = string;
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Injected: Failed on request of size %zu in memory context \"%s\".",
						   strlen(string) + 1, context->name)));
	}
	return MemoryContextStrdup(context, string);
}

/* The tree's file_sink.c, its copies of paths made through TestStrdup. */
#define MemoryContextStrdup(context, string) TestStrdup(context, string)
#include "../../src/file_sink.c"
#undef MemoryContextStrdup

/* Stubs of what file_sink.c takes from the rest of the extension. */
void
FsyncTogether(PathToSync *paths, int count)
{
	/* io_uring refused (a seccomp profile): everything left to the caller */
}
void
InjectConcurrentMkdir(const char *path)
{
}
Compressor *
CompressorStart(CompressionKind kind, int level)
{
	return NULL;
}
void
CompressorWrite(Compressor *compressor, const char *data, size_t length, bool finish,
				void (*sink) (void *, const char *, size_t), void *argument)
{
}
void
CompressorEnd(Compressor *compressor)
{
}

static void
Touch(const char *path)
{
	int			fd = open(path, O_CREAT | O_WRONLY, 0600);

	if (fd < 0 || write(fd, "x\n", 2) != 2)
		elog(ERROR, "cannot create %s: %m", path);
	close(fd);
}

/* One batch's SyncPlacedFile in a context of its own, as ConfirmBatch's transaction. */
static char *
Batch(const char *root, const char *file, SyncedPaths *synced, MemoryContext batchContext)
{
	MemoryContext caller = CurrentMemoryContext;
	char	   *outcome = "synced, no error";

	MemoryContextSwitchTo(batchContext);
	PG_TRY();
	{
		SyncPlacedFile(root, file, synced);
	}
	PG_CATCH();
	{
		ErrorData  *error;

		MemoryContextSwitchTo(caller);
		error = CopyErrorData();
		FlushErrorState();
		outcome = psprintf("ERROR: %s", error->message);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(caller);
	return outcome;
}

static void
Describe(StringInfo out, SyncedPaths *synced, const char *directory)
{
	HASH_SEQ_STATUS status;
	SyncedPath *entry;

	hash_seq_init(&status, synced->results);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		bool		dangling = entry->path == failedCallerPointer;

		if (!dangling && strcmp(entry->path, directory) != 0)
			continue;
		appendStringInfo(out, "  entry key %p%s -> \"%s\", syncErrno %d\n",
						 entry->path, dangling ? " (the failed batch's own string, freed)" : " (a copy)",
						 entry->path, entry->syncErrno);
	}
}

PG_FUNCTION_INFO_V1(synced_paths_oom);
Datum
synced_paths_oom(PG_FUNCTION_ARGS)
{
	char	   *root = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *directory = psprintf("%s/exports", root);
	char	   *fileA = psprintf("%s/a.json", directory);
	char	   *fileB = psprintf("%s/b.json", directory);
	MemoryContext group = AllocSetContextCreate(CurrentMemoryContext, "group", ALLOCSET_DEFAULT_SIZES);
	MemoryContext batch = AllocSetContextCreate(CurrentMemoryContext, "batch", ALLOCSET_DEFAULT_SIZES);
	SyncedPaths *synced = SyncedPathsCreate(group);
	StringInfoData out;
	char	   *outcomeB;

	initStringInfo(&out);
	if (mkdir(directory, 0700) != 0 && errno != EEXIST)
		elog(ERROR, "mkdir %s: %m", directory);
	Touch(fileA);
	Touch(fileB);

	failStrdupOf = directory;
	appendStringInfo(&out, "batch A (strdup of \"%s\" fails): %s\n", directory,
					 Batch(root, fileA, synced, batch));
	Describe(&out, synced, directory);
	{
		HASH_SEQ_STATUS status;
		SyncedPath *entry;

		hash_seq_init(&status, synced->results);
		while ((entry = hash_seq_search(&status)) != NULL)
			if (entry->path == failedCallerPointer)
				appendStringInfoString(&out, "FAIL: the record keeps an entry keyed by the failed batch's own string (freed by its abort), its state never set\n");
	}
	MemoryContextReset(batch);	/* the failed batch's transaction is aborted */

	outcomeB = Batch(root, fileB, synced, batch);
	appendStringInfo(&out, "batch B (same directory): %s\n", outcomeB);
	Describe(&out, synced, directory);
	if (strstr(outcomeB, "Input/output error") != NULL)
		appendStringInfoString(&out, "ok: batch B fsynced the directory and saw its failure\n");
	else if (strncmp(outcomeB, "ERROR", 5) == 0)
		appendStringInfoString(&out, "FAIL: batch B failed on a state nobody recorded (wrongly failed for the group)\n");
	else
		appendStringInfoString(&out, "FAIL: batch B's checkpoint would move: the directory's fsync never ran\n");
	MemoryContextDelete(batch);
	MemoryContextDelete(group);
	PG_RETURN_TEXT_P(cstring_to_text(out.data));
}
