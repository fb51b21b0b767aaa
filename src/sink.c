/*
 * sink.c
 *	  The destinations of exported files, chosen once per run as an ops
 *	  struct, as PostgreSQL's base backup chooses its bbsink.
 *
 * Temporary files sit in the tenant's spool directory, <export_dir>/.spool/
 * <database>/<tenant> (hidden from lake readers).  Only the export holding the tenant's
 * claim writes there, so the claim empties it first: whatever a crash left
 * behind goes with the next export of the tenant.  Local: placing a file is
 * one rename into its partition directory (the same file system), made
 * durable by a later sync.
 * S3: it is an upload.  Dry run: nothing is written at all.
 */
#include "postgres.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "access/xlog.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/json.h"

#include "interactions_cron/guc.h"
#include "interactions_cron/hive_path.h"
#include "interactions_cron/sink.h"

/*
 * DirectoryOf returns the part of a relative path before its last "/".
 */
static char *
DirectoryOf(const char *relativePath)
{
	const char *slash = strrchr(relativePath, '/');

	return slash ? pnstrdup(relativePath, slash - relativePath) : pstrdup(".");
}

/*
 * ObjectKey returns the S3 key of a relative path: the prefix, then the path.
 */
static char *
ObjectKey(const ExportSink *sink, const char *relativePath)
{
	return psprintf("%s%s", sink->s3->prefix, relativePath);
}

/*
 * SpoolOpen creates the temporary file in the tenant's spool directory.
 */
static void
SpoolOpen(ExportSink *sink, SinkFile *file)
{
	const char *fileName = strrchr(file->relativePath, '/') + 1;

	EnsureExportDirectory(sink->localRoot, file->spoolDirectory);
	file->temporaryPath = psprintf("%s/%s/%s", sink->localRoot, file->spoolDirectory,
								   UniqueTemporaryName(fileName));
	file->file = BatchFileCreate(file->temporaryPath, sink->compression, sink->compressionLevel);
}

/*
 * RenameWithoutReplacing gives a file a new name unless that name is taken,
 * and says whether it did: renameat2(RENAME_NOREPLACE) where the kernel and
 * the file system have it, else link() and unlink() of the old name, which
 * fail the same way on a taken name.
 */
static bool
RenameWithoutReplacing(const char *oldPath, const char *newPath)
{
#ifdef RENAME_NOREPLACE
	if (renameat2(AT_FDCWD, oldPath, AT_FDCWD, newPath, RENAME_NOREPLACE) == 0)
		return true;
	if (errno == EEXIST)
		return false;
	if (errno != EINVAL && errno != ENOSYS)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not rename export file \"%s\" to \"%s\": %m", oldPath, newPath)));
#endif
	if (link(oldPath, newPath) != 0)
	{
		if (errno == EEXIST)
			return false;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not link export file \"%s\" to \"%s\": %m", oldPath, newPath)));
	}
	if (unlink(oldPath) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not remove file \"%s\": %m", oldPath)));
	return true;
}

/* The extended attribute naming the database that placed a local file. */
#define ORIGIN_ATTRIBUTE "user.interactions_cron.origin"
/* A history id's text form: a UUID's, 8-4-4-4-12 hexadecimal digits. */
#define UUID_TEXT_LENGTH 36

/*
 * HistoryIdIsWellFormed says whether text is a history id as
 * CurrentHistoryId returns it: a UUID in lower case.
 */
