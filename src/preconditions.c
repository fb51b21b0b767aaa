/*
 * preconditions.c
 *	  What every entry point checks before it touches anything: a server that
 *	  accepts writes, and SQL objects of the version this library serves.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xlog.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "access/genam.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "interactions_cron/pg_compat.h"
#include "interactions_cron/preconditions.h"
#include "interactions_cron/spi_plans.h"
#include "interactions_cron/worker_pool.h"

/*
 * The versions of the SQL objects this library serves: its own, and 1.1.
 * 1.2 brought export_interactions()'s max_runtime (the library reads it only
 * when the function has it), the run totals and the released state of a
 * checkpoint (see SqlObjectsAre1_2); with 1.1's objects the runs are
 * recorded in job_runs only, and a released tenant's checkpoint is deleted
 * as 1.1 did.
 */
#define CURRENT_SQL_VERSION "1.2"
#define OLDEST_SERVED_SQL_VERSION "1.1"

/*
 * InstalledExtension reads interactions_cron's row of pg_extension in this
 * database: its version (NULL when it is not installed, as for a function
 * called from CREATE EXTENSION's own script) and its owner.
 */
static char *
InstalledExtension(Oid *owner)
{
	Relation	extensions = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	char	   *version = NULL;

	*owner = InvalidOid;
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("interactions_cron"));
	scan = systable_beginscan(extensions, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		bool		isNull;
		Datum		value = heap_getattr(tuple, Anum_pg_extension_extversion,
										 RelationGetDescr(extensions), &isNull);

		if (!isNull)
			version = TextDatumGetCString(value);
		*owner = ((Form_pg_extension) GETSTRUCT(tuple))->extowner;
	}
	systable_endscan(scan);
	table_close(extensions, AccessShareLock);
	return version;
}

/*
 * VersionIs1_2 says whether an installed version (NULL: none) is 1.2's.
 */
static bool
VersionIs1_2(const char *version)
{
	return version != NULL && strcmp(version, CURRENT_SQL_VERSION) == 0;
}

/* interactions_cron's row of pg_extension, as ExtensionInTransaction read it. */
typedef struct InstalledExtensionRow
{
	LocalTransactionId readIn;	/* the transaction it was read in */
	Oid			owner;			/* InvalidOid when not installed */
	bool		objectsAre1_2;	/* see SqlObjectsAre1_2 */
} InstalledExtensionRow;

/*
 * ExtensionInTransaction returns interactions_cron's row of pg_extension,
 * read once per transaction: a tenant's batch asks for its owner and its
 * version before most of its statements, and reading the catalog each time
 * was a fortieth of a worker's time with many small tenants.  What a
 * transaction read first holds to its end: see SqlObjectsAre1_2 for the
 * version.
 */
static const InstalledExtensionRow *
ExtensionInTransaction(void)
{
	static InstalledExtensionRow row = {InvalidLocalTransactionId, InvalidOid, false};

	if (row.readIn != ProcLocalTransactionId(MyProc) || !OidIsValid(row.owner))
	{
		char	   *version = InstalledExtension(&row.owner);

		row.objectsAre1_2 = VersionIs1_2(version);
		row.readIn = ProcLocalTransactionId(MyProc);
	}
	return &row;
}

/*
 * ExtensionOwnerId returns the role that owns the extension and its tables.
 */
Oid
ExtensionOwnerId(void)
{
	Oid			owner = ExtensionInTransaction()->owner;

	if (!OidIsValid(owner))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"interactions_cron\" is not installed in this database")));
	return owner;
}

/*
 * RequireUsableDatabase refuses to run inside a security-restricted
 * operation, where a table owner's code (a trigger, a view) runs on behalf
 * of another role's job and a job it started would be recorded as that
 * role's; refuses a session with temporary objects, which table owners'
 * code would find (see RequireNoTemporaryObjects); refuses to run during
 * recovery (a hot standby), where nothing can be recorded, before anything
 * is written; and refuses SQL objects older
 * than this library (after an upgrade of the package, before ALTER
 * EXTENSION ... UPDATE), whose tables the jobs would miss.
 */
void
RequireUsableDatabase(void)
{
	char	   *version;
	Oid			owner;

	if (InSecurityRestrictedOperation())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("interactions_cron jobs cannot start inside a security-restricted operation"),
				 errdetail("Code that runs as a table's owner on behalf of another role's job "
						   "(a trigger, a view, a policy) must not start jobs recorded as that role's."),
				 errhint("Call the job directly, from a session of the role that should be recorded.")));

	RequireNoTemporaryObjects();

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("interactions_cron jobs cannot run during recovery"),
				 errdetail("This server is a standby: checkpoints and run history cannot be written."),
				 errhint("Run the jobs on the primary.")));

	version = InstalledExtension(&owner);
	if (version != NULL && strcmp(version, CURRENT_SQL_VERSION) != 0 &&
		strcmp(version, OLDEST_SERVED_SQL_VERSION) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("interactions_cron's SQL objects are version %s, but its library needs %s or %s",
						version, OLDEST_SERVED_SQL_VERSION, CURRENT_SQL_VERSION),
				 errdetail("Nothing was exported or deleted, and no checkpoint changed."),
				 errhint("Run ALTER EXTENSION interactions_cron UPDATE in this database.")));
}

/*
 * RequireUtf8Database refuses a database whose encoding is not UTF-8, once,
 * at the start: NDJSON files and the lake's paths must be UTF-8, and json
 * values and tenant ids are copied out byte for byte.
 */
void
RequireUtf8Database(void)
{
	if (GetDatabaseEncoding() != PG_UTF8)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("export_interactions() needs a UTF8 database, and this one is %s",
						GetDatabaseEncodingName()),
				 errdetail("Exported files and their paths are UTF-8."),
				 errhint("Export from a database created with ENCODING 'UTF8'.")));
}

/*
 * SqlObjectsAre1_2 says whether the installed SQL objects are 1.2's: they
 * have the run totals (job_run_totals, cleanup_totals), the released state
 * of a checkpoint, where 1.1's allow only ok and failed, the intents'
 * file_identities, and the histories' ids (export_histories).  A worker of
 * this library, whose transactions change no SQL object, reads it once per
 * transaction (ExtensionInTransaction); any other backend at every call,
 * since an ALTER EXTENSION ... UPDATE, or its rollback to a savepoint, may
 * come between two calls in one transaction.
 */
bool
SqlObjectsAre1_2(void)
{
	Oid			owner;

	if (InDynamicWorkerOfThisLibrary())
		return ExtensionInTransaction()->objectsAre1_2;
	return VersionIs1_2(InstalledExtension(&owner));
}
