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
#include "access/relation.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parser.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/syscache.h"

#include "interactions_cron/guc.h"
#include "interactions_cron/pg_compat.h"
#include "interactions_cron/relations.h"
#include "interactions_cron/spi_plans.h"

static const Oid KeyTypes[] = {TEXTOID, VARCHAROID, UUIDOID, INT2OID, INT4OID, INT8OID};
static const Oid InstantTypes[] = {TIMESTAMPTZOID, TIMESTAMPOID};
static const Oid DayTypes[] = {TIMESTAMPTZOID, TIMESTAMPOID, DATEOID};
static const Oid LabelTypes[] = {TEXTOID, VARCHAROID};

/* A column role of the data contract: the setting naming it and the types it may have. */
typedef struct ContractColumn
{
	const char *settingName;
	char	  **setting;
	const Oid  *acceptedTypes;	/* NULL: see acceptsType */
	int			acceptedTypeCount;
	bool		(*acceptsType) (Oid type);
	const char *typesWanted;	/* for the error */
	bool		isKey;			/* compared for equality or order: a deterministic collation */
} ContractColumn;

/*
 * AnyType accepts every type (the tenant's name is reported as text).
 */
static bool
AnyType(Oid type)
{
	return true;
}

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
 * RefuseSecurityInvokerView refuses a security_invoker view: its base
 * tables' grants and row-level security policies should apply to the
 * caller, but the jobs read it as the view's owner.
 */
static void
RefuseSecurityInvokerView(const ConfiguredTable *table, const char *settingName)
{
	Relation	relation = relation_open(table->relid, AccessShareLock);
	bool		invokerView = relation->rd_rel->relkind == RELKIND_VIEW &&
		RelationHasSecurityInvoker(relation);

	relation_close(relation, AccessShareLock);
	if (invokerView)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("view %s named by %s has security_invoker set", table->quotedName, settingName),
				 errdetail("interactions_cron reads a configured table as its owner, which would bypass the grants and row-level security of the view's tables for the caller."),
				 errhint("Point %s at the table itself, or at a view without security_invoker.",
						 settingName)));
}

/*
 * QualifiedRelationName returns a relation's schema-qualified, quoted name.
 */
static char *
QualifiedRelationName(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/*
 * RefuseMembersOfOtherOwners refuses a table with a partition or an
 * inheritance child that another role owns.  The jobs act on the table as
 * its owner, and a statement through it reaches its members: a member's own
 * code (a trigger, an index expression the planner folds) would run as the
 * table's owner, and the table owner's code (the clones of its row
 * triggers) as the member's owner, were the member acted on as itself.
 */
static void
RefuseMembersOfOtherOwners(const ConfiguredTable *table, const char *settingName)
{
	List	   *members = find_all_inheritors(table->relid, NoLock, NULL);
	ListCell   *cell;

	foreach(cell, members)
	{
		Oid			member = lfirst_oid(cell);
		HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(member));
		Oid			owner;

		if (!HeapTupleIsValid(tuple))
			continue;			/* dropped meanwhile */
		owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
		ReleaseSysCache(tuple);
		if (owner != table->owner)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("partition %s of table %s, named by %s, is owned by role \"%s\", not by the table's owner \"%s\"",
							QualifiedRelationName(member), table->quotedName, settingName,
							GetUserNameFromId(owner, false), GetUserNameFromId(table->owner, false)),
					 errdetail("interactions_cron acts on a table as its owner; a partition's triggers are "
							   "the table owner's code, its own code would run as the table's owner."),
					 errhint("ALTER TABLE %s OWNER TO %s;", QualifiedRelationName(member),
							 quote_identifier(GetUserNameFromId(table->owner, false)))));
	}
}

/*
 * ResolveConfiguredTable looks up the table a setting names and returns its
 * OID with a quoted name for use in query text.
 */
