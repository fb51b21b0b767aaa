/*
 * intent.c
 *	  Intent records in interactions_cron.export_intents.
 *
 * A tenant's batch is written to temporary files in one transaction, which
 * also commits an intent naming every file it will place and where (storage,
 * directory or bucket and prefix).  A second transaction places the files,
 * moves the checkpoint and deletes the intent.  Whatever stops a batch in
 * between (an error, a crash, a cancelled call), its intent outlives it, and
 * the next claim of the tenant removes every file the intent names before
 * exporting again.  So no row is ever in two files, whatever changed before
 * the retry: compression, storage, prefix, directory, or the rows themselves.
 * With 1.2's objects an intent also records what each local file is (its
 * identity, see SinkFileIdentity), and an undo that finds a file of another
 * identity at one of its names removes nothing and fails the tenant until a
 * person looks (SinkRequireOwnPlaced): another database's file, placed where
 * the batch had not yet or could not, or a copy of the batch's own.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "interactions_cron/hive_path.h"
#include "interactions_cron/intent.h"
#include "interactions_cron/preconditions.h"
#include "interactions_cron/spi_plans.h"

static SPIPlanPtr insertPlan = NULL;
static SPIPlanPtr insertWithIdentitiesPlan = NULL;
static SPIPlanPtr tokenPlan = NULL;
static SPIPlanPtr readPlan = NULL;
static SPIPlanPtr readWithIdentitiesPlan = NULL;
static SPIPlanPtr deletePlan = NULL;

/* An outstanding intent, as read back. */
typedef struct ExportIntent
{
	char	   *storage;
	char	   *localRoot;
	char	   *s3Endpoint;
	char	   *s3Bucket;
	char	   *s3Prefix;
	List	   *files;			/* relative to the lake's root */
	List	   *temporaryFiles; /* relative to localRoot */
	List	   *fileIdentities; /* one for each of files (NULL ones too), or NIL */
} ExportIntent;

/*
 * NewToken returns a value no other batch has: this process and 64 random
 * bits.
 */
static char *
NewToken(void)
{
	uint64		random;

	if (!pg_strong_random(&random, sizeof(random)))
		elog(ERROR, "could not generate an intent token");
	return psprintf("%d-%016llx", MyProcPid, (unsigned long long) random);
}

/*
 * IntentRecord inserts the tenant's intent for the batch's files and returns
 * its token.  The caller commits it before placing any file.  With 1.2's
 * objects and local files, it records each file's identity too (see
 * SinkFileIdentity).
 */
char *
IntentRecord(const char *tenantId, const ExportSink *sink, List *sinkFiles, uint64 rowCount)
{
	Oid			argumentTypes[11] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	TEXTARRAYOID, TEXTARRAYOID, INT8OID, TEXTARRAYOID};
	char	   *token = NewToken();
	List	   *files = NIL;
	List	   *temporaryFiles = NIL;
	List	   *identities = NIL;
	bool		withIdentities = SqlObjectsAre1_2();
	ListCell   *cell;
	Datum		values[11] = {0};
	char		nulls[11] = {' ', ' ', ' ', ' ', 'n', 'n', 'n', ' ', ' ', ' ', 'n'};

	foreach(cell, sinkFiles)
	{
		SinkFile   *file = lfirst(cell);
		char	   *identity = withIdentities ? SinkFileIdentity(sink, file) : NULL;

		files = lappend(files, file->relativePath);
		temporaryFiles = lappend(temporaryFiles,
								 SinkRelativeTemporaryPath(sink, file->temporaryPath));
		if (identity != NULL)
			identities = lappend(identities, identity);
	}

	values[0] = CStringGetTextDatum(tenantId);
	values[1] = CStringGetTextDatum(token);
	values[2] = CStringGetTextDatum(sink->storage);
	values[3] = CStringGetTextDatum(sink->localRoot);
	if (sink->s3 != NULL)
	{
		values[4] = CStringGetTextDatum(sink->s3->endpoint);
		values[5] = CStringGetTextDatum(sink->s3->bucket);
		values[6] = CStringGetTextDatum(sink->s3->prefix);
		nulls[4] = nulls[5] = nulls[6] = ' ';
	}
	values[7] = TextArrayParameter(files);
	values[8] = TextArrayParameter(temporaryFiles);
	values[9] = Int64GetDatum((int64) rowCount);
	if (identities != NIL)
	{
		values[10] = TextArrayParameter(identities);
		nulls[10] = ' ';
	}

	(void) RunKeyedStatementAsOwner(withIdentities ? &insertWithIdentitiesPlan : &insertPlan,
									withIdentities
									? "INSERT INTO interactions_cron.export_intents"
									" (tenant_id, token, storage, local_root, s3_endpoint, s3_bucket,"
									"  s3_prefix, files, temporary_files, row_count, file_identities)"
									" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
									: "INSERT INTO interactions_cron.export_intents"
									" (tenant_id, token, storage, local_root, s3_endpoint, s3_bucket,"
									"  s3_prefix, files, temporary_files, row_count)"
									" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
									withIdentities ? 11 : 10, argumentTypes, values, nulls, SPI_OK_INSERT,
									"record the export intent");
	return token;
}

