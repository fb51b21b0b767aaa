/*
 * checkpoint.c
 *	  Reading, advancing and resetting tenants' export checkpoints.
 *
 * A checkpoint only moves in the transaction that wrote the tenant's files,
 * and only while that transaction holds the tenant's advisory lock, so two
 * exports can never both start from the same position.  The lock is an
 * advisory lock (class TENANT_LOCK_CLASS, key hashtext(tenant_id)) rather than
 * a row lock so that a tenant whose checkpoint row does not exist yet can be
 * locked too, and so that a busy tenant is skipped instead of waited on.
 */
#include "postgres.h"

#include "access/hash.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "interactions_cron/checkpoint.h"
#include "interactions_cron/locks.h"
#include "interactions_cron/relations.h"
#include "interactions_cron/tenants.h"

/* Before every row: created_at -infinity, smallest bigint. */
const CheckpointPosition CheckpointStart = {DT_NOBEGIN, PG_INT64_MIN};

static SPIPlanPtr readPlan = NULL;
static SPIPlanPtr successPlan = NULL;
static SPIPlanPtr failurePlan = NULL;
static SPIPlanPtr resetPlan = NULL;

/*
 * PreparedPlan returns the saved plan for sql, preparing it on first use.
 * Like every SPI call, preparing leaves SPI's procedure context current:
 * callers that allocate afterwards save and restore their own.
 */
static SPIPlanPtr
PreparedPlan(SPIPlanPtr *cache, const char *sql, int argumentCount,
			 Oid *argumentTypes)
{
	if (*cache == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(sql, argumentCount, argumentTypes);

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
 * ExecuteChange runs a saved INSERT/UPDATE plan and checks its result code.
 */
static void
ExecuteChange(SPIPlanPtr plan, Datum *values, const char *nulls)
{
	int			result = SPI_execute_plan(plan, values, nulls, false, 0);

	if (result != SPI_OK_INSERT && result != SPI_OK_UPDATE)
		elog(ERROR, "could not update export checkpoint: %s",
			 SPI_result_code_string(result));
}

/*
 * LockTenant takes the tenant's lock until the end of the transaction; without
 * wait it returns false at once when another export or reset holds it.  The
 * key is hashtext(tenant_id), so DBAs can find it in pg_locks.
 */
bool
LockTenant(const char *tenantId, bool wait)
{
	uint32		key = DatumGetUInt32(hash_any((const unsigned char *) tenantId,
											  strlen(tenantId)));

	return AcquireAdvisoryXactLock(TENANT_LOCK_CLASS, key, wait);
}

/*
 * CheckpointRead returns the tenant's position, or CheckpointStart when it
 * has never been exported.
 */
CheckpointPosition
CheckpointRead(const char *tenantId)
{
	MemoryContext callerContext = CurrentMemoryContext;
	Oid			argumentTypes[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(tenantId)};
	SPIPlanPtr	plan = PreparedPlan(&readPlan,
									"SELECT last_created_at, last_id"
									" FROM interactions_cron.export_checkpoints"
									" WHERE tenant_id = $1",
									1, argumentTypes);
	CheckpointPosition position = CheckpointStart;
	int			result = SPI_execute_plan(plan, values, NULL, false, 1);
	bool		isNull;

	MemoryContextSwitchTo(callerContext);

	if (result != SPI_OK_SELECT)
		elog(ERROR, "could not read export checkpoint: %s",
			 SPI_result_code_string(result));

	if (SPI_processed == 1)
	{
		HeapTuple	tuple = SPI_tuptable->vals[0];
		TupleDesc	tupleDesc = SPI_tuptable->tupdesc;

		position.createdAt = DatumGetTimestampTz(SPI_getbinval(tuple, tupleDesc, 1, &isNull));
		position.id = DatumGetInt64(SPI_getbinval(tuple, tupleDesc, 2, &isNull));
	}
	SPI_freetuptable(SPI_tuptable);
	return position;
}

/*
 * CheckpointRecordSuccess moves the tenant's position past the rows just
 * written and clears any earlier failure.
 */
void
CheckpointRecordSuccess(const char *tenantId, CheckpointPosition position,
						int64 rowsExported, int64 filesWritten,
						const char *lastFile)
{
	MemoryContext callerContext = CurrentMemoryContext;
	Oid			argumentTypes[6] = {TEXTOID, TIMESTAMPTZOID, INT8OID, TEXTOID, INT8OID, INT8OID};
	Datum		values[6] = {
		CStringGetTextDatum(tenantId),
		TimestampTzGetDatum(position.createdAt),
		Int64GetDatum(position.id),
		CStringGetTextDatum(lastFile),
		Int64GetDatum(rowsExported),
		Int64GetDatum(filesWritten)
	};
	SPIPlanPtr	plan = PreparedPlan(&successPlan,
									"INSERT INTO interactions_cron.export_checkpoints AS c"
									" (tenant_id, last_created_at, last_id, status, last_error, attempts,"
									"  last_file, rows_exported, files_written, last_success_at, updated_at)"
									" VALUES ($1, $2, $3, 'ok', NULL, 0, $4, $5, $6,"
									"  pg_catalog.clock_timestamp(), pg_catalog.clock_timestamp())"
									" ON CONFLICT (tenant_id) DO UPDATE SET"
									"  last_created_at = excluded.last_created_at,"
									"  last_id = excluded.last_id, status = 'ok', last_error = NULL,"
									"  attempts = 0, last_file = excluded.last_file,"
									"  rows_exported = c.rows_exported + excluded.rows_exported,"
									"  files_written = c.files_written + excluded.files_written,"
									"  last_success_at = excluded.last_success_at,"
									"  updated_at = excluded.updated_at",
									6, argumentTypes);

	ExecuteChange(plan, values, NULL);
	MemoryContextSwitchTo(callerContext);
}

/*
 * CheckpointRecordFailure marks the tenant failed with its error; the
 * position stays, so the next run retries the same rows.
 */
void
CheckpointRecordFailure(const char *tenantId, const char *error)
{
	MemoryContext callerContext = CurrentMemoryContext;
	Oid			argumentTypes[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(tenantId), CStringGetTextDatum(error)};
	SPIPlanPtr	plan = PreparedPlan(&failurePlan,
									"INSERT INTO interactions_cron.export_checkpoints AS c"
									" (tenant_id, status, last_error, attempts, updated_at)"
									" VALUES ($1, 'failed', $2, 1, pg_catalog.clock_timestamp())"
									" ON CONFLICT (tenant_id) DO UPDATE SET"
									"  status = 'failed', last_error = excluded.last_error,"
									"  attempts = c.attempts + 1, updated_at = excluded.updated_at",
									2, argumentTypes);

	ExecuteChange(plan, values, NULL);
	MemoryContextSwitchTo(callerContext);
}

/*
 * RequireBackwardMove refuses a reset that would move a checkpoint forward:
 * that would silently skip rows that were never exported.
 */
static void
RequireBackwardMove(const char *tenantId, CheckpointPosition target)
{
	CheckpointPosition current = CheckpointRead(tenantId);

	if (target.createdAt > current.createdAt)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot move the checkpoint of tenant \"%s\" forward to %s",
						tenantId, timestamptz_to_str(target.createdAt)),
				 errdetail("The tenant has been exported up to %s; moving past that would skip rows that were never exported.",
						   timestamptz_to_str(current.createdAt)),
				 errhint("reset_checkpoint only replays: pass a time at or before the current position, or NULL for the beginning.")));
}

