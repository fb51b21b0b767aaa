/*
 * spi_plans.c
 *	  Saved SPI plans of the extension's own fixed statements.
 *
 * The statements on the extension's tables never change, so each is prepared
 * once per backend and kept (SPI_keepplan); the plan cache replans them if a
 * table is altered.  Every call checks SPI's result code.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

#include "miscadmin.h"

#include "interactions_cron/preconditions.h"
#include "interactions_cron/spi_plans.h"

/*
 * PreparedPlan returns the saved plan for sql, preparing it on first use.
 * The plan is replanned at every execution (a custom plan): a worker keeps
 * its plans for a whole run, over which the extension's tables can grow
 * from empty to many thousand rows, and a generic plan made while they were
 * empty would scan them whole for every tenant.  Like every SPI call,
 * preparing leaves SPI's procedure context current: callers that allocate
 * afterwards save and restore their own.
 */
SPIPlanPtr
PreparedPlan(SPIPlanPtr *cache, const char *sql, int argumentCount,
			 Oid *argumentTypes)
{
	if (*cache == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(sql, argumentCount, argumentTypes,
											  CURSOR_OPT_CUSTOM_PLAN);

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
 * RunStatement runs the saved statement for sql (prepared on first use; not
 * read-only, so each execution sees what committed before it), raises an
 * error naming what it was for when the result code is not the expected one,
 * and returns SPI_processed with the caller's memory context current again.
 * A SELECT's rows stay in SPI_tuptable.
 */
uint64
RunStatement(SPIPlanPtr *cache, const char *sql, int argumentCount, Oid *argumentTypes,
			 Datum *values, const char *nulls, int expectedCode, const char *what)
{
	MemoryContext callerContext = CurrentMemoryContext;
	int			code = SPI_execute_plan(PreparedPlan(cache, sql, argumentCount, argumentTypes),
										values, nulls, false, 0);

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
 * RunStatementAsOwner is RunStatement executed as the extension's owner, in
 * a security-restricted operation, as VACUUM runs as a table's owner.  The
 * extension's bookkeeping tables (intents, job claims) need no grant to
 * callers, so no caller can forge what the export later acts on.
 */
uint64
RunStatementAsOwner(SPIPlanPtr *cache, const char *sql, int argumentCount, Oid *argumentTypes,
					Datum *values, const char *nulls, int expectedCode, const char *what)
{
	Oid			callerUserId;
	int			callerSecurityContext;
	volatile uint64 processed = 0;

	GetUserIdAndSecContext(&callerUserId, &callerSecurityContext);
	SetUserIdAndSecContext(ExtensionOwnerId(),
						   callerSecurityContext | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		processed = RunStatement(cache, sql, argumentCount, argumentTypes, values, nulls,
								 expectedCode, what);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(callerUserId, callerSecurityContext);
	}
	PG_END_TRY();
	return processed;
}

/*
 * RunWithTenantId runs a statement whose only parameter is the tenant id
 * ($1, text), as the caller or as the extension's owner.
 */
static uint64
RunWithTenantId(bool asOwner, SPIPlanPtr *cache, const char *sql, const char *tenantId,
				int expectedCode, const char *what)
{
	Oid			argumentTypes[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(tenantId)};

	return asOwner
		? RunStatementAsOwner(cache, sql, 1, argumentTypes, values, NULL, expectedCode, what)
		: RunStatement(cache, sql, 1, argumentTypes, values, NULL, expectedCode, what);
}

/*
 * RunTenantStatement is RunStatement for a statement whose only parameter
 * is the tenant id; RunTenantStatementAsOwner runs it as the extension's
 * owner.
 */
uint64
RunTenantStatement(SPIPlanPtr *cache, const char *sql, const char *tenantId,
				   int expectedCode, const char *what)
{
	return RunWithTenantId(false, cache, sql, tenantId, expectedCode, what);
}

uint64
RunTenantStatementAsOwner(SPIPlanPtr *cache, const char *sql, const char *tenantId,
						  int expectedCode, const char *what)
{
	return RunWithTenantId(true, cache, sql, tenantId, expectedCode, what);
}
