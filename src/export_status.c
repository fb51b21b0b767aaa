/*
 * export_status.c
 *	  interactions_cron.export_status_rows(), behind the export_status view:
 *	  per active tenant, its checkpoint and the rows waiting after it.
 *
 * The status reads the platform's tables as the jobs do, each as its owner
 * in a security-restricted operation: a view or a function behind the
 * tenants or history table is its owner's code, and a superuser reading the
 * status must not run it with superuser rights (1.0's PL/pgSQL version did).
 * The checkpoints are read as the extension's owner.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "interactions_cron/export_status.h"
#include "interactions_cron/guc.h"
#include "interactions_cron/relations.h"
#include "interactions_cron/spi_plans.h"
#include "interactions_cron/tenants.h"

/* A status row: the tenant's id and name, the checkpoint's columns, the backlog's. */
#define TENANT_COLUMNS 2
#define CHECKPOINT_COLUMNS 8
#define BACKLOG_COLUMNS 3
#define STATUS_COLUMNS (TENANT_COLUMNS + CHECKPOINT_COLUMNS + BACKLOG_COLUMNS)

static SPIPlanPtr checkpointsPlan = NULL;

/*
 * ReadTenantCheckpoints returns, as the extension's owner, one row per
 * tenant (in list order) with the given columns of its checkpoint ("c"; all
 * NULL for a tenant without one), through the plan cached in *cache.
 */
SPITupleTable *
ReadTenantCheckpoints(SPIPlanPtr *cache, const char *columns, List *tenantList)
{
	Oid			argumentTypes[1] = {TEXTARRAYOID};
	Datum		values[1] = {TenantIdArray(tenantList)};

	(void) RunStatementAsOwner(cache,
							   psprintf("SELECT %s"
										" FROM pg_catalog.unnest($1) WITH ORDINALITY AS t(id, n)"
										" LEFT JOIN interactions_cron.export_checkpoints c ON c.tenant_id = t.id"
										" ORDER BY t.n", columns),
							   1, argumentTypes, values, NULL, SPI_OK_SELECT,
							   "read the export checkpoints");
	return SPI_tuptable;
}

/*
 * ReadBacklogs returns, as the history table's owner, one row per tenant (in
 * list order): how many rows wait after its checkpoint, counted up to one
 * more than countLimit, whether that is more than countLimit, and when the
 * oldest was created.  Of the two branches, the one for the tenant's kind of
 * position reads rows, each bounded by the index (see HistoryRowsAfter):
 * with countLimit 0, one index probe a tenant finds its oldest waiting row.
 */
SPITupleTable *
ReadBacklogs(const ConfiguredTable *history, List *tenantList, int64 countLimit)
{
	const MappedColumn *created = &history->columns[HISTORY_CREATED_COLUMN];
	const MappedColumn *id = &history->columns[HISTORY_ID_COLUMN];
	Oid			argumentTypes[4] = {TEXTARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID, INT8OID};
	Datum		values[4] = {TenantIdArray(tenantList), (Datum) 0, (Datum) 0,
	Int64GetDatum(countLimit)};
	SPITupleTable *positions = ReadCheckpointPositions(values[0], &values[1], &values[2]);
	char	   *createdAt = ColumnAsInstant(created, "h");

	RunQueryAsTableOwner(history,
						 psprintf("SELECT w.waiting, w.waiting > $4, w.oldest"
								  " FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
								  "                 pg_catalog.unnest($3)) WITH ORDINALITY"
								  "   AS t(id, after_created_at, after_id, n)"
								  " CROSS JOIN LATERAL ("
								  "   SELECT pg_catalog.count(*) AS waiting,"
								  "          pg_catalog.min(p.created_at) AS oldest"
								  "   FROM ((SELECT %s AS created_at FROM %s h"
								  "          WHERE t.after_id IS NULL AND %s"
								  "          ORDER BY h.%s, h.%s LIMIT $4 + 1)"
								  "         UNION ALL"
								  "         (SELECT %s FROM %s h"
								  "          WHERE t.after_id IS NOT NULL AND %s"
								  "          ORDER BY h.%s, h.%s LIMIT $4 + 1)) p) w"
								  " ORDER BY t.n",
								  createdAt, history->quotedName,
								  HistoryRowsFrom(history, "t.id", "t.after_created_at"),
								  created->quotedName, id->quotedName,
								  createdAt, history->quotedName,
								  HistoryRowsPast(history, "t.id", "t.after_created_at", "t.after_id"),
								  created->quotedName, id->quotedName),
						 4, argumentTypes, values, NULL, 0, "count the rows waiting");
	SPI_freetuptable(positions);
	return SPI_tuptable;
}

