/*
 * tenants.c
 *	  Listing the active tenants and checking tenant ids given by callers.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "interactions_cron/intent.h"
#include "interactions_cron/tenants.h"

/*
 * ContainsString says whether a list of C strings holds value.
 */
static bool
ContainsString(List *strings, const char *value)
{
	ListCell   *cell;

	foreach(cell, strings)
		if (strcmp(lfirst(cell), value) == 0)
			return true;
	return false;
}

/*
 * ListActiveTenants returns every active tenant (or only onlyTenantId), in id
 * order, copied into resultContext.  One query tells for all tenants at once
 * whether rows are waiting, so that idle tenants cost an index probe and no
 * further statement or worker.  Tenants with an unfinished batch to undo are
 * marked too: that batch's rows may have been deleted since.
 */
List *
ListActiveTenants(const ConfiguredTable *tenants, const ConfiguredTable *history,
				  TimestampTz watermark, const char *onlyTenantId,
				  MemoryContext resultContext)
{
	char	   *sql = psprintf("SELECT t.id::text, t.name::text, EXISTS ("
							   "  SELECT 1 FROM %s h"
							   "  WHERE h.tenant_id = t.id"
							   "  AND (h.created_at, h.id) >"
							   "      (COALESCE(c.last_created_at, '-infinity'::timestamptz),"
							   "       COALESCE(c.last_id, '-9223372036854775808'::bigint))"
							   "  AND h.created_at < $1)"
							   " FROM %s t"
							   " LEFT JOIN interactions_cron.export_checkpoints c"
							   "   ON c.tenant_id = t.id::text"
							   " WHERE t.status = 'active' AND ($2::text IS NULL OR t.id = $2)"
							   " ORDER BY t.id",
							   history->quotedName, tenants->quotedName);
	Oid			argumentTypes[2] = {TIMESTAMPTZOID, TEXTOID};
	Datum		values[2] = {TimestampTzGetDatum(watermark), (Datum) 0};
	char		nulls[2] = {' ', 'n'};
	List	   *result = NIL;
	List	   *withIntents = TenantsWithIntents();
	int			code;

	if (onlyTenantId != NULL)
	{
		values[1] = CStringGetTextDatum(onlyTenantId);
		nulls[1] = ' ';
	}

	code = SPI_execute_with_args(sql, 2, argumentTypes, values, nulls, false, 0);
	if (code != SPI_OK_SELECT)
		elog(ERROR, "could not list tenants: %s", SPI_result_code_string(code));

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	tupleDesc = SPI_tuptable->tupdesc;
		MemoryContext spiContext = MemoryContextSwitchTo(resultContext);
		TenantToExport *tenant = palloc(sizeof(TenantToExport));
		bool		isNull;

		tenant->id = SPI_getvalue(tuple, tupleDesc, 1);
		tenant->name = SPI_getvalue(tuple, tupleDesc, 2);
		tenant->hasPendingRows = DatumGetBool(SPI_getbinval(tuple, tupleDesc, 3, &isNull)) ||
			ContainsString(withIntents, tenant->id);
		result = lappend(result, tenant);
		MemoryContextSwitchTo(spiContext);
	}
	SPI_freetuptable(SPI_tuptable);

	return result;
}

/*
 * RequireTenant raises a clear error when a tenant id given by the caller is
 * unknown, or (with mustBeActive) not active.
 */
void
RequireTenant(const ConfiguredTable *tenants, const char *tenantId, bool mustBeActive)
{
	char	   *sql = psprintf("SELECT t.status::text FROM %s t WHERE t.id = $1",
							   tenants->quotedName);
	Oid			argumentTypes[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(tenantId)};
	int			code = SPI_execute_with_args(sql, 1, argumentTypes, values, NULL, false, 1);
	char	   *status;

	if (code != SPI_OK_SELECT)
		elog(ERROR, "could not look up tenant: %s", SPI_result_code_string(code));

	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("tenant \"%s\" does not exist", tenantId),
				 errdetail("No row of %s has id \"%s\".", tenants->quotedName, tenantId)));

	status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (mustBeActive && (status == NULL || strcmp(status, "active") != 0))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant \"%s\" is not active", tenantId),
				 errdetail("Its status is \"%s\"; only tenants with status 'active' are exported.",
						   status ? status : "NULL")));
	SPI_freetuptable(SPI_tuptable);
}
