/*
 * tenants.c
 *	  Listing the active tenants and checking tenant ids given by callers.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "interactions_cron/intent.h"
#include "interactions_cron/spi_plans.h"
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
 * ReadActiveTenants returns every active tenant (or only onlyTenantId), in id
 * order, copied into resultContext.  The query runs as the tenants table's
 * owner (see RunQueryAsTableOwner): a view or a function behind the table is
 * its code.
 */
List *
ReadActiveTenants(const ConfiguredTable *tenants, const char *onlyTenantId,
				  MemoryContext resultContext)
{
	Oid			argumentTypes[1] = {TEXTOID};
	Datum		values[1] = {onlyTenantId ? CStringGetTextDatum(onlyTenantId) : (Datum) 0};
	char		nulls[1] = {onlyTenantId ? ' ' : 'n'};
	List	   *result = NIL;

	RunQueryAsTableOwner(tenants,
						 psprintf("SELECT t.id::text, t.name::text FROM %s t"
								  " WHERE t.status = 'active' AND ($1::text IS NULL OR t.id = $1)"
								  " ORDER BY t.id", tenants->quotedName),
						 1, argumentTypes, values, nulls, 0, "list tenants");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	tupleDesc = SPI_tuptable->tupdesc;
		MemoryContext spiContext = MemoryContextSwitchTo(resultContext);
		TenantToExport *tenant = palloc0(sizeof(TenantToExport));

		tenant->id = SPI_getvalue(tuple, tupleDesc, 1);
		tenant->name = SPI_getvalue(tuple, tupleDesc, 2);
		result = lappend(result, tenant);
		MemoryContextSwitchTo(spiContext);
	}
	SPI_freetuptable(SPI_tuptable);
	return result;
}

/*
 * TenantIdArray returns the tenants' ids as a text[] datum, in list order.
 */
Datum
TenantIdArray(List *tenantList)
{
	Datum	   *ids = palloc(sizeof(Datum) * list_length(tenantList));
	ListCell   *cell;

	foreach(cell, tenantList)
		ids[foreach_current_index(cell)] =
			CStringGetTextDatum(((TenantToExport *) lfirst(cell))->id);
	return PointerGetDatum(construct_array(ids, list_length(tenantList), TEXTOID,
										   -1, false, TYPALIGN_INT));
}

/*
 * MarkPendingTenants sets hasPendingRows on the tenants with rows after
 * their checkpoint and before the watermark, with one query for all of
 * them, so that idle tenants cost an index probe and no further statement
 * or worker.  The checkpoints are read as the extension's owner, the history
 * as its table's owner (see RunQueryAsTableOwner); tenants with an unfinished batch to
 * undo are marked too, since that batch's rows may have been deleted since.
 */
static void
MarkPendingTenants(List *tenantList, const ConfiguredTable *history, TimestampTz watermark)
{
	static SPIPlanPtr positionsPlan = NULL;
	Oid			positionTypes[1] = {TEXTARRAYOID};
	Datum		ids = TenantIdArray(tenantList);
	Oid			pendingTypes[4] = {TIMESTAMPTZOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID, INT8ARRAYOID};
	Datum		pendingValues[4] = {TimestampTzGetDatum(watermark), ids, (Datum) 0, (Datum) 0};
	List	   *withIntents = TenantsWithIntents();
	SPITupleTable *positions;
	ListCell   *cell;
	bool		isNull;

	(void) RunStatementAsOwner(&positionsPlan,
							   "SELECT pg_catalog.array_agg(COALESCE(c.last_created_at, '-infinity')"
							   "                            ORDER BY t.n),"
							   "       pg_catalog.array_agg(COALESCE(c.last_id, '-9223372036854775808')"
							   "                            ORDER BY t.n)"
							   " FROM pg_catalog.unnest($1) WITH ORDINALITY AS t(id, n)"
							   " LEFT JOIN interactions_cron.export_checkpoints c ON c.tenant_id = t.id",
							   1, positionTypes, &ids, NULL, SPI_OK_SELECT,
							   "read the export checkpoints");
	positions = SPI_tuptable;
	pendingValues[2] = SPI_getbinval(positions->vals[0], positions->tupdesc, 1, &isNull);
	pendingValues[3] = SPI_getbinval(positions->vals[0], positions->tupdesc, 2, &isNull);

	RunQueryAsTableOwner(history,
						 psprintf("SELECT EXISTS (SELECT 1 FROM %s h"
								  "  WHERE h.tenant_id = t.id"
								  "  AND (h.created_at, h.id) > (t.after_created_at, t.after_id)"
								  "  AND h.created_at < $1)"
								  " FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3),"
								  "                 pg_catalog.unnest($4)) WITH ORDINALITY"
								  "   AS t(id, after_created_at, after_id, n)"
								  " ORDER BY t.n", history->quotedName),
						 4, pendingTypes, pendingValues, NULL, 0, "find tenants with rows waiting");
	foreach(cell, tenantList)
	{
		TenantToExport *tenant = lfirst(cell);

		tenant->hasPendingRows =
			DatumGetBool(SPI_getbinval(SPI_tuptable->vals[foreach_current_index(cell)],
									   SPI_tuptable->tupdesc, 1, &isNull)) ||
			ContainsString(withIntents, tenant->id);
	}
	SPI_freetuptable(SPI_tuptable);
	SPI_freetuptable(positions);
}

/*
 * ListActiveTenants returns every active tenant (or only onlyTenantId), in id
 * order, copied into resultContext, each marked when it has work waiting.
 */
List *
ListActiveTenants(const ConfiguredTable *tenants, const ConfiguredTable *history,
				  TimestampTz watermark, const char *onlyTenantId,
				  MemoryContext resultContext)
{
	List	   *tenantList = ReadActiveTenants(tenants, onlyTenantId, resultContext);

	if (tenantList != NIL)
		MarkPendingTenants(tenantList, history, watermark);
	return tenantList;
}

/*
 * RequireTenant raises a clear error when a tenant id given by the caller is
 * unknown, or (with mustBeActive) not active.  The lookup runs as the tenants
 * table's owner (see RunQueryAsTableOwner).
 */
void
RequireTenant(const ConfiguredTable *tenants, const char *tenantId, bool mustBeActive)
{
	Oid			argumentTypes[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(tenantId)};
	char	   *status;

	RunQueryAsTableOwner(tenants,
						 psprintf("SELECT t.status::text FROM %s t WHERE t.id = $1",
								  tenants->quotedName),
						 1, argumentTypes, values, NULL, 1, "look up tenant");
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