ConfiguredTable
ResolveConfiguredTable(const char *settingName, const char *qualifiedName)
{
	ConfiguredTable table = {0};
	List	   *names = StringToQualifiedNameList(qualifiedName);
	RangeVar   *rangeVar = makeRangeVarFromNameList(names);

	table.relid = RangeVarGetRelid(rangeVar, NoLock, true);
	if (!OidIsValid(table.relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table \"%s\" named by %s does not exist",
						qualifiedName, settingName),
				 errhint("Create the table (see reference/schema.sql) or point %s at the right one.",
						 settingName)));

	table.quotedName = QualifiedRelationName(table.relid);
	RefuseSecurityInvokerView(&table, settingName);
	table.owner = RelationOwner(table.relid);
	RefuseMembersOfOtherOwners(&table, settingName);
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
 * HasBtreeOrder says whether a type has a default btree operator class, so
 * that rows can be ordered and compared by it (integers, numeric, text,
 * uuid...).
 */
static bool
HasBtreeOrder(Oid type)
{
	return OidIsValid(GetDefaultOpClass(type, BTREE_AM_OID));
}

/*
 * IsLabelType says whether a type can hold the daily period type: text,
 * varchar or an enum.
 */
static bool
IsLabelType(Oid type)
{
	for (int i = 0; i < (int) lengthof(LabelTypes); i++)
		if (LabelTypes[i] == type)
			return true;
	return type_is_enum(type);
}

/*
 * AcceptsType says whether a column's type (or its domain's base type) fits
 * its role in the data contract.
 */
static bool
AcceptsType(const ContractColumn *role, Oid type)
{
	Oid			baseType = getBaseType(type);

	if (role->acceptsType != NULL)
		return role->acceptsType(baseType);
	for (int i = 0; i < role->acceptedTypeCount; i++)
		if (role->acceptedTypes[i] == baseType)
			return true;
	return false;
}

/*
 * MapColumn finds the column a setting names in a configured table and checks
 * that its type fits its role, raising one error that names the setting
 * otherwise.
 */
static MappedColumn
MapColumn(const ConfiguredTable *table, const ContractColumn *role)
{
	MappedColumn column;
	Oid			collation;
	const char *name = *role->setting;
	AttrNumber	attnum = get_attnum(table->relid, name);

	/* A system column (ctid, xmin) changes under UPDATE and VACUUM FULL. */
	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("table %s has no column \"%s\", named by %s",
						table->quotedName, name, role->settingName),
				 errhint("Set %s to the column's name as stored (createdAt, not \"createdAt\"); see doc/your-schema.md in interactions_cron's manual.",
						 role->settingName)));

	column.settingName = role->settingName;
	column.name = pstrdup(name);
	column.quotedName = pstrdup(quote_identifier(name));
	get_atttypetypmodcoll(table->relid, attnum, &column.type, &column.typmod, &collation);
	if (column.typmod < 0)
		(void) getBaseTypeAndTypmod(column.type, &column.typmod);
	if (role->isKey && OidIsValid(collation) && !get_collation_isdeterministic(collation))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("column \"%s\" of table %s, named by %s, has the nondeterministic collation \"%s\"",
						name, table->quotedName, role->settingName, get_collation_name(collation)),
				 errdetail("Values that differ (\"acme\" and \"ACME\") would compare equal: one tenant's rows would be exported as another's, or rows of one created instant skipped."),
				 errhint("Use a column with a deterministic collation, or a view that applies one (COLLATE \"C\").")));
	if (!AcceptsType(role, column.type))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of table %s, named by %s, has type %s, which interactions_cron cannot use there",
						name, table->quotedName, role->settingName, format_type_be(column.type)),
				 errdetail("It must be %s.", role->typesWanted),
				 errhint("See doc/your-schema.md in interactions_cron's manual.")));
	column.typeName = format_type_be_qualified(column.type);
	column.collation = collation;
	return column;
}

/*
 * ResolveMappedTable resolves a configured table and maps each column of its
 * part of the data contract.
 */
static ConfiguredTable
ResolveMappedTable(const char *settingName, const char *qualifiedName,
				   const ContractColumn *roles, int roleCount)
{
	ConfiguredTable table = ResolveConfiguredTable(settingName, qualifiedName);

	for (int i = 0; i < roleCount; i++)
		table.columns[i] = MapColumn(&table, &roles[i]);
	return table;
}

