/*
 * spi_plans.h
 *	  Saved SPI plans of the extension's own fixed statements.
 */
#ifndef INTERACTIONS_CRON_SPI_PLANS_H
#define INTERACTIONS_CRON_SPI_PLANS_H

#include "executor/spi.h"

#include "interactions_cron/relations.h"

extern SPIPlanPtr PreparedPlan(SPIPlanPtr *cache, const char *sql, int argumentCount,
							   Oid *argumentTypes);
extern SPIPlanPtr PreparedStatementPlan(SPIPlanPtr *cache, const char *sql, int argumentCount,
										Oid *argumentTypes);

/* Code to run as another role: see RunAsRole. */
typedef void (*RoleBody) (void *argument);

extern void RequireNoTemporaryObjects(void);
extern void RunAsRole(Oid roleId, RoleBody body, void *argument);
extern void RunQueryAsTableOwner(const ConfiguredTable *table, const char *sql,
								 int argumentCount, Oid *argumentTypes, Datum *values,
								 const char *nulls, long rowLimit, const char *what);
extern void RunPlanAsTableOwner(const ConfiguredTable *table, SPIPlanPtr plan, Datum *values,
								const char *nulls, long rowLimit, const char *what);
extern uint64 RunStatementAsOwner(SPIPlanPtr *cache, const char *sql, int argumentCount,
								  Oid *argumentTypes, Datum *values, const char *nulls,
								  int expectedCode, const char *what);
extern uint64 RunKeyedStatementAsOwner(SPIPlanPtr *cache, const char *sql, int argumentCount,
									   Oid *argumentTypes, Datum *values, const char *nulls,
									   int expectedCode, const char *what);
extern uint64 RunTenantStatementAsOwner(SPIPlanPtr *cache, const char *sql, const char *tenantId,
										int expectedCode, const char *what);
extern List *TextColumnAsOwner(SPIPlanPtr *cache, const char *sql, int argumentCount,
							   Oid *argumentTypes, Datum *values, const char *what);
extern Datum TextArrayParameter(List *strings);
extern List *TextArrayList(Datum array, bool keepNulls);
extern void ConnectSpi(void);
extern void FinishSpi(void);

#endif