PG_FUNCTION_INFO_V1(reset_checkpoint);

/*
 * reset_checkpoint moves a tenant's checkpoint back to `since` (NULL: the
 * beginning) so the next export writes those rows again.  It waits for an
 * export that holds the tenant, then clears the failed state.
 */
Datum
reset_checkpoint(PG_FUNCTION_ARGS)
{
	char	   *tenantId;
	CheckpointPosition target = CheckpointStart;
	Oid			argumentTypes[3] = {TEXTOID, TIMESTAMPTZOID, INT8OID};
	Datum		values[3];
	ConfiguredTable tenants;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tenant_id must not be NULL")));
	tenantId = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (!PG_ARGISNULL(1))
		target.createdAt = PG_GETARG_TIMESTAMPTZ(1);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	tenants = ResolveTenantsTable();
	RequireTenant(&tenants, tenantId, false);
	(void) LockTenant(tenantId, true);
	RequireBackwardMove(tenantId, target);

	values[0] = CStringGetTextDatum(tenantId);
	values[1] = TimestampTzGetDatum(target.createdAt);
	values[2] = Int64GetDatum(target.id);
	ExecuteChange(PreparedPlan(&resetPlan,
							   "INSERT INTO interactions_cron.export_checkpoints AS c"
							   " (tenant_id, last_created_at, last_id, status, attempts, updated_at)"
							   " VALUES ($1, $2, $3, 'ok', 0, pg_catalog.clock_timestamp())"
							   " ON CONFLICT (tenant_id) DO UPDATE SET"
							   "  last_created_at = excluded.last_created_at,"
							   "  last_id = excluded.last_id, status = 'ok', last_error = NULL,"
							   "  attempts = 0, updated_at = excluded.updated_at",
							   3, argumentTypes),
				  values, NULL);

	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");

	PG_RETURN_VOID();
}