/*
 * IsSingleExpression says whether a parsed "SELECT <filter>" is the filter
 * as one expression and nothing else: no second statement or target, no
 * FROM or other clause.  Parsed on its own, unparenthesised, a filter that
 * passes stays one expression once spliced in parentheses into a query (an
 * unbalanced parenthesis or a comment cutting the query short cannot).
 */
static bool
IsSingleExpression(List *statements)
{
	SelectStmt *select;

	if (list_length(statements) != 1 ||
		!IsA(linitial_node(RawStmt, statements)->stmt, SelectStmt))
		return false;
	select = (SelectStmt *) linitial_node(RawStmt, statements)->stmt;
	return list_length(select->targetList) == 1 && select->fromClause == NIL &&
		select->whereClause == NULL && select->groupClause == NIL &&
		select->havingClause == NULL && select->windowClause == NIL &&
		select->sortClause == NIL && select->limitCount == NULL &&
		select->limitOffset == NULL && select->lockingClause == NIL &&
		select->withClause == NULL && select->op == SETOP_NONE &&
		select->distinctClause == NIL && select->intoClause == NULL;
}

/* The filter's checks, as RunAsRole hands them over. */
typedef struct FilterCheck
{
	const char *filter;
	const char *query;			/* the filter in the tenants query's WHERE clause */
	int			queryPrefixLength;	/* bytes before the filter in query */
	int			parsedPrefixLength; /* the same, while being parsed alone */
	bool		singleExpression;
} FilterCheck;

/*
 * CheckFilter parses the filter alone, then plans it in the tenants query's
 * WHERE clause, which checks its columns, functions and type.
 */
static void
CheckFilter(void *argument)
{
	FilterCheck *check = argument;

	check->parsedPrefixLength = strlen("SELECT ");
	check->singleExpression =
		IsSingleExpression(raw_parser(psprintf("SELECT %s", check->filter), RAW_PARSE_DEFAULT));
	if (!check->singleExpression)
		return;
	check->parsedPrefixLength = check->queryPrefixLength;
	if (SPI_prepare(check->query, 0, NULL) == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
}

/*
 * RequireUsableFilter refuses an active_tenants_filter that is not one
 * boolean SQL expression over the tenants table, with one error naming the
 * setting: the original SQLSTATE and message, and the position within the
 * filter.  It is planned as the table's owner, as it will run.
 */
static void
RequireUsableFilter(const ConfiguredTable *tenants, const char *filter)
{
	MemoryContext callerContext = CurrentMemoryContext;
	char	   *prefix = psprintf("SELECT 1 FROM %s t WHERE (\n", tenants->quotedName);
	FilterCheck check = {filter, psprintf("%s%s\n)", prefix, filter), (int) strlen(prefix), 0, false};

	PG_TRY();
	{
		RunAsRole(tenants->owner, CheckFilter, &check);
	}
	PG_CATCH();
	{
		ErrorData  *error;
		int			position;

		MemoryContextSwitchTo(callerContext);
		error = CopyErrorData();
		FlushErrorState();
		position = (error->internalpos > 0 ? error->internalpos : error->cursorpos) -
			check.parsedPrefixLength;
		ereport(ERROR,
				(errcode(error->sqlerrcode),
				 errmsg("interactions_cron.active_tenants_filter is not usable: %s", error->message),
				 position > 0
				 ? errdetail("At character %d of the filter \"%s\".", position, filter)
				 : errdetail("The filter is \"%s\".", filter),
				 errhint("Set it to a boolean expression over the columns of %s, such as status = 'active'.",
						 tenants->quotedName)));
	}
	PG_END_TRY();
	/* SPI_prepare returns in SPI's memory, gone at SPI_finish. */
	MemoryContextSwitchTo(callerContext);

	if (!check.singleExpression)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("interactions_cron.active_tenants_filter is not a single SQL expression"),
				 errdetail("The filter is \"%s\".", filter),
				 errhint("Set it to a boolean expression over the tenants table's columns, such as status = 'active' or \"deletedAt\" IS NULL AND status = 'ACTIVE'.")));
}

