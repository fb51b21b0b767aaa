/*
 * relations.h
 *	  The platform tables the jobs read, and their columns, as named by the
 *	  settings.
 */
#ifndef INTERACTIONS_CRON_RELATIONS_H
#define INTERACTIONS_CRON_RELATIONS_H

#include "datatype/timestamp.h"
#include "nodes/parsenodes.h"

/* A column of a platform table named by a setting, checked and ready for SQL text. */
typedef struct MappedColumn
{
	const char *settingName;
	char	   *name;			/* as stored: the name of the result's column */
	char	   *quotedName;		/* quoted, safe to splice into SQL */
	Oid			type;
	int32		typmod;
	Oid			collation;		/* InvalidOid for a type without one */
	char	   *typeName;		/* schema-qualified, for CAST(... AS ...) */
} MappedColumn;

#define MAX_MAPPED_COLUMNS 3

/* Roles of the mapped columns, by table (indexes into ConfiguredTable.columns). */
#define TENANT_ID_COLUMN 0
#define TENANT_NAME_COLUMN 1
#define HISTORY_TENANT_COLUMN 0
#define HISTORY_CREATED_COLUMN 1
#define HISTORY_ID_COLUMN 2
#define SUPPRESSIONS_EXPIRES_COLUMN 0
#define SUMMARIES_PERIOD_TYPE_COLUMN 0
#define SUMMARIES_PERIOD_START_COLUMN 1

/* A configured table, checked to exist, with its name ready for SQL text. */
typedef struct ConfiguredTable
{
	Oid			relid;
	char	   *quotedName;		/* "schema"."table", safe to splice into SQL */
	Oid			owner;			/* statements on it run as this role */
	MappedColumn columns[MAX_MAPPED_COLUMNS];
	char	   *activeFilter;	/* tenants table: which tenants are active */
	struct _SPI_plan *activityPlan; /* tenants table: its look-up, if kept
									 * (PrepareTenantActivityPlan) */
} ConfiguredTable;

extern ConfiguredTable ResolveConfiguredTable(const char *settingName,
											  const char *qualifiedName);
extern void RequireCallerPrivileges(const ConfiguredTable *table, AclMode privileges,
									const char *privilegeNames);
extern ConfiguredTable ResolveTenantsTable(void);
extern ConfiguredTable ResolveHistoryTable(void);
extern ConfiguredTable ResolveSuppressionsTable(void);
extern ConfiguredTable ResolveSummariesTable(void);
extern char *TextAsColumnType(const MappedColumn *column, const char *textExpression);
extern char *InstantAsColumnType(const MappedColumn *column, const char *instantExpression);
extern char *HistoryRowsFrom(const ConfiguredTable *history, const char *tenantText,
							 const char *afterCreatedAt);
extern char *HistoryRowsPast(const ConfiguredTable *history, const char *tenantText,
							 const char *afterCreatedAt, const char *afterIdText);
extern char *HistoryRowsAfter(const ConfiguredTable *history, const char *tenantText,
							  const char *afterCreatedAt, const char *afterIdText);
extern void ResolveExportTables(ConfiguredTable *tenants, ConfiguredTable *history);
extern void RequireMatchingTenantKeys(const ConfiguredTable *tenants,
									  const ConfiguredTable *history);
extern TimeOffset CreatedRounding(const ConfiguredTable *history);
extern char *ColumnCollateClause(const MappedColumn *column);
extern bool IsLocalTimestamp(const MappedColumn *column);
extern char *ColumnAsInstant(const MappedColumn *column, const char *tableAlias);
extern char *ColumnAsText(const MappedColumn *column, const char *tableAlias);

#endif
