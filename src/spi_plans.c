/*
 * spi_plans.c
 *	  Saved SPI plans of the extension's own fixed statements.
 *
 * The statements on the extension's tables never change, so each is prepared
 * once per backend and kept (SPI_keepplan); the plan cache replans them if a
 * table is altered.  Every call checks SPI's result code.  They run as the
 * extension's owner, and statements on the platform's tables as those
 * tables' owners, each in a security-restricted operation (RunAsRole).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"

#include "miscadmin.h"

#include "interactions_cron/preconditions.h"
#include "interactions_cron/spi_plans.h"

/*
 * PrepareAndKeep returns the saved plan for sql, preparing it on first use
 * with the given cursor options.  Like every SPI call, preparing leaves
 * SPI's procedure context current: callers that allocate afterwards save
 * and restore their own.
 */
static SPIPlanPtr
PrepareAndKeep(SPIPlanPtr *cache, const char *sql, int argumentCount, Oid *argumentTypes,
			   int cursorOptions)
{
	if (*cache == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(sql, argumentCount, argumentTypes, cursorOptions);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s",
				 sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*cache = plan;
	}
	return *cache;
}

/*
 * PreparedPlan returns the saved plan for sql, preparing it on first use.
 * The plan is replanned at every execution (a custom plan): a worker keeps
 * its plans for a whole run, over which the tables can grow from empty to
 * many thousand rows, and a generic plan made while they were empty would
 * scan them whole for every tenant.
 */
SPIPlanPtr
PreparedPlan(SPIPlanPtr *cache, const char *sql, int argumentCount,
			 Oid *argumentTypes)
{
	return PrepareAndKeep(cache, sql, argumentCount, argumentTypes, CURSOR_OPT_CUSTOM_PLAN);
}

/*
 * PreparedStatementPlan returns the saved plan for sql, preparing it on
 * first use, planned as PostgreSQL plans any prepared statement: a few custom
 * plans, then the generic one when it costs no more, unless plan_cache_mode
 * says otherwise.  For statements on platform tables whose generic plan is
 * as bounded by their keys as a custom one, however the tables grow over a
 * run (see PreparedPlan): a look-up by key, or the batch query with sorts
 * disabled (see ExecuteBatchQuery in tenant_export.c).  Planning every
 * execution was a tenth of a worker's time with many small tenants
 * (doc/development.md, "Benchmark").
 */
SPIPlanPtr
PreparedStatementPlan(SPIPlanPtr *cache, const char *sql, int argumentCount,
					  Oid *argumentTypes)
{
	return PrepareAndKeep(cache, sql, argumentCount, argumentTypes, 0);
}

/*
 * PreparedKeyedPlan returns the saved plan of a statement that reaches the
 * extension's rows by their primary key only: one generic plan, made once
 * and kept, with sequential scans disabled while it is made and run
 * (RunKeyedStatementAsOwner), so that it is the key's index scan whatever
 * the table's size when it was made.  Planning every execution cost the
 * export about a sixth of a worker's time with many small tenants
 * (doc/development.md, "Benchmark").
 */