static bool
HistoryIdIsWellFormed(const char *text)
{
	if (strlen(text) != UUID_TEXT_LENGTH)
		return false;
	for (int i = 0; i < UUID_TEXT_LENGTH; i++)
	{
		bool		dashExpected = i == 8 || i == 13 || i == 18 || i == 23;
		bool		lowerHexDigit = (text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f');

		if (dashExpected ? text[i] != '-' : !lowerHexDigit)
			return false;
	}
	return true;
}

/*
 * ParseOrigin takes apart text that is an origin as SinkSetOrigin gives
 * files: three decimal numbers (a system identifier, a database's and an
 * extension's OIDs) and a history id, separated by slashes; it says whether
 * the text is one.  Every judgement of a file by its origin goes through
 * it, so that an origin of any other form (a file tagged by hand) is never
 * taken for one of this database's or its sources' histories.
 */
bool
ParseOrigin(const char *text, OriginParts *parts)
{
	const char *part = text;
	uint64		numbers[3];

	for (int number = 0; number < 3; number++)
	{
		size_t		digits = strspn(part, "0123456789");
		char	   *end;

		if (digits == 0 || part[digits] != '/' || (digits > 1 && part[0] == '0'))
			return false;
		errno = 0;
		numbers[number] = strtou64(part, &end, 10);
		if (errno != 0 || (number > 0 && numbers[number] > PG_UINT32_MAX))
			return false;
		part += digits + 1;
	}
	if (!HistoryIdIsWellFormed(part))
		return false;
	parts->systemIdentifier = numbers[0];
	parts->databaseOid = (Oid) numbers[1];
	parts->prefix = pnstrdup(text, part - 1 - text);
	parts->historyId = part;
	return true;
}

/*
 * CurrentOriginPrefix returns the prefix of the origin of the files this
 * database places (see SinkSetOrigin), without its final slash: the
 * cluster's system identifier, the database's OID and the extension's.
 * export_histories records it with each history id drawn (see
 * CurrentHistoryId).
 */
char *
CurrentOriginPrefix(void)
{
	return psprintf(UINT64_FORMAT "/%u/%u", GetSystemIdentifier(), MyDatabaseId,
					get_extension_oid("interactions_cron", false));
}

/*
 * SinkSetOrigin gives the sink the origin of the files it places: the
 * cluster's system identifier, the database's OID and the extension's,
 * which make its prefix (CurrentOriginPrefix), then the id of the history
 * it writes (see CurrentHistoryId), drawn under that prefix.  A physical
 * copy of the database (a promoted standby, a restored base backup) has the
 * same prefix, and a history of its own from its first export on.  Another
 * database, even a copy in the same cluster, has another OID, and a
 * reinstalled extension another extension OID: neither takes these files
 * for its own, and each draws a history id of its own.  Without a history
 * id (1.1's objects) files are placed without an origin.  See
 * SinkOriginInLostHistory.
 */
void
SinkSetOrigin(ExportSink *sink, const char *historyId)
{
	if (historyId == NULL)
		return;
	sink->originPrefix = psprintf("%s/", CurrentOriginPrefix());
	sink->origin = psprintf("%s%s", sink->originPrefix, historyId);
	if (sink->s3 != NULL)
		sink->s3->origin = sink->origin;
}

/*
 * TagWithOrigin records the sink's origin on a temporary file before it is
 * placed: the rename keeps it, and the file's fsync makes it durable.  The
 * tag only lets a sweep recognise the file (see SinkOriginInLostHistory),
 * and an untagged file is left to the name checks that cover every file; so
 * a file system that refuses it (no user extended attributes, out of room
 * for them, a FUSE or network mount that does not allow them) leaves the
 * file untagged, and only an I/O error, which its fsync would meet too,
 * fails the tenant.
 */
static void
TagWithOrigin(const ExportSink *sink, const char *temporaryPath)
{
	if (sink->origin != NULL &&
		lsetxattr(temporaryPath, ORIGIN_ATTRIBUTE, sink->origin, strlen(sink->origin), 0) != 0 &&
		errno == EIO)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not record the origin of export file \"%s\": %m", temporaryPath)));
}

/*
 * LocalPlace renames the temporary file, tagged with its origin, to its
 * final name, creating the partition directory first, and returns false,
 * having placed nothing, when a file has that name already: a placed file
 * never replaces another.  Nothing is fsynced yet: LocalSync does that for
 * a whole group of batches at once, after the kernel has had time to write
 * them back, and before any checkpoint moves past their rows.
 */
static bool
LocalPlace(ExportSink *sink, SinkFile *file)
{
	TagWithOrigin(sink, file->temporaryPath);
	EnsureExportDirectory(sink->localRoot, DirectoryOf(file->relativePath));
	return RenameWithoutReplacing(file->temporaryPath,
								  psprintf("%s/%s", sink->localRoot, file->relativePath));
}

/*
 * OnWatchedFileSystem says whether a placed file is on the file system of
 * the export root the sink opened (SinkWatchFileSystem), which a syncfs() of
 * that descriptor covers.  It may not be when export_dir is a symbolic link
 * that was pointed elsewhere, or a mount point that changed, since.
 */
static bool
OnWatchedFileSystem(const ExportSink *sink, const SinkFile *file)
{
	char	   *path = psprintf("%s/%s", sink->localRoot, file->relativePath);
	struct stat status;

	if (lstat(path, &status) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat file \"%s\": %m", path)));
	return status.st_dev == sink->fileSystemDevice;
}