/*
 * ResolveTenantsTable finds the tenants table, its key and name columns and
 * checks the active tenants filter.
 */
ConfiguredTable
ResolveTenantsTable(void)
{
	const ContractColumn roles[] = {
		{"interactions_cron.tenant_id_column", &TenantIdColumnSetting,
		KeyTypes, lengthof(KeyTypes), NULL, "text, varchar, uuid or an integer type", true},
		{"interactions_cron.tenant_name_column", &TenantNameColumnSetting,
		NULL, 0, AnyType, "any type"},
	};
	ConfiguredTable table = ResolveMappedTable("interactions_cron.tenants_table", TenantsTableSetting,
											   roles, lengthof(roles));

	RequireUsableFilter(&table, ActiveTenantsFilterSetting);
	table.activeFilter = psprintf("(\n%s\n)", ActiveTenantsFilterSetting);
	return table;
}

/*
 * ResolveHistoryTable finds the history table and maps the columns the
 * export selects, orders and partitions by.
 */
ConfiguredTable
ResolveHistoryTable(void)
{
	const ContractColumn roles[] = {
		{"interactions_cron.history_tenant_column", &HistoryTenantColumnSetting,
		KeyTypes, lengthof(KeyTypes), NULL, "text, varchar, uuid or an integer type", true},
		{"interactions_cron.history_created_column", &HistoryCreatedColumnSetting,
		InstantTypes, lengthof(InstantTypes), NULL, "timestamptz or timestamp"},
		{"interactions_cron.history_id_column", &HistoryIdColumnSetting,
		NULL, 0, HasBtreeOrder, "a type with a default btree operator class (integers, numeric, text, varchar, uuid)", true},
	};

	return ResolveMappedTable("interactions_cron.history_table", HistoryTableSetting,
							  roles, lengthof(roles));
}

/*
 * ResolveSuppressionsTable finds the suppressions table and its expiry.
 */
ConfiguredTable
ResolveSuppressionsTable(void)
{
	const ContractColumn roles[] = {
		{"interactions_cron.suppressions_expires_column", &SuppressionsExpiresColumnSetting,
		DayTypes, lengthof(DayTypes), NULL, "timestamptz, timestamp or date"},
	};

	return ResolveMappedTable("interactions_cron.suppressions_table", SuppressionsTableSetting,
							  roles, lengthof(roles));
}

/*
 * ResolveSummariesTable finds the summaries table, its period type and start.
 */
ConfiguredTable
ResolveSummariesTable(void)
{
	const ContractColumn roles[] = {
		{"interactions_cron.summaries_period_type_column", &SummariesPeriodTypeColumnSetting,
		NULL, 0, IsLabelType, "text, varchar or an enum"},
		{"interactions_cron.summaries_period_start_column", &SummariesPeriodStartColumnSetting,
		DayTypes, lengthof(DayTypes), NULL, "date, timestamp or timestamptz"},
	};

	ConfiguredTable table = ResolveMappedTable("interactions_cron.summaries_table",
											   SummariesTableSetting, roles, lengthof(roles));
	Oid			periodType = getBaseType(table.columns[SUMMARIES_PERIOD_TYPE_COLUMN].type);

	if (type_is_enum(periodType) &&
		!SearchSysCacheExists2(ENUMTYPOIDNAME, ObjectIdGetDatum(periodType),
							   CStringGetDatum(SummariesDailyValueSetting)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("interactions_cron.summaries_daily_value \"%s\" is not a value of enum %s",
						SummariesDailyValueSetting, format_type_be(periodType)),
				 errhint("Set it to the label meaning daily, such as DAILY.")));
	return table;
}

/*
 * TextAsColumnType returns SQL text converting a text expression (a query
 * parameter) to a column's own type, so that comparisons with the column use
 * its indexes: the column itself is never wrapped.
 */