static SPIPlanPtr
PreparedKeyedPlan(SPIPlanPtr *cache, const char *sql, int argumentCount, Oid *argumentTypes)
{
	(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return PrepareAndKeep(cache, sql, argumentCount, argumentTypes, CURSOR_OPT_GENERIC_PLAN);
}

/*
 * RunStatement runs the saved statement for sql (prepared on first use; not
 * read-only, so each execution sees what committed before it), raises an
 * error naming what it was for when the result code is not the expected one,
 * and returns SPI_processed with the caller's memory context current again.
 * A SELECT's rows stay in SPI_tuptable.
 */
static uint64
RunStatement(SPIPlanPtr *cache, const char *sql, int argumentCount, Oid *argumentTypes,
			 Datum *values, const char *nulls, int expectedCode, const char *what, bool keyed)
{
	MemoryContext callerContext = CurrentMemoryContext;
	SPIPlanPtr	plan = keyed ? PreparedKeyedPlan(cache, sql, argumentCount, argumentTypes)
		: PreparedPlan(cache, sql, argumentCount, argumentTypes);
	int			code = SPI_execute_plan(plan, values, nulls, false, 0);

	MemoryContextSwitchTo(callerContext);
	if (code != expectedCode)
		elog(ERROR, "could not %s: %s", what, SPI_result_code_string(code));
	return SPI_processed;
}

/*
 * ConnectSpi and FinishSpi are SPI_connect and SPI_finish with their result
 * codes checked.
 */
void
ConnectSpi(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

void
FinishSpi(void)
{
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
}

/*
 * TemporarySchemaHoldsObjects says whether this session's temporary schema
 * exists and holds anything.  Every object made there depends on the schema
 * in pg_depend (that is how the session's temporary objects are dropped at
 * its end), so one index probe answers for tables, views, types, functions
 * and operators alike.
 */
static bool
TemporarySchemaHoldsObjects(void)
{
	Oid			temporarySchema;
	Oid			temporaryToastSchema;
	Relation	depend;
	ScanKeyData keys[2];
	SysScanDesc scan;
	bool		holdsObjects;

	GetTempNamespaceState(&temporarySchema, &temporaryToastSchema);
	if (!OidIsValid(temporarySchema))
		return false;
	depend = table_open(DependRelationId, AccessShareLock);
	ScanKeyInit(&keys[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(NamespaceRelationId));
	ScanKeyInit(&keys[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(temporarySchema));
	scan = systable_beginscan(depend, DependReferenceIndexId, true, NULL, 2, keys);
	holdsObjects = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	table_close(depend, AccessShareLock);
	return holdsObjects;
}

/*
 * RequireNoTemporaryObjects refuses to run another role's code in a session
 * whose temporary schema holds objects.  A session's temporary schema is
 * searched before any other for tables, views and types, even by a function
 * that sets its own search_path, so a caller's temporary table would stand
 * in for the table an owner's trigger or view names, and the caller's
 * trigger on it would run with the owner's rights.  PostgreSQL has no way to
 * hide that schema from the owner's code, so the jobs do not run it there:
 * pg_cron and the HTTP shim's sessions have none, and a session that made
 * some drops them with DISCARD TEMP.  The jobs check it when they start, for
 * an error of its own, and RunAsRole each time.
 */
void
RequireNoTemporaryObjects(void)
{
	if (TemporarySchemaHoldsObjects())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("interactions_cron jobs cannot run in a session that has temporary objects"),
				 errdetail("The jobs run table owners' code (triggers, views, functions), which would find "
						   "this session's temporary tables, views and types before the owners' own."),
				 errhint("Run DISCARD TEMP first, or call the job from a session without temporary objects.")));
}

/*
 * RequireNoTemporaryObjectsLeft refuses what a role's code left in the
 * session's temporary schema (a security-restricted operation may not create
 * temporary tables, but may add types or functions to a schema that exists):
 * the error undoes them, before the next owner's code or the caller could
 * find them.
 */
static void
RequireNoTemporaryObjectsLeft(Oid roleId)
{
	if (TemporarySchemaHoldsObjects())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("code run as role \"%s\" by interactions_cron created temporary objects",
						GetUserNameFromId(roleId, false)),
				 errdetail("Another role's code, or the caller, would find them before its own."),
				 errhint("Remove the creation of temporary objects from the table's triggers, views or functions.")));
}

/*
 * RunAsRole calls body(argument) as roleId inside a security-restricted
 * operation, as VACUUM, REINDEX and REFRESH MATERIALIZED VIEW run as a
 * table's owner: whatever code the statement reaches (a trigger, a view, a
 * function in a policy, an index expression) runs with that role's rights,
 * never the caller's, and cannot SET ROLE, leave settings behind, or find or
 * leave temporary objects (see RequireNoTemporaryObjects).  Settings it
 * changes are rolled back when it returns, so a changed search_path cannot
 * redirect the statements that follow.  On an error the caller's identity is
 * restored here and its settings by the (sub)transaction's abort.
 */