/*
 * LocalSync makes a placed file durable with its name (SyncPlacedFile).
 * After a syncfs() of the whole group (SinkBeginGroupSync) there is nothing
 * left to do for a file on that file system but report its failure.
 */
static void
LocalSync(ExportSink *sink, SinkFile *file)
{
	SyncedPaths *synced = sink->syncedPaths;

	if (synced != NULL && synced->wholeFileSystem && OnWatchedFileSystem(sink, file))
	{
		if (synced->syncfsErrno == 0)
			return;
		errno = synced->syncfsErrno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not sync the file system of export directory \"%s\": %m",
						sink->localRoot),
				 errdetail("\"%s\" may not be durable, nor any file placed with it; the batch is undone and written again by the next call.",
						   file->relativePath)));
	}
	SyncPlacedFile(sink->localRoot, psprintf("%s/%s", sink->localRoot, file->relativePath), synced);
}

/*
 * LocalRemove deletes a placed file, unless its directory is gone already;
 * a symbolic link on the way is refused, not followed.  The removal is made
 * durable (its directory fsynced) before the intent naming the file can be
 * deleted: a file that came back after a power loss would be named by no
 * intent, and its rows would be in two files once the retry wrote its own.
 */
static void
LocalRemove(ExportSink *sink, const char *relativePath)
{
	if (ExportDirectoryExists(sink->localRoot, DirectoryOf(relativePath)))
	{
		RemoveFileIfPresent(psprintf("%s/%s", sink->localRoot, relativePath), ERROR);
		fsync_fname_ext(psprintf("%s/%s", sink->localRoot, DirectoryOf(relativePath)), true, false, ERROR);
	}
}

/*
 * LocalRead returns the content of a file of the lake, as it is stored.
 */
static StringInfo
LocalRead(ExportSink *sink, const char *relativePath)
{
	return LakeFileRead(psprintf("%s/%s", sink->localRoot, relativePath));
}

/*
 * LocalHolds says whether the lake has a file (or anything else) under a
 * relative path.
 */
static bool
LocalHolds(ExportSink *sink, const char *relativePath)
{
	char	   *path = psprintf("%s/%s", sink->localRoot, relativePath);
	struct stat status;

	if (lstat(path, &status) == 0)
		return true;
	if (errno != ENOENT && errno != ENOTDIR)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat file \"%s\": %m", path)));
	return false;
}

/*
 * LocalOrigin returns the origin a file of the lake carries (see
 * TagWithOrigin), or NULL for a file gone meanwhile, untagged (placed by 1.0
 * or 1.1, copied without its attributes, on a file system without them),
 * or whose attributes cannot be read: such a file is only not recognised.
 */
static char *
LocalOrigin(ExportSink *sink, const char *relativePath)
{
	char	   *path = psprintf("%s/%s", sink->localRoot, relativePath);
	char		value[128];
	ssize_t		length = lgetxattr(path, ORIGIN_ATTRIBUTE, value, sizeof(value));

	if (length >= 0)
		return pnstrdup(value, length);
	if (errno == EIO)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read the origin of export file \"%s\": %m", path)));
	return NULL;
}

/*
 * RemoveTemporary deletes a temporary file, local or spooled alike.  It runs
 * on error paths, so a failure is only a warning.
 */
static void
RemoveTemporary(ExportSink *sink, const char *temporaryPath)
{
	RemoveFileIfPresent(temporaryPath, WARNING);
}

/*
 * S3Place uploads the spool file as its object, create-only, and deletes it;
 * false when an object of that key exists already (see S3UploadFile).
 */
static bool
S3Place(ExportSink *sink, SinkFile *file)
{
	if (!S3UploadFile(sink->s3, ObjectKey(sink, file->relativePath), file->temporaryPath,
					  CompressionContentType(sink->compression)))
		return false;
	RemoveFileIfPresent(file->temporaryPath, WARNING);
	return true;
}

/*
 * S3Remove deletes a placed object.
 */
static void
S3Remove(ExportSink *sink, const char *relativePath)
{
	S3DeleteObject(sink->s3, ObjectKey(sink, relativePath));
}

/*
 * S3Read returns the content of an object, as it is stored.
 */