char *
TextAsColumnType(const MappedColumn *column, const char *textExpression)
{
	if (column->type == TEXTOID)
		return pstrdup(textExpression);
	return psprintf("CAST(%s AS %s)", textExpression, column->typeName);
}

/*
 * InstantAsColumnType returns SQL text converting a timestamptz expression
 * to a column's own type: a timestamp column holds wall-clock times in
 * interactions_cron.history_timezone, a date column that zone's days.
 */
char *
InstantAsColumnType(const MappedColumn *column, const char *instantExpression)
{
	Oid			baseType = getBaseType(column->type);
	char	   *local;

	if (baseType == TIMESTAMPTZOID)
		return pstrdup(instantExpression);
	local = psprintf("(%s) AT TIME ZONE %s", instantExpression,
					 quote_literal_cstr(HistoryTimezoneSetting));
	if (baseType == DATEOID)
		return psprintf("CAST(%s AS pg_catalog.date)", local);
	return psprintf("(%s)", local);
}

/*
 * ColumnAsInstant returns SQL text reading a created column of tableAlias as
 * an instant: a timestamp column's wall-clock time in
 * interactions_cron.history_timezone (the inverse of InstantAsColumnType).
 */
char *
ColumnAsInstant(const MappedColumn *column, const char *tableAlias)
{
	char	   *value = psprintf("%s.%s", tableAlias, column->quotedName);

	if (!IsLocalTimestamp(column))
		return value;
	return psprintf("(%s AT TIME ZONE %s)", value, quote_literal_cstr(HistoryTimezoneSetting));
}

/*
 * IsLocalTimestamp says whether a created column holds wall-clock times (a
 * timestamp without time zone, read in interactions_cron.history_timezone).
 */
bool
IsLocalTimestamp(const MappedColumn *column)
{
	return getBaseType(column->type) == TIMESTAMPOID;
}

/*
 * ColumnAsText returns SQL text reading a column of tableAlias as text.
 */
char *
ColumnAsText(const MappedColumn *column, const char *tableAlias)
{
	return psprintf("%s.%s::pg_catalog.text", tableAlias, column->quotedName);
}

/*
 * HistoryRowsFrom returns the SQL condition on history rows h of a tenant
 * (tenantText, a text expression) created at or after an instant (a
 * timestamptz expression): the rows after a position without a last id.
 */
char *
HistoryRowsFrom(const ConfiguredTable *history, const char *tenantText, const char *afterCreatedAt)
{
	const MappedColumn *tenant = &history->columns[HISTORY_TENANT_COLUMN];
	const MappedColumn *created = &history->columns[HISTORY_CREATED_COLUMN];

	return psprintf("h.%s = %s AND h.%s >= %s",
					tenant->quotedName, TextAsColumnType(tenant, tenantText),
					created->quotedName, InstantAsColumnType(created, afterCreatedAt));
}

/*
 * HistoryRowsPast returns the SQL condition on history rows h of a tenant
 * that lie after a position with a last id (a text expression): a row
 * comparison in the columns' own types, which the (tenant, created, id)
 * index takes as a bound, so a scan never reads the tie it has passed.
 */
char *
HistoryRowsPast(const ConfiguredTable *history, const char *tenantText,
				const char *afterCreatedAt, const char *afterIdText)
{
	const MappedColumn *tenant = &history->columns[HISTORY_TENANT_COLUMN];
	const MappedColumn *created = &history->columns[HISTORY_CREATED_COLUMN];
	const MappedColumn *id = &history->columns[HISTORY_ID_COLUMN];

	return psprintf("h.%s = %s AND (h.%s, h.%s) > (%s, %s)",
					tenant->quotedName, TextAsColumnType(tenant, tenantText),
					created->quotedName, id->quotedName,
					InstantAsColumnType(created, afterCreatedAt), TextAsColumnType(id, afterIdText));
}

/*
 * HistoryRowsAfter returns the condition on history rows h after a position
 * whose last id may be NULL, for a query planned with its parameters' values
 * (a sweep's look for a file's rows): the test of afterIdText folds away,
 * leaving one of the two conditions above.  Queries whose position comes
 * from a table choose between them per row instead (CASE, UNION ALL), so
 * that each keeps its index bounds.
 */
