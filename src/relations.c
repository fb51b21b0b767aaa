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

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/rls.h"
#include "utils/syscache.h"

#include "interactions_cron/guc.h"
#include "interactions_cron/relations.h"

static const Oid TextTypes[] = {TEXTOID, VARCHAROID};
static const Oid IntegerTypes[] = {INT2OID, INT4OID, INT8OID};
static const Oid InstantTypes[] = {TIMESTAMPTZOID};
static const Oid DateTypes[] = {DATEOID};

/* One column of the data contract and the types it may have. */
typedef struct ContractColumn
{
	const char *name;
	const Oid  *acceptedTypes;
	int			acceptedTypeCount;
} ContractColumn;

/*
 * RelationOwner returns the role that owns a relation.
 */
static Oid
RelationOwner(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}

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
	table.owner = RelationOwner(table.relid);
	return table;
}

/*
 * RequireCallerPrivileges refuses a caller who could not run the job's
 * statements on a platform table as itself.  The statements run as the
 * table's owner (so that the owner's code never runs with the caller's
 * rights), which would otherwise hand a caller the owner's rights: it must
 * hold every one of the privileges on the table itself, and no row-level
 * security policy may limit what it sees there, since the owner sees every
 * row.
 */
void
RequireCallerPrivileges(const ConfiguredTable *table, AclMode privileges,
						const char *privilegeNames)
{
	Oid			caller = GetUserId();

	if (pg_class_aclmask(table->relid, caller, privileges, ACLMASK_ALL) != privileges)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", table->quotedName),
				 errdetail("interactions_cron works on this table as its owner, for roles that hold %s on it themselves.",
						   privilegeNames),
				 errhint("GRANT %s ON %s to the calling role.", privilegeNames, table->quotedName)));
	if (check_enable_rls(table->relid, caller, true) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("row-level security on table %s applies to role \"%s\"",
						table->quotedName, GetUserNameFromId(caller, false)),
				 errdetail("interactions_cron works on every row of this table, as its owner."),
				 errhint("Call it as a role that bypasses the table's policies (BYPASSRLS, or the table's owner).")));
}

/*
 * RequireColumn raises an error naming the data contract when a column the
 * jobs rely on is missing or has a type they cannot use.
 */
static void
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
 * ResolveContractTable resolves a configured table and checks each column
 * of its part of the data contract.
 */
static ConfiguredTable
ResolveContractTable(const char *settingName, const char *qualifiedName,
					 const ContractColumn *columns, int columnCount)
{
	ConfiguredTable table = ResolveConfiguredTable(settingName, qualifiedName);

	for (int i = 0; i < columnCount; i++)
		RequireColumn(&table, columns[i].name, columns[i].acceptedTypes,
					  columns[i].acceptedTypeCount);
	return table;
}

/*
 * ResolveTenantsTable finds the tenants table and checks id, name and status.
 */
ConfiguredTable
ResolveTenantsTable(void)
{
	static const ContractColumn columns[] = {
		{"id", TextTypes, lengthof(TextTypes)},
		{"name", TextTypes, lengthof(TextTypes)},
		{"status", TextTypes, lengthof(TextTypes)},
	};

	return ResolveContractTable("interactions_cron.tenants_table", TenantsTableSetting,
								columns, lengthof(columns));
}

/*
 * ResolveHistoryTable finds the history table and checks the columns the
 * export orders and partitions by.
 */
ConfiguredTable
ResolveHistoryTable(void)
{
	static const ContractColumn columns[] = {
		{"id", IntegerTypes, lengthof(IntegerTypes)},
		{"tenant_id", TextTypes, lengthof(TextTypes)},
		{"created_at", InstantTypes, lengthof(InstantTypes)},
	};

	return ResolveContractTable("interactions_cron.history_table", HistoryTableSetting,
								columns, lengthof(columns));
}

/*
 * ResolveSuppressionsTable finds the suppressions table and checks expires_at.
 */
ConfiguredTable
ResolveSuppressionsTable(void)
{
	static const ContractColumn columns[] = {
		{"expires_at", InstantTypes, lengthof(InstantTypes)},
	};

	return ResolveContractTable("interactions_cron.suppressions_table", SuppressionsTableSetting,
								columns, lengthof(columns));
}

/*
 * ResolveSummariesTable finds the summaries table and checks period_type and
 * period_start.
 */
ConfiguredTable
ResolveSummariesTable(void)
{
	static const ContractColumn columns[] = {
		{"period_type", TextTypes, lengthof(TextTypes)},
		{"period_start", DateTypes, lengthof(DateTypes)},
	};

	return ResolveContractTable("interactions_cron.summaries_table", SummariesTableSetting,
								columns, lengthof(columns));
}