static StringInfo
S3Read(ExportSink *sink, const char *relativePath)
{
	return S3GetObject(sink->s3, ObjectKey(sink, relativePath));
}

/*
 * S3Origin returns the origin an object was uploaded with, or NULL for an
 * object gone meanwhile or uploaded by 1.0 or 1.1.
 */
static char *
S3Origin(ExportSink *sink, const char *relativePath)
{
	return S3ObjectOrigin(sink->s3, ObjectKey(sink, relativePath));
}

/* What S3Holds looks for in a listing of the key's own prefix. */
typedef struct KeySearch
{
	const char *key;
	bool		found;
} KeySearch;

/*
 * FindKey notes whether a listed key is the one searched for: a listing by
 * a key's prefix also names the keys that go on from it.
 */
static void
FindKey(const char *key, void *argument)
{
	KeySearch  *search = argument;

	search->found = search->found || strcmp(key, search->key) == 0;
}

/*
 * S3Holds says whether the bucket has an object of the file's key, with a
 * listing by that key (S3 answers a missing key's HEAD with 403, not 404,
 * to a role without s3:ListBucket, which the sweep needs anyway).
 */
static bool
S3Holds(ExportSink *sink, const char *relativePath)
{
	KeySearch	search = {ObjectKey(sink, relativePath), false};

	S3ListKeys(sink->s3, search.key, FindKey, &search);
	return search.found;
}

/*
 * NothingToSync is the sync of sinks whose place is already durable (an S3
 * upload is acknowledged once stored) or that write nothing.
 */
static void
NothingToSync(ExportSink *sink, SinkFile *file)
{
}

/*
 * DryRunOpen, DryRunPlace, DryRunRemove, DryRunRead and DryRunHolds make a
 * sink that writes nothing: a dry run only names the files (and never
 * sweeps).
 */
static void
DryRunOpen(ExportSink *sink, SinkFile *file)
{
}

static bool
DryRunPlace(ExportSink *sink, SinkFile *file)
{
	return true;
}

static void
DryRunRemove(ExportSink *sink, const char *relativePath)
{
}

static StringInfo
DryRunRead(ExportSink *sink, const char *relativePath)
{
	return makeStringInfo();
}

static bool
DryRunHolds(ExportSink *sink, const char *relativePath)
{
	return false;
}

/*
 * IsHiddenName says whether a file or directory name is one lake readers
 * skip (a temporary file of ours starts with a dot).
 */
static bool
IsHiddenName(const char *name)
{
	return name[0] == '.' || name[0] == '_';
}

/*
 * ListLocalFiles appends to files the relative paths of the regular files
 * below root/relative, hidden ones excepted; a symbolic link is neither
 * followed nor listed.
 */
static List *
ListLocalFiles(const char *root, const char *relative, List *files)
{
	char	   *directoryPath = psprintf("%s/%s", root, relative);
	DIR		   *directory = AllocateDir(directoryPath);
	struct dirent *entry;

	while ((entry = ReadDir(directory, directoryPath)) != NULL)
	{
		char	   *child = psprintf("%s/%s", relative, entry->d_name);
		struct stat status;

		if (IsHiddenName(entry->d_name))
			continue;
		if (lstat(psprintf("%s/%s", root, child), &status) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not stat file \"%s/%s\": %m", root, child)));
		if (S_ISDIR(status.st_mode))
			files = ListLocalFiles(root, child, files);
		else if (S_ISREG(status.st_mode))
			files = lappend(files, child);
		CHECK_FOR_INTERRUPTS();
	}
	FreeDir(directory);
	return files;
}

/*
 * LocalList visits the files below a directory of the lake, if it exists
 * (a symbolic link on the way is refused, not followed).  They are listed
 * first, so that the visitor may remove them.
 */
static void
LocalList(ExportSink *sink, const char *relativeDirectory, SinkFileVisitor visit, void *argument)
{
	ListCell   *cell;

	if (!ExportDirectoryExists(sink->localRoot, relativeDirectory))
		return;
	foreach(cell, ListLocalFiles(sink->localRoot, relativeDirectory, NIL))
		visit(lfirst(cell), argument);
}

/* What S3List hands each key to. */
typedef struct ListedKeyCheck
{
	ExportSink *sink;
	const char *listedPrefix;	/* the key prefix listed: the directory's */
	SinkFileVisitor visit;
	void	   *argument;
} ListedKeyCheck;

