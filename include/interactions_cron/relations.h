/*
 * relations.h
 *	  The platform tables the jobs read, as named by the settings.
 */
#ifndef INTERACTIONS_CRON_RELATIONS_H
#define INTERACTIONS_CRON_RELATIONS_H

#include "nodes/parsenodes.h"

/* A configured table, checked to exist, with its name ready for SQL text. */
typedef struct ConfiguredTable
{
	Oid			relid;
	char	   *quotedName;		/* "schema"."table", safe to splice into SQL */
	Oid			owner;			/* statements on it run as this role */
} ConfiguredTable;

extern ConfiguredTable ResolveConfiguredTable(const char *settingName,
											  const char *qualifiedName);
extern void RequireCallerPrivileges(const ConfiguredTable *table, AclMode privileges,
									const char *privilegeNames);
extern ConfiguredTable ResolveTenantsTable(void);
extern ConfiguredTable ResolveHistoryTable(void);
extern ConfiguredTable ResolveSuppressionsTable(void);
extern ConfiguredTable ResolveSummariesTable(void);

#endif