/*
 * CopyColumns copies a row's first columnCount columns into values/nulls.
 */
static void
CopyColumns(SPITupleTable *table, uint64 row, int columnCount, Datum *values, bool *nulls)
{
	for (int column = 0; column < columnCount; column++)
		values[column] = SPI_getbinval(table->vals[row], table->tupdesc, column + 1,
									   &nulls[column]);
}

/*
 * PutStatusRows appends one status row per tenant to the result: its id and
 * name, the checkpoint's columns, then the backlog's.
 */
static void
PutStatusRows(ReturnSetInfo *resultInfo, List *tenantList, SPITupleTable *checkpoints,
			  SPITupleTable *backlogs)
{
	Datum		values[STATUS_COLUMNS];
	bool		nulls[STATUS_COLUMNS];
	ListCell   *cell;

	foreach(cell, tenantList)
	{
		TenantToExport *tenant = lfirst(cell);
		uint64		row = foreach_current_index(cell);

		values[0] = CStringGetTextDatum(tenant->id);
		nulls[0] = false;
		values[1] = tenant->name ? CStringGetTextDatum(tenant->name) : (Datum) 0;
		nulls[1] = tenant->name == NULL;
		CopyColumns(checkpoints, row, CHECKPOINT_COLUMNS,
					values + TENANT_COLUMNS, nulls + TENANT_COLUMNS);
		CopyColumns(backlogs, row, BACKLOG_COLUMNS,
					values + TENANT_COLUMNS + CHECKPOINT_COLUMNS,
					nulls + TENANT_COLUMNS + CHECKPOINT_COLUMNS);
		tuplestore_putvalues(resultInfo->setResult, resultInfo->setDesc, values, nulls);
	}
}

/*
 * StartStatusRead begins a set-returning function that reads the export's
 * status (export_status_rows, metrics): it refuses a session whose
 * temporary schema holds objects (owner code runs here), connects to SPI,
 * resolves the tenants and history tables, checking that the caller may
 * read them, and returns the active tenants, in the function's memory.  The
 * caller ends with FinishSpi.
 */
List *
StartStatusRead(FunctionCallInfo fcinfo, ConfiguredTable *history)
{
	MemoryContext callContext = CurrentMemoryContext;
	ConfiguredTable tenants;

	RequireNoTemporaryObjects();
	InitMaterializedSRF(fcinfo, 0);
	ConnectSpi();
	ResolveExportTables(&tenants, history);
	return ReadActiveTenants(&tenants, NULL, callContext);
}

/* PostgreSQL 15's PG_FUNCTION_INFO_V1 exports only the info function. */
PGDLLEXPORT Datum export_status_rows(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(export_status_rows);

/*
 * export_status_rows() returns, per active tenant in id order, its
 * checkpoint, status, attempts, last error and file, last success, and the
 * rows waiting.  The caller must be able to read the platform's tenants and
 * history itself, as for the export.
 */
Datum
export_status_rows(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *resultInfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ConfiguredTable historyTable;
	List	   *tenantList = StartStatusRead(fcinfo, &historyTable);

	if (tenantList != NIL)
	{
		SPITupleTable *checkpoints =
			ReadTenantCheckpoints(&checkpointsPlan,
								  "COALESCE(c.status, 'ok'),"
								  " c.last_created_at, c.last_id, COALESCE(c.attempts, 0),"
								  " c.last_error, c.last_file, c.last_success_at,"
								  " COALESCE(c.rows_exported, 0)",
								  tenantList);

		PutStatusRows(resultInfo, tenantList, checkpoints,
					  ReadBacklogs(&historyTable, tenantList, DefaultBatchSize));
	}
	FinishSpi();
	return (Datum) 0;
}