/*
 * QuotedKey returns a key as a JSON string, cut to its first 256 bytes, for a
 * message: a store's key may hold any character.
 */
static char *
QuotedKey(const char *key)
{
	StringInfoData quoted;

	initStringInfo(&quoted);
	escape_json(&quoted, pnstrdup(key, pg_mbcliplen(key, strlen(key), 256)));
	return quoted.data;
}

/*
 * VisitListedKey hands a listed key on as a relative path, hidden ones
 * excepted, once it is checked: a store's listing may name any key, and
 * the visitor may delete it.  A key outside the listed directory, or whose
 * path has an empty, "." or ".." segment (which a URL's path normalisation
 * would resolve to another key), is ignored with a warning.
 */
static void
VisitListedKey(const char *key, void *argument)
{
	ListedKeyCheck *check = argument;
	size_t		listedLength = strlen(check->listedPrefix);
	const char *relativePath;
	const char *name;

	if (strncmp(key, check->listedPrefix, listedLength) != 0 ||
		!IsPlainRelativePath(key + listedLength))
	{
		ereport(WARNING,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("interactions_cron: ignored the key %s that the S3 listing of \"%s\" returned",
						QuotedKey(key), check->listedPrefix),
				 errdetail("A listed key must lie under the prefix listed, without an empty, \".\" or \"..\" segment.")));
		return;
	}
	relativePath = key + strlen(check->sink->s3->prefix);
	name = strrchr(relativePath, '/');
	if (!IsHiddenName(name != NULL ? name + 1 : relativePath))
		check->visit(relativePath, check->argument);
}

/*
 * S3List visits the objects below a directory of the lake, as relative
 * paths, hidden ones excepted, a page of the listing at a time.
 */
static void
S3List(ExportSink *sink, const char *relativeDirectory, SinkFileVisitor visit, void *argument)
{
	ListedKeyCheck check = {sink, ObjectKey(sink, psprintf("%s/", relativeDirectory)), visit, argument};

	S3ListKeys(sink->s3, check.listedPrefix, VisitListedKey, &check);
}

/*
 * DryRunList visits nothing: a dry run removes nothing.
 */
static void
DryRunList(ExportSink *sink, const char *relativeDirectory, SinkFileVisitor visit, void *argument)
{
}

static const ExportSinkOps LocalSinkOps = {SpoolOpen, LocalPlace, LocalSync, LocalRemove, RemoveTemporary,
LocalList, LocalRead, LocalHolds, LocalOrigin};
static const ExportSinkOps S3SinkOps = {SpoolOpen, S3Place, NothingToSync, S3Remove, RemoveTemporary,
S3List, S3Read, S3Holds, S3Origin};
static const ExportSinkOps DryRunSinkOps = {DryRunOpen, DryRunPlace, NothingToSync, DryRunRemove,
RemoveTemporary, DryRunList, DryRunRead, DryRunHolds, NULL};

/*
 * SinkFromSettings picks the run's sink from interactions_cron.storage and
 * checks its configuration (an export_dir that others may write to
 * included), before any tenant is touched.
 */
ExportSink *
SinkFromSettings(bool dryRun)
{
	ExportSink *sink = palloc0(sizeof(ExportSink));

	sink->fileSystemDescriptor = -1;
	sink->localRoot = ResolvedExportDirectory();
	sink->compression = CompressionSetting;
	sink->compressionLevel = CompressionLevel(sink->compression, CompressionLevelSetting);
	if (dryRun)
	{
		sink->ops = &DryRunSinkOps;
		sink->storage = "none";
	}
	else if (StorageSetting == STORAGE_S3)
	{
		/* Rows are spooled below export_dir before they are uploaded. */
		(void) RequireSafeExportRoot(sink->localRoot);
		sink->ops = &S3SinkOps;
		sink->storage = "s3";
		sink->s3 = S3TargetFromSettings();
	}
	else
	{
		(void) RequireSafeExportRoot(sink->localRoot);
		sink->ops = &LocalSinkOps;
		sink->storage = "local";
	}
	return sink;
}

/*
 * SinkAtLocation returns a sink for the location an intent recorded, which
 * may differ from today's settings, so that what an interrupted batch placed
 * there can be removed.
 */