/*
 * IntentIsOurs says whether the tenant's outstanding intent is the one with
 * this token: nobody cleared it while the claim was let go between the two
 * transactions of a batch.
 */
bool
IntentIsOurs(const char *tenantId, const char *token)
{
	Oid			argumentTypes[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(tenantId), CStringGetTextDatum(token)};

	return RunKeyedStatementAsOwner(&tokenPlan,
									"SELECT 1 FROM interactions_cron.export_intents"
									" WHERE tenant_id = $1 AND token = $2",
									2, argumentTypes, values, NULL, SPI_OK_SELECT, "read the export intent") == 1;
}

/*
 * NullableText returns column `column` of the current SPI row as a C string,
 * or NULL.
 */
static char *
NullableText(int column)
{
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column);
}

/*
 * IntentRead returns the tenant's outstanding intent, or NULL.  1.1's
 * objects have no identities.
 */
static ExportIntent *
IntentRead(const char *tenantId)
{
	ExportIntent *intent = NULL;
	uint64		found = SqlObjectsAre1_2()
		? RunTenantStatementAsOwner(&readWithIdentitiesPlan,
									"SELECT storage, local_root, s3_endpoint, s3_bucket, s3_prefix,"
									" files, temporary_files, file_identities"
									" FROM interactions_cron.export_intents WHERE tenant_id = $1",
									tenantId, SPI_OK_SELECT, "read the export intent")
		: RunTenantStatementAsOwner(&readPlan,
									"SELECT storage, local_root, s3_endpoint, s3_bucket, s3_prefix,"
									" files, temporary_files, NULL::text[]"
									" FROM interactions_cron.export_intents WHERE tenant_id = $1",
									tenantId, SPI_OK_SELECT, "read the export intent");

	if (found == 1)
	{
		bool		isNull;
		Datum		identities;

		intent = palloc0(sizeof(ExportIntent));
		intent->storage = NullableText(1);
		intent->localRoot = NullableText(2);
		intent->s3Endpoint = NullableText(3);
		intent->s3Bucket = NullableText(4);
		intent->s3Prefix = NullableText(5);
		intent->files = TextArrayList(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 6, &isNull),
									  false);
		intent->temporaryFiles = TextArrayList(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 7, &isNull),
											   false);
		identities = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 8, &isNull);
		if (!isNull)
			intent->fileIdentities = TextArrayList(identities, true);
	}
	SPI_freetuptable(SPI_tuptable);
	return intent;
}

/*
 * RequireIntentPath refuses a recorded path the export could not have
 * written for this tenant: a lake file must lie under the tenant's own
 * directory, a temporary file under the spool, neither through a "." or
 * ".." segment (see IsPlainRelativePath).  Intents are written only by
 * the export, as the extension's owner; this is the second line of defence.
 */
static void
RequireIntentPath(const char *path, const char *requiredPrefix)
{
	if (strncmp(path, requiredPrefix, strlen(requiredPrefix)) != 0 || !IsPlainRelativePath(path))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("export intent names the path \"%s\", which is not under \"%s\"",
						path, requiredPrefix),
				 errhint("Rows of interactions_cron.export_intents are written by the export only.")));
}

/*
 * RequireSpoolPath refuses a recorded temporary file that is not a hidden
 * file directly in this tenant's spool directory, .spool/<database>/<tenant>/
 * (the database part may name the database as it was called then).
 */
static void
RequireSpoolPath(const char *path, const char *escapedTenantId)
{
	const char *name = strrchr(path, '/');
	char	   *tenantDirectory = psprintf("/%s/", escapedTenantId);
	size_t		directoryLength = strlen(tenantDirectory);
	bool		inTenantSpool = name != NULL && name[1] == '.' &&
		(size_t) (name + 1 - path) >= directoryLength &&
		strncmp(name + 1 - directoryLength, tenantDirectory, directoryLength) == 0 &&
		strchr(path + strlen(".spool/"), '/') == name + 1 - directoryLength;

	RequireIntentPath(path, ".spool/");
	if (!inTenantSpool)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("export intent names the temporary file \"%s\", which is not in the spool of tenant directory \"%s\"",
						path, escapedTenantId),
				 errhint("Rows of interactions_cron.export_intents are written by the export only.")));
}

/*
 * RequireIntentPaths refuses an intent naming a path the export could not
 * have written for this tenant (see RequireIntentPath).
 */
static void
RequireIntentPaths(const char *tenantId, const ExportIntent *intent)
{
	char	   *escapedTenantId = HiveEscapePathSegment(tenantId);
	char	   *lakePrefix = psprintf("exports/%s/interaction_history/", escapedTenantId);
	ListCell   *cell;

	if (!is_absolute_path(intent->localRoot))
		RequireIntentPath(intent->localRoot, "/");
	foreach(cell, intent->files)
		RequireIntentPath(lfirst(cell), lakePrefix);
	foreach(cell, intent->temporaryFiles)
		RequireSpoolPath(lfirst(cell), escapedTenantId);
	if (intent->fileIdentities != NIL &&
		list_length(intent->fileIdentities) != list_length(intent->files))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("export intent of tenant \"%s\" names %d files and %d file identities",
						tenantId, list_length(intent->files), list_length(intent->fileIdentities)),
				 errhint("Rows of interactions_cron.export_intents are written by the export only.")));
}

