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
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "interactions_cron/hive_path.h"
#include "interactions_cron/intent.h"
#include "interactions_cron/spi_plans.h"

static SPIPlanPtr insertPlan = NULL;
static SPIPlanPtr tokenPlan = NULL;
static SPIPlanPtr readPlan = NULL;
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
} ExportIntent;

/*
 * TextArrayList returns the elements of a text[] as C strings.
 */
static List *
TextArrayList(Datum array)
{
	Datum	   *elements;
	bool	   *nulls;
	int			count;
	List	   *strings = NIL;

	deconstruct_array(DatumGetArrayTypeP(array), TEXTOID, -1, false, TYPALIGN_INT,
					  &elements, &nulls, &count);
	for (int i = 0; i < count; i++)
		if (!nulls[i])
			strings = lappend(strings, TextDatumGetCString(elements[i]));
	return strings;
}

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
 * its token.  The caller commits it before placing any file.
 */
char *
IntentRecord(const char *tenantId, const ExportSink *sink, List *sinkFiles, uint64 rowCount)
{
	Oid			argumentTypes[10] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	TEXTARRAYOID, TEXTARRAYOID, INT8OID};
	char	   *token = NewToken();
	List	   *files = NIL;
	List	   *temporaryFiles = NIL;
	ListCell   *cell;
	Datum		values[10] = {0};
	char		nulls[10] = {' ', ' ', ' ', ' ', 'n', 'n', 'n', ' ', ' ', ' '};

	foreach(cell, sinkFiles)
	{
		SinkFile   *file = lfirst(cell);

		files = lappend(files, file->relativePath);
		temporaryFiles = lappend(temporaryFiles,
								 SinkRelativeTemporaryPath(sink, file->temporaryPath));
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

	(void) RunKeyedStatementAsOwner(&insertPlan,
									"INSERT INTO interactions_cron.export_intents"
									" (tenant_id, token, storage, local_root, s3_endpoint, s3_bucket,"
									"  s3_prefix, files, temporary_files, row_count)"
									" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
									10, argumentTypes, values, nulls, SPI_OK_INSERT, "record the export intent");
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
 * IntentRead returns the tenant's outstanding intent, or NULL.
 */
static ExportIntent *
IntentRead(const char *tenantId)
{
	ExportIntent *intent = NULL;
	uint64		found = RunTenantStatementAsOwner(&readPlan,
										   "SELECT storage, local_root, s3_endpoint, s3_bucket, s3_prefix,"
										   " files, temporary_files"
										   " FROM interactions_cron.export_intents WHERE tenant_id = $1",
										   tenantId, SPI_OK_SELECT, "read the export intent");

	if (found == 1)
	{
		bool		isNull;

		intent = palloc0(sizeof(ExportIntent));
		intent->storage = NullableText(1);
		intent->localRoot = NullableText(2);
		intent->s3Endpoint = NullableText(3);
		intent->s3Bucket = NullableText(4);
		intent->s3Prefix = NullableText(5);
		intent->files = TextArrayList(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 6, &isNull));
		intent->temporaryFiles = TextArrayList(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 7, &isNull));
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
}

/*
 * IntentRemoveFiles removes every file the intent names, placed or only
 * temporary, at the location recorded in it.
 */
static int
IntentRemoveFiles(const char *tenantId, const ExportIntent *intent)
{
	ExportSink *sink;
	ListCell   *cell;

	RequireIntentPaths(tenantId, intent);
	sink = SinkAtLocation(intent->storage, intent->localRoot, intent->s3Endpoint,
						  intent->s3Bucket, intent->s3Prefix);
	foreach(cell, intent->files)
		sink->ops->remove(sink, lfirst(cell));
	foreach(cell, intent->temporaryFiles)
		SinkRemoveSpooled(sink, lfirst(cell));
	return list_length(intent->files);
}

/*
 * IntentClear removes the files of the tenant's outstanding intent, if it has
 * one, and deletes the intent; it returns how many lake files it named.  The
 * caller holds the tenant's claim.  If the transaction aborts after the
 * files are gone, the intent stays and the next claim removes them again:
 * removing a missing file succeeds.
 */
int
IntentClear(const char *tenantId)
{
	ExportIntent *intent = IntentRead(tenantId);
	int			removed;

	if (intent == NULL)
		return 0;

	removed = IntentRemoveFiles(tenantId, intent);
	IntentForget(tenantId);
	return removed;
}

/*
 * IntentKeepFiles shortens the tenant's intent to the first placedCount of
 * its lake files, those its batch placed before it met a name taken by
 * another file, which its undo must not remove.
 */
void
IntentKeepFiles(const char *tenantId, int placedCount)
{
	static SPIPlanPtr keepPlan = NULL;
	Oid			argumentTypes[2] = {TEXTOID, INT4OID};
	Datum		values[2] = {CStringGetTextDatum(tenantId), Int32GetDatum(placedCount)};

	(void) RunKeyedStatementAsOwner(&keepPlan,
									"UPDATE interactions_cron.export_intents SET files = files[1:$2]"
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