ExportSink *
SinkAtLocation(const char *storage, const char *localRoot,
			   const char *s3Endpoint, const char *s3Bucket, const char *s3Prefix)
{
	ExportSink *sink = palloc0(sizeof(ExportSink));

	sink->fileSystemDescriptor = -1;
	sink->localRoot = pstrdup(localRoot);
	sink->storage = pstrdup(storage);
	if (strcmp(storage, "s3") == 0)
	{
		sink->ops = &S3SinkOps;
		sink->s3 = S3TargetAt(s3Endpoint, s3Bucket, s3Prefix);
	}
	else
		sink->ops = &LocalSinkOps;
	return sink;
}

/*
 * SinkFileOrigin returns the origin a file of the lake carries (see
 * SinkSetOrigin), or NULL when it carries none, or when this database
 * places none (1.1's objects) and so has nothing to compare it with.
 */
char *
SinkFileOrigin(ExportSink *sink, const char *relativePath)
{
	if (sink->originPrefix == NULL || sink->ops->origin == NULL)
		return NULL;
	return sink->ops->origin(sink, relativePath);
}

/*
 * SinkOriginInLostHistory says whether a file of that origin (see
 * SinkFileOrigin) was placed by this installation of the extension, in
 * this database or a physical copy of it, in another history: one this
 * database does not have (a failover or a point-in-time restore lost it),
 * whose files nothing here confirmed.  A file of another database or
 * installation was not; neither was one of this history, which a
 * checkpoint may stand behind (a refused or replayed batch).
 */
bool
SinkOriginInLostHistory(const ExportSink *sink, const char *origin)
{
	OriginParts parts;

	return !SinkOriginIsAnotherDatabases(sink, origin) && ParseOrigin(origin, &parts) &&
		strcmp(parts.historyId, sink->origin + strlen(sink->originPrefix)) != 0;
}

/*
 * SinkOriginIsAnotherDatabases says whether a file of that origin (see
 * SinkFileOrigin) was placed by another database or installation, not by
 * this database or a physical copy of it.
 */
bool
SinkOriginIsAnotherDatabases(const ExportSink *sink, const char *origin)
{
	return strncmp(origin, sink->originPrefix, strlen(sink->originPrefix)) != 0;
}

/*
 * SinkLocation describes where the files go, for the run's result.
 */
char *
SinkLocation(const ExportSink *sink)
{
	return sink->s3 != NULL ? S3Location(sink->s3) : pstrdup(sink->localRoot);
}

/*
 * SinkCloseFile finishes writing a file's temporary file.
 */
void
SinkCloseFile(SinkFile *file)
{
	if (file->file != NULL && file->file->fd >= 0)
		BatchFileClose(file->file);
}

/*
 * SinkAbortFiles deletes the temporary files of a batch that will not be
 * placed; those already placed are gone from their temporary names.
 */
void
SinkAbortFiles(ExportSink *sink, List *files)
{
	ListCell   *cell;

	foreach(cell, files)
	{
		SinkFile   *file = lfirst(cell);

		if (file->temporaryPath != NULL)
			sink->ops->abort(sink, file->temporaryPath);
	}
}

/*
 * SinkRemoveSpooled deletes a temporary file an intent names, relative to
 * export_dir, unless its spool directory is gone; a symbolic link on the way
 * is refused, not followed.
 */
void
SinkRemoveSpooled(ExportSink *sink, const char *relativeTemporaryPath)
{
	if (ExportDirectoryExists(sink->localRoot, DirectoryOf(relativeTemporaryPath)))
		sink->ops->abort(sink, psprintf("%s/%s", sink->localRoot, relativeTemporaryPath));
}

/*
 * FileIdentity returns what tells a local file from any other that may take
 * its name: its inode and its modification time (to the nanosecond), which
 * a rename keeps.  Not the device number, which a reboot or a remount may
 * change (disks enumerated in another order, NFS): the path pins the file
 * system.  The time tells a file that got a deleted file's inode number.
 * NULL when nothing is there.
 */
static char *
FileIdentity(const char *path)
{
	struct stat status;

	if (lstat(path, &status) != 0)
	{
		if (errno == ENOENT || errno == ENOTDIR)
			return NULL;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat file \"%s\": %m", path)));
	}
	return psprintf("%llu:%lld.%09ld", (unsigned long long) status.st_ino,
					(long long) status.st_mtim.tv_sec, (long) status.st_mtim.tv_nsec);
}

/*
 * SinkFileIdentity returns the identity of a closed temporary file that the
 * batch will place (see FileIdentity), for its intent; NULL on S3, where an
 * object has no identity its upload keeps.
 */