/*
 * IntentRemoveFiles removes every file the intent names, placed or only
 * temporary, at the location recorded in it, once every placed name with a
 * recorded identity is found to hold the batch's own file or nothing (see
 * SinkRequireOwnPlaced): an undo removes all or nothing of the lake.  Before
 * anything is removed, beforeRemoving, if given, is called with the named
 * files found in the lake (the batch's own), if there are any.  The
 * temporary files go last: while one is there, no other file can have its
 * inode.
 */
static int
IntentRemoveFiles(const char *tenantId, const ExportIntent *intent,
				  IntentPlacedFilesStep beforeRemoving, void *argument)
{
	ExportSink *sink;
	ListCell   *cell;
	ListCell   *identityCell;
	List	   *placed = NIL;

	RequireIntentPaths(tenantId, intent);
	sink = SinkAtLocation(intent->storage, intent->localRoot, intent->s3Endpoint,
						  intent->s3Bucket, intent->s3Prefix);
	forboth(cell, intent->files, identityCell, intent->fileIdentities)
		SinkRequireOwnPlaced(sink, lfirst(cell), lfirst(identityCell));
	if (beforeRemoving != NULL)
	{
		foreach(cell, intent->files)
		{
			if (sink->ops->holds(sink, lfirst(cell)))
				placed = lappend(placed, lfirst(cell));
		}
		if (placed != NIL)
			beforeRemoving(placed, argument);
	}
	foreach(cell, intent->files)
		sink->ops->remove(sink, lfirst(cell));
	foreach(cell, intent->temporaryFiles)
		SinkRemoveSpooled(sink, lfirst(cell));
	return list_length(intent->files);
}

/*
 * IntentClear removes the files of the tenant's outstanding intent, if it has
 * one, and deletes the intent; it returns how many lake files it named.
 * beforeRemoving, if given, runs with argument once the files are checked and
 * before any is removed, when some were placed (see IntentRemoveFiles): an
 * error there leaves the intent and its files as they were.  The caller
 * holds the tenant's claim.  If the transaction aborts after the files are
 * gone, the intent stays and the next claim removes them again: removing a
 * missing file succeeds.
 */
int
IntentClear(const char *tenantId, IntentPlacedFilesStep beforeRemoving, void *argument)
{
	ExportIntent *intent = IntentRead(tenantId);
	int			removed;

	if (intent == NULL)
		return 0;

	removed = IntentRemoveFiles(tenantId, intent, beforeRemoving, argument);
	IntentForget(tenantId);
	return removed;
}

/*
 * IntentKeepFiles shortens the tenant's intent to the first placedCount of
 * its lake files (and their identities), those its batch placed before it
 * met a name taken by another file, which its undo must not remove.
 */
void
IntentKeepFiles(const char *tenantId, int placedCount)
{
	static SPIPlanPtr keepPlan = NULL;
	static SPIPlanPtr keepWithIdentitiesPlan = NULL;
	Oid			argumentTypes[2] = {TEXTOID, INT4OID};
	Datum		values[2] = {CStringGetTextDatum(tenantId), Int32GetDatum(placedCount)};
	bool		withIdentities = SqlObjectsAre1_2();

	(void) RunKeyedStatementAsOwner(withIdentities ? &keepWithIdentitiesPlan : &keepPlan,
									withIdentities
									? "UPDATE interactions_cron.export_intents"
									" SET files = files[1:$2], file_identities = file_identities[1:$2]"
									" WHERE tenant_id = $1"
									: "UPDATE interactions_cron.export_intents SET files = files[1:$2]"
									" WHERE tenant_id = $1",
									2, argumentTypes, values, NULL, SPI_OK_UPDATE,
									"shorten the export intent");
}

/*
 * IntentForget deletes the tenant's intent once its files are placed and its
 * checkpoint moved, in the same transaction.
 */
void
IntentForget(const char *tenantId)
{
	(void) RunTenantStatementAsOwner(&deletePlan,
							  "DELETE FROM interactions_cron.export_intents WHERE tenant_id = $1",
							  tenantId, SPI_OK_DELETE, "delete the export intent");
}

/*
 * IntentRequireValid refuses the tenant's outstanding intent, if it names a
 * path the export could not have written for this tenant: an adopted one is
 * checked before it is committed, not only when it is undone.
 */
void
IntentRequireValid(const char *tenantId)
{
	ExportIntent *intent = IntentRead(tenantId);

	if (intent != NULL)
		RequireIntentPaths(tenantId, intent);
}

/*
 * TenantsWithIntents returns the ids of the tenants that have an unfinished
 * batch to undo, in the caller's memory context.
 */
List *
TenantsWithIntents(void)
{
	static SPIPlanPtr listPlan = NULL;

	return TextColumnAsOwner(&listPlan, "SELECT tenant_id FROM interactions_cron.export_intents",
							 0, NULL, NULL, "list export intents");
}