void
RunAsRole(Oid roleId, RoleBody body, void *argument)
{
	Oid			callerUserId;
	int			callerSecurityContext;
	int			nestLevel;

	RequireNoTemporaryObjects();
	GetUserIdAndSecContext(&callerUserId, &callerSecurityContext);
	SetUserIdAndSecContext(roleId,
						   callerSecurityContext | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	nestLevel = NewGUCNestLevel();
	PG_TRY();
	{
		body(argument);
		RequireNoTemporaryObjectsLeft(roleId);
		AtEOXact_GUC(false, nestLevel);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(callerUserId, callerSecurityContext);
	}
	PG_END_TRY();
}

/* A RunStatement call, as RunAsRole hands it over. */
typedef struct StatementCall
{
	SPIPlanPtr *cache;
	const char *sql;
	int			argumentCount;
	Oid		   *argumentTypes;
	Datum	   *values;
	const char *nulls;
	int			expectedCode;
	const char *what;
	bool		keyed;			/* by the primary key only: see PreparedKeyedPlan */
	uint64		processed;
} StatementCall;

/*
 * RunStatementCall is the body RunStatementAsRole runs as the role.
 */
static void
RunStatementCall(void *argument)
{
	StatementCall *call = argument;

	call->processed = RunStatement(call->cache, call->sql, call->argumentCount,
								   call->argumentTypes, call->values, call->nulls,
								   call->expectedCode, call->what, call->keyed);
}

/*
 * RunStatementAsRole is RunStatement executed as roleId, in a
 * security-restricted operation (see RunAsRole).
 */
static uint64
RunStatementAsRole(Oid roleId, SPIPlanPtr *cache, const char *sql, int argumentCount,
				   Oid *argumentTypes, Datum *values, const char *nulls,
				   int expectedCode, const char *what, bool keyed)
{
	StatementCall call = {cache, sql, argumentCount, argumentTypes, values, nulls,
	expectedCode, what, keyed, 0};

	RunAsRole(roleId, RunStatementCall, &call);
	return call.processed;
}

/*
 * RunStatementAsOwner is RunStatement executed as the extension's owner.
 * The extension's tables (checkpoints, run history, intents, job claims)
 * need no write grant to callers: the functions write them this way, so no
 * caller can forge what the export later acts on or what the history says.
 */
uint64
RunStatementAsOwner(SPIPlanPtr *cache, const char *sql, int argumentCount, Oid *argumentTypes,
					Datum *values, const char *nulls, int expectedCode, const char *what)
{
	return RunStatementAsRole(ExtensionOwnerId(), cache, sql, argumentCount, argumentTypes,
							  values, nulls, expectedCode, what, false);
}

/*
 * RunKeyedStatementAsOwner is RunStatementAsOwner for a statement that
 * reaches the extension's rows by their primary key only (see
 * PreparedKeyedPlan): the statements every tenant's batch runs.
 */
uint64
RunKeyedStatementAsOwner(SPIPlanPtr *cache, const char *sql, int argumentCount,
						 Oid *argumentTypes, Datum *values, const char *nulls, int expectedCode,
						 const char *what)
{
	return RunStatementAsRole(ExtensionOwnerId(), cache, sql, argumentCount, argumentTypes,
							  values, nulls, expectedCode, what, true);
}

/* A statement on a platform table, as RunAsRole hands it over. */
typedef struct TableQuery
{
	SPIPlanPtr	plan;			/* or NULL, and sql */
	const char *sql;
	int			argumentCount;
	Oid		   *argumentTypes;
	Datum	   *values;
	const char *nulls;
	long		rowLimit;
	const char *what;
} TableQuery;

/*
 * RunTableQuery is the body RunQueryAsTableOwner runs as the table's owner.
 */
static void
RunTableQuery(void *argument)
{
	TableQuery *query = argument;
	int			code = query->plan != NULL
		? SPI_execute_plan(query->plan, query->values, query->nulls, false, query->rowLimit)
		: SPI_execute_with_args(query->sql, query->argumentCount, query->argumentTypes,
								query->values, query->nulls, false, query->rowLimit);

	if (code != SPI_OK_SELECT)
		elog(ERROR, "could not %s: %s", query->what, SPI_result_code_string(code));
}

/*
 * RunQueryAsTableOwner runs a query on a platform table, given as text (the
 * table's name comes from a setting, so a backend keeps no plan of it; a
 * worker may: see RunPlanAsTableOwner), as that table's owner in a
 * security-restricted operation (see RunAsRole): a view, a policy or a
 * function behind the table is its owner's code and never runs with the
 * caller's rights.  Its rows stay in SPI_tuptable.
 */
void
RunQueryAsTableOwner(const ConfiguredTable *table, const char *sql, int argumentCount,
					 Oid *argumentTypes, Datum *values, const char *nulls, long rowLimit,
					 const char *what)
{
	TableQuery	query = {NULL, sql, argumentCount, argumentTypes, values, nulls, rowLimit, what};

	RunAsRole(table->owner, RunTableQuery, &query);
}

/*
 * RunPlanAsTableOwner is RunQueryAsTableOwner for a query whose plan a
 * worker keeps (see PrepareTenantActivityPlan).
 */
void
RunPlanAsTableOwner(const ConfiguredTable *table, SPIPlanPtr plan, Datum *values,
					const char *nulls, long rowLimit, const char *what)
{
	TableQuery	query = {plan, NULL, 0, NULL, values, nulls, rowLimit, what};

	RunAsRole(table->owner, RunTableQuery, &query);
}

/*
 * RunTenantStatementAsOwner runs, as the extension's owner, a statement
 * whose only parameter is the tenant id ($1, text), the primary key of the
 * extension's tables it reaches (see RunKeyedStatementAsOwner).
 */
uint64
RunTenantStatementAsOwner(SPIPlanPtr *cache, const char *sql, const char *tenantId,
						  int expectedCode, const char *what)
{
	Oid			argumentTypes[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(tenantId)};

	return RunKeyedStatementAsOwner(cache, sql, 1, argumentTypes, values, NULL, expectedCode, what);
}

/*
 * TextColumnAsOwner runs a statement as the extension's owner (see
 * RunStatementAsOwner) and returns its first column's values as C strings,
 * in the caller's memory context.
 */
List *
TextColumnAsOwner(SPIPlanPtr *cache, const char *sql, int argumentCount, Oid *argumentTypes,
				  Datum *values, const char *what)
{
	MemoryContext callerContext = CurrentMemoryContext;
	uint64		count = RunStatementAsOwner(cache, sql, argumentCount, argumentTypes, values, NULL,
											SPI_OK_SELECT, what);
	List	   *texts = NIL;

	for (uint64 i = 0; i < count; i++)
		texts = lappend(texts, MemoryContextStrdup(callerContext,
												   SPI_getvalue(SPI_tuptable->vals[i],
																SPI_tuptable->tupdesc, 1)));
	SPI_freetuptable(SPI_tuptable);
	return texts;
}

/*
 * TextArrayList returns the elements of a text[] as C strings; a NULL
 * element is left out, or with keepNulls kept as NULL, in its place.
 */
List *
TextArrayList(Datum array, bool keepNulls)
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
		else if (keepNulls)
			strings = lappend(strings, NULL);
	return strings;
}

/*
 * TextArrayParameter builds a text[] parameter from a list of C strings.
 */
Datum
TextArrayParameter(List *strings)
{
	Datum	   *elements = palloc(sizeof(Datum) * Max(list_length(strings), 1));
	ListCell   *cell;

	foreach(cell, strings)
		elements[foreach_current_index(cell)] = CStringGetTextDatum(lfirst(cell));
	return PointerGetDatum(construct_array(elements, list_length(strings), TEXTOID, -1, false,
										   TYPALIGN_INT));
}