char *
SinkFileIdentity(const ExportSink *sink, const SinkFile *file)
{
	char	   *identity;

	if (sink->ops != &LocalSinkOps)
		return NULL;
	identity = FileIdentity(file->temporaryPath);
	if (identity == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FILE),
				 errmsg("export file \"%s\" is missing", file->temporaryPath)));
	return identity;
}

/*
 * SinkRequireOwnPlaced fails, having removed nothing, when a file an intent
 * names in the lake with an identity (see SinkFileIdentity) is not the one
 * the batch placed: a batch that never placed that name (it waited, or met
 * another's file there and stopped) must not remove another database's
 * file, and a copy of its own (a lake restored or copied) may hold rows the
 * retry writes under other names.  Only a person can tell which: the intent
 * stays, and so does the file.  A name with nothing there passes.
 */
void
SinkRequireOwnPlaced(const ExportSink *sink, const char *relativePath, const char *identity)
{
	char	   *found;

	if (identity == NULL || sink->ops != &LocalSinkOps)
		return;
	found = FileIdentity(psprintf("%s/%s", sink->localRoot, relativePath));
	if (found != NULL && strcmp(found, identity) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_FILE),
				 errmsg("export file \"%s\" is not the file the tenant's unfinished batch placed there", relativePath),
				 errdetail("The batch recorded its file as %s (inode:modification time), and the file there is %s. "
						   "Nothing was removed, and the tenant is not exported until the file is gone or the tenant is released here.",
						   identity, found),
				 errhint("If it is a copy of the batch's own file (the lake was restored or copied, or the file touched), remove it: the next export writes its rows again. "
						 "If another database placed it, two databases export this tenant: in the one that stops, tenant_state(release => true) forgets the intent; "
						 "in the one that goes on, remove the file once it is sure to hold no row the other exported alone (see \"Moving a tenant to another database\" in doc/operations.md).")));
}

/*
 * SinkRelativeTemporaryPath returns a temporary file's path relative to
 * export_dir, as recorded in an intent.
 */
char *
SinkRelativeTemporaryPath(const ExportSink *sink, const char *temporaryPath)
{
	size_t		rootLength = strlen(sink->localRoot);

	Assert(strncmp(temporaryPath, sink->localRoot, rootLength) == 0);
	return pstrdup(temporaryPath + rootLength + 1);
}

/*
 * SinkSpoolDirectory returns the tenant's spool directory, relative to
 * export_dir.  It is per database as the claims are: two databases sharing
 * one export_dir never empty each other's spool.
 */
char *
SinkSpoolDirectory(const char *escapedTenantId)
{
	return psprintf(".spool/%s/%s",
					HiveEscapePathSegment(get_database_name(MyDatabaseId)), escapedTenantId);
}

/*
 * SyncfsChosen says whether interactions_cron.sync_method has the sink's
 * files made durable by syncfs(): syncfs, or auto where the kernel reports
 * its errors and the export root is not on the data directory's file system,
 * whose other writes a syncfs() would wait for too; either only on a file
 * system whose syncfs() is known to make files durable (FileSystemSyncfsKnown),
 * with a warning when syncfs was asked for.
 */
static bool
SyncfsChosen(const ExportSink *sink)
{
	struct stat root;
	struct stat dataDirectory;
	unsigned long fileSystemType;

	if (LakeSyncMethodSetting == LAKE_SYNC_FSYNC)
		return false;
	if (!FileSystemSyncfsKnown(sink->localRoot, &fileSystemType))
	{
		if (LakeSyncMethodSetting == LAKE_SYNC_SYNCFS && fileSystemType != 0)
			ereport(WARNING,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("interactions_cron.sync_method = syncfs is not used for export directory \"%s\"",
							sink->localRoot),
					 errdetail("Its file system (type 0x%lx) is not one whose syncfs() is known to make every file durable (ext2, ext3, ext4, XFS, btrfs, tmpfs); on FUSE and network file systems it can succeed without writing anything.",
							   fileSystemType),
					 errhint("Its files are fsynced one by one. Set interactions_cron.sync_method to fsync for this export directory.")));
		return false;
	}
	if (LakeSyncMethodSetting == LAKE_SYNC_SYNCFS)
		return true;
	if (!KernelReportsSyncfsErrors())
		return false;
	return stat(sink->localRoot, &root) == 0 && stat(DataDir, &dataDirectory) == 0 &&
		root.st_dev != dataDirectory.st_dev;
}