char *
HistoryRowsAfter(const ConfiguredTable *history, const char *tenantText,
				 const char *afterCreatedAt, const char *afterIdText)
{
	return psprintf("((%s IS NULL AND %s) OR (%s IS NOT NULL AND %s))",
					afterIdText, HistoryRowsFrom(history, tenantText, afterCreatedAt),
					afterIdText, HistoryRowsPast(history, tenantText, afterCreatedAt, afterIdText));
}

/*
 * CreatedRounding returns how far a writer's start time can move when the
 * history's created column stores it at a lower precision (timestamp(3)
 * rounds to the millisecond, half a unit either way): the export keeps its
 * watermark that much further back, so that a row of a transaction still
 * running never rounds below it.  A full precision column needs nothing.
 */
TimeOffset
CreatedRounding(const ConfiguredTable *history)
{
	int32		precision = history->columns[HISTORY_CREATED_COLUMN].typmod;
	TimeOffset	unit = 1;

	if (precision < 0 || precision >= MAX_TIMESTAMP_PRECISION)
		return 0;
	for (int digit = precision; digit < MAX_TIMESTAMP_PRECISION; digit++)
		unit *= 10;
	return unit;
}

/*
 * TenantKeyCategory names what a tenant key's base type compares as: text
 * and varchar alike, any other type as itself.
 */
static Oid
TenantKeyCategory(const MappedColumn *key)
{
	Oid			baseType = getBaseType(key->type);

	return baseType == VARCHAROID ? TEXTOID : baseType;
}

/*
 * RequireMatchingTenantKeys refuses a tenants key and a history tenant
 * column of different types: the history's values would be matched through
 * the tenants key's text form (an upper-case uuid in a text column never
 * equals a uuid's lower-case text), and a tenant's rows would silently never
 * be exported.
 */
void
RequireMatchingTenantKeys(const ConfiguredTable *tenants, const ConfiguredTable *history)
{
	const MappedColumn *tenantKey = &tenants->columns[TENANT_ID_COLUMN];
	const MappedColumn *historyKey = &history->columns[HISTORY_TENANT_COLUMN];

	if (TenantKeyCategory(tenantKey) != TenantKeyCategory(historyKey))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the tenant keys have different types: %s.%s is %s, %s.%s is %s",
						tenants->quotedName, tenantKey->quotedName, format_type_be(tenantKey->type),
						history->quotedName, historyKey->quotedName, format_type_be(historyKey->type)),
				 errhint("Map %s and %s to columns of one type.", tenantKey->settingName,
						 historyKey->settingName)));
}

/*
 * ColumnCollateClause returns " COLLATE schema.name" for a column of a
 * collatable type, so that values compared outside the table order as the
 * column does; an empty string otherwise.
 */
char *
ColumnCollateClause(const MappedColumn *column)
{
	HeapTuple	tuple;
	Form_pg_collation collation;
	char	   *clause;

	if (!OidIsValid(column->collation))
		return "";
	tuple = SearchSysCache1(COLLOID, ObjectIdGetDatum(column->collation));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for collation %u", column->collation);
	collation = (Form_pg_collation) GETSTRUCT(tuple);
	clause = psprintf(" COLLATE %s",
					  quote_qualified_identifier(get_namespace_name(collation->collnamespace),
												 NameStr(collation->collname)));
	ReleaseSysCache(tuple);
	return clause;
}

/*
 * ResolveExportTables resolves the tenants and history tables the export and
 * its status read, and checks that the caller may read both itself and that
 * their tenant keys match.
 */
void
ResolveExportTables(ConfiguredTable *tenants, ConfiguredTable *history)
{
	*tenants = ResolveTenantsTable();
	*history = ResolveHistoryTable();
	RequireCallerPrivileges(tenants, ACL_SELECT, "SELECT");
	RequireCallerPrivileges(history, ACL_SELECT, "SELECT");
	RequireMatchingTenantKeys(tenants, history);
}
