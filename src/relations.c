/*
 * relations.c
 *	  Resolution and checking of the tables named by the settings.
 *
 * The extension does not own the platform's tables: it finds them through
 * superuser-only settings and checks the columns of the data contract up
 * front, so that a misconfiguration is one clear error rather than a failure
 * for every tenant.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"

#include "interactions_cron/guc.h"
#include "interactions_cron/relations.h"

static const Oid TextTypes[] = {TEXTOID, VARCHAROID};
static const Oid IntegerTypes[] = {INT2OID, INT4OID, INT8OID};
static const Oid InstantTypes[] = {TIMESTAMPTZOID};

/*
 * ResolveConfiguredTable looks up the table a setting names and returns its
 * OID with a quoted name for use in query text.
 */
ConfiguredTable
ResolveConfiguredTable(const char *settingName, const char *qualifiedName)
{
	ConfiguredTable table;
	List	   *names = stringToQualifiedNameList(qualifiedName);
	RangeVar   *rangeVar = makeRangeVarFromNameList(names);

	table.relid = RangeVarGetRelid(rangeVar, NoLock, true);
	if (!OidIsValid(table.relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table \"%s\" named by %s does not exist",
						qualifiedName, settingName),
				 errhint("Create the table (see reference/schema.sql) or point %s at the right one.",
						 settingName)));

	table.quotedName =
		quote_qualified_identifier(get_namespace_name(get_rel_namespace(table.relid)),
								   get_rel_name(table.relid));
	return table;
}

/*
 * RequireColumn raises an error naming the data contract when a column the
 * jobs rely on is missing or has a type they cannot use.
 */
void
RequireColumn(const ConfiguredTable *table, const char *column,
			  const Oid *acceptedTypes, int acceptedTypeCount)
{
	AttrNumber	attnum = get_attnum(table->relid, column);
	Oid			columnType;

	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("table %s has no column \"%s\"", table->quotedName, column),
				 errhint("See \"Data contract\" in the interactions_cron README.")));

	columnType = get_atttype(table->relid, attnum);
	for (int i = 0; i < acceptedTypeCount; i++)
	{
		if (acceptedTypes[i] == columnType)
			return;
	}

	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("column \"%s\" of table %s has type %s, which interactions_cron cannot use",
					column, table->quotedName, format_type_be(columnType)),
			 errhint("See \"Data contract\" in the interactions_cron README.")));
}

/*
 * ResolveTenantsTable finds the tenants table and checks id, name and status.
 */
ConfiguredTable
ResolveTenantsTable(void)
{
	ConfiguredTable table = ResolveConfiguredTable("interactions_cron.tenants_table",
												   TenantsTableSetting);

	RequireColumn(&table, "id", TextTypes, lengthof(TextTypes));
	RequireColumn(&table, "name", TextTypes, lengthof(TextTypes));
	RequireColumn(&table, "status", TextTypes, lengthof(TextTypes));
	return table;
}

/*
 * ResolveHistoryTable finds the history table and checks the columns the
 * export orders and partitions by.
 */
ConfiguredTable
ResolveHistoryTable(void)
{
	ConfiguredTable table = ResolveConfiguredTable("interactions_cron.history_table",
												   HistoryTableSetting);

	RequireColumn(&table, "id", IntegerTypes, lengthof(IntegerTypes));
	RequireColumn(&table, "tenant_id", TextTypes, lengthof(TextTypes));
	RequireColumn(&table, "created_at", InstantTypes, lengthof(InstantTypes));
	return table;
}