/*
 * SinkWatchFileSystem opens the export root for the life of the process when
 * files go to local storage and are made durable by syncfs() (SyncfsChosen).
 * syncfs() reports each write-back error of the file system that happened
 * since the descriptor it is given was opened, whoever saw the error first,
 * so the descriptor is opened before any file is written.  Without it (the
 * root not made yet, as on a lake's first call, or no descriptor to spare)
 * the process fsyncs each path, as with fsync.
 */
void
SinkWatchFileSystem(ExportSink *sink)
{
	int			descriptor;
	struct stat status;

	if (sink->ops != &LocalSinkOps || !SyncfsChosen(sink) || !AcquireExternalFD())
		return;
	descriptor = open(sink->localRoot, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (descriptor < 0 || fstat(descriptor, &status) != 0)
	{
		int			openErrno = errno;

		if (descriptor >= 0)
			close(descriptor);
		ReleaseExternalFD();
		if (openErrno == ENOENT)
			return;
		errno = openErrno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open export directory \"%s\": %m", sink->localRoot)));
	}
	sink->fileSystemDescriptor = descriptor;
	sink->fileSystemDevice = status.st_dev;
}

/*
 * SinkBeginGroupSync starts making a group of batches durable once all their
 * files (placedFiles, SinkFile) are placed, until SinkEndGroupSync.  With the
 * export root open (SinkWatchFileSystem), one syncfs() makes every file and
 * directory of the group durable (unless the server runs with fsync off, as
 * fsync_fname_ext() then syncs nothing either), and the syncs that follow
 * only report its failure to each batch whose file is on the root's file
 * system (OnWatchedFileSystem) and fsync any other.  The directories on a
 * file's path are on the file's file system: it was renamed there from the
 * spool under the root, rename() fails across mount points, and the spool
 * and the partition directories share no directory below the root.  Without
 * the root open, every path of the group is fsynced here, many at once
 * (SyncPlacedFilesTogether), and the syncs that follow report each result:
 * a directory made durable once holds the entries of every file placed
 * before, whoever created its own entry in its parent (an interrupted batch
 * may have, and never made it durable).
 */
void
SinkBeginGroupSync(ExportSink *sink, MemoryContext context, List *placedFiles)
{
	MemoryContext callerContext = MemoryContextSwitchTo(context);
	SyncedPaths *synced = SyncedPathsCreate(context);

	if (sink->fileSystemDescriptor >= 0)
	{
		synced->wholeFileSystem = true;
		if (enableFsync && syncfs(sink->fileSystemDescriptor) != 0)
			synced->syncfsErrno = errno;
	}
	else if (sink->ops == &LocalSinkOps)
	{
		List	   *filePaths = NIL;
		ListCell   *cell;

		foreach(cell, placedFiles)
			filePaths = lappend(filePaths, psprintf("%s/%s", sink->localRoot,
													((SinkFile *) lfirst(cell))->relativePath));
		SyncPlacedFilesTogether(filePaths, synced);
	}
	sink->syncedPaths = synced;
	MemoryContextSwitchTo(callerContext);
}

/*
 * SinkEndGroupSync makes the sink's syncs fsync every directory on a file's
 * path again.
 */
void
SinkEndGroupSync(ExportSink *sink)
{
	sink->syncedPaths = NULL;
}

/*
 * SinkPurgeSpool deletes every file left in a tenant's spool directory by a
 * batch that never finished; a symbolic link on the way is refused, not
 * followed, for it would delete another directory's files.  The caller
 * holds the tenant's claim, so no other export is writing there.
 */
void
SinkPurgeSpool(const ExportSink *sink, const char *spoolRelative)
{
	char	   *spoolDirectory = psprintf("%s/%s", sink->localRoot, spoolRelative);
	DIR		   *directory;
	struct dirent *entry;

	if (sink->ops == &DryRunSinkOps || !ExportDirectoryExists(sink->localRoot, spoolRelative))
		return;
	directory = AllocateDir(spoolDirectory);
	while ((entry = ReadDir(directory, spoolDirectory)) != NULL)
	{
		if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
			continue;
		RemoveFileIfPresent(psprintf("%s/%s", spoolDirectory, entry->d_name), ERROR);
	}
	FreeDir(directory);
}
