/*
 * partitions.c
 *	  Partition maintenance of cleanup(): monthly range partitions, bounded at
 *	  UTC month starts and named <table>_pYYYY_MM, for the current month and
 *	  the next interactions_cron.premake_months.
 *
 * What the seed calls "non-fatal if partitions are not configured" becomes a
 * warning in the result: a table that is not range-partitioned by one
 * date/time column, a default partition already holding a new month's rows,
 * or an overlapping partition.  A lock that cannot be had within
 * interactions_cron.partition_lock_timeout is a real failure and an error.
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_partitioned_table.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "nodes/makefuncs.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/partcache.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "interactions_cron/guc.h"
#include "interactions_cron/partitions.h"
#include "interactions_cron/pg_compat.h"
#include "interactions_cron/spi_plans.h"
#include "interactions_cron/subtransaction.h"

/* A table cleanup() keeps partitioned, once checked. */
typedef struct MonthlyTable
{
	char	   *schemaName;
	char	   *tableName;
	Oid			owner;
	Oid			keyType;
} MonthlyTable;

/* A partition's CREATE TABLE and the role it runs as. */
typedef struct PartitionDdl
{
	Oid			owner;
	const char *sql;
} PartitionDdl;

/*
 * AddWarning appends a formatted warning to the list in the caller's context.
 */
static void
AddWarning(List **warnings, MemoryContext context, const char *text)
{
	MemoryContext previous = MemoryContextSwitchTo(context);

	*warnings = lappend(*warnings, pstrdup(text));
	MemoryContextSwitchTo(previous);
}

/*
 * RaiseLockTimeout reports that a table was too busy to maintain.
 */
static void
RaiseLockTimeout(const char *qualifiedName)
{
	ereport(ERROR,
			(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
			 errmsg("could not lock %s for partition maintenance within %d ms",
					qualifiedName, PartitionLockTimeoutMs),
			 errhint("The table is busy; cleanup() deletes nothing this time. Retry later, or raise interactions_cron.partition_lock_timeout.")));
}

/*
 * OpenWithinLockTimeout opens a table once its lock can be had, polling for at
 * most the partition lock timeout; no error is caught, so nothing is left
 * half-cleaned when the table stays busy.
 */
static Relation
OpenWithinLockTimeout(Oid relid, const char *qualifiedName)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   PartitionLockTimeoutMs);

	while (!ConditionalLockRelationOid(relid, AccessShareLock))
	{
		if (GetCurrentTimestamp() >= deadline)
			RaiseLockTimeout(qualifiedName);
		CHECK_FOR_INTERRUPTS();
		pg_usleep(10 * 1000L);
	}
	return table_open(relid, NoLock);
}

/*
 * CheckMonthlyTable opens a configured table and says, through *reason,
 * why it cannot get monthly partitions; a missing table is an error.
 */
static bool
CheckMonthlyTable(const char *qualifiedName, MonthlyTable *table, char **reason)
{
	Oid			relid = RangeVarGetRelid(makeRangeVarFromNameList(StringToQualifiedNameList(qualifiedName)),
										 NoLock, true);
	Relation	relation;
	PartitionKey key;
	bool		usable = false;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table \"%s\" named by interactions_cron.partitioned_tables does not exist",
						qualifiedName),
				 errhint("Remove it from interactions_cron.partitioned_tables or create it.")));

	relation = OpenWithinLockTimeout(relid, qualifiedName);
	table->schemaName = get_namespace_name(RelationGetNamespace(relation));
	table->tableName = pstrdup(RelationGetRelationName(relation));
	table->owner = relation->rd_rel->relowner;

	if (relation->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		*reason = psprintf("%s is not partitioned; partition maintenance skipped", qualifiedName);
	else
	{
		key = RelationGetPartitionKey(relation);
		table->keyType = key->parttypid[0];
		if (key->strategy != PARTITION_STRATEGY_RANGE || key->partnatts != 1 ||
			(table->keyType != TIMESTAMPTZOID && table->keyType != TIMESTAMPOID &&
			 table->keyType != DATEOID))
			*reason = psprintf("%s is not range-partitioned on one date or timestamp column; partition maintenance skipped",
							   qualifiedName);
		else
			usable = true;
	}

	table_close(relation, AccessShareLock);
	return usable;
}

/*
 * MonthStartLiteral returns the first instant of a month as a bound literal
 * for the partition key's type.
 */
static char *
MonthStartLiteral(int year, int month, Oid keyType)
{
	while (month > 12)
	{
		month -= 12;
		year++;
	}
	if (keyType == TIMESTAMPTZOID)
		return psprintf("%04d-%02d-01 00:00:00+00", year, month);
	return psprintf("%04d-%02d-01", year, month);
}

/*
 * ExecuteDdl runs a partition's CREATE TABLE.
 */
static void
ExecuteDdl(void *argument)
{
	int			code = SPI_execute((const char *) argument, false, 0);

	if (code != SPI_OK_UTILITY)
		elog(ERROR, "could not create partition: %s", SPI_result_code_string(code));
}

/*
 * ExecuteDdlAsOwner is the body of a partition's subtransaction: the
 * CREATE TABLE runs as the partitioned table's owner (see RunAsRole), so the
 * code it reaches (index expressions, the default partition's constraints)
 * runs with that owner's rights, and the new partition is the owner's too.
 */
static void
ExecuteDdlAsOwner(void *argument)
{
	PartitionDdl *ddl = argument;

	RunAsRole(ddl->owner, ExecuteDdl, (void *) ddl->sql);
}

/*
 * RequireCallerActsForOwner refuses a caller that is not the partitioned
 * table's owner nor a member of its role: creating a partition takes
 * ownership of the table, as it did when cleanup() ran the DDL as its caller.
 */
static void
RequireCallerActsForOwner(const MonthlyTable *table)
{
	if (!has_privs_of_role(GetUserId(), table->owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of table %s to create its partitions",
						quote_qualified_identifier(table->schemaName, table->tableName)),
				 errdetail("cleanup() creates partitions as the table's owner, for its owner or members of the owner's role."),
				 errhint("Call cleanup() as a member of role \"%s\", or remove the table from interactions_cron.partitioned_tables.",
						 GetUserNameFromId(table->owner, false))));
}

/*
 * CreatePartition runs the CREATE TABLE ... PARTITION OF in a subtransaction.
 * It returns true when the partition was created, false (with a warning) when
 * the table's state does not allow it.
 */
static bool
CreatePartition(const MonthlyTable *table, const char *partitionName,
				const char *lower, const char *upper, List **warnings)
{
	PartitionDdl ddl = {table->owner,
		psprintf("CREATE TABLE %s PARTITION OF %s FOR VALUES FROM (%s) TO (%s)",
				 quote_qualified_identifier(table->schemaName, partitionName),
				 quote_qualified_identifier(table->schemaName, table->tableName),
				 quote_literal_cstr(lower), quote_literal_cstr(upper))};
	ErrorData  *error;

	RequireCallerActsForOwner(table);
	error = RunInSubtransaction(ExecuteDdlAsOwner, &ddl);

	if (error == NULL)
		return true;
	if (error->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE)
		RaiseLockTimeout(quote_qualified_identifier(table->schemaName, table->tableName));
	if (error->sqlerrcode != ERRCODE_CHECK_VIOLATION &&
		error->sqlerrcode != ERRCODE_INVALID_OBJECT_DEFINITION)
		ReThrowError(error);

	AddWarning(warnings, CurrentMemoryContext,
			   psprintf("partition %s.%s not created: %s",
						table->schemaName, partitionName, error->message));
	return false;
}

/*
 * EnsureTablePartitions creates the missing monthly partitions of one table
 * and returns how many it created.
 */
static int
EnsureTablePartitions(const MonthlyTable *table, int year, int month, List **warnings)
{
	int			created = 0;

	for (int ahead = 0; ahead <= PremakeMonths; ahead++)
	{
		int			partitionYear = year + (month - 1 + ahead) / 12;
		int			partitionMonth = (month - 1 + ahead) % 12 + 1;
		char	   *partitionName = psprintf("%s_p%04d_%02d", table->tableName,
											 partitionYear, partitionMonth);

		if (strlen(partitionName) >= NAMEDATALEN)
		{
			AddWarning(warnings, CurrentMemoryContext,
					   psprintf("partition name %s is longer than %d bytes; not created",
								partitionName, NAMEDATALEN - 1));
			continue;
		}
		if (OidIsValid(get_relname_relid(partitionName, get_namespace_oid(table->schemaName, false))))
			continue;

		if (CreatePartition(table, partitionName,
							MonthStartLiteral(partitionYear, partitionMonth, table->keyType),
							MonthStartLiteral(partitionYear, partitionMonth + 1, table->keyType),
							warnings))
			created++;
	}
	return created;
}

/*
 * EnsureMonthlyPartitions works through interactions_cron.partitioned_tables
 * and returns the number of partitions created; skipped tables and months
 * are described in *warnings.
 */
int
EnsureMonthlyPartitions(TimestampTz now, List **warnings)
{
	List	   *names = SplitQualifiedNameList(PartitionedTablesSetting);
	ListCell   *cell;
	struct pg_tm tm;
	fsec_t		fractionUs;
	int			created = 0;
	int			nestLevel;

	if (timestamp2tm(now, NULL, &tm, &fractionUs, NULL, NULL) != 0)
		elog(ERROR, "current time out of range");

	/* Every lock taken for maintenance waits at most the partition lock timeout. */
	nestLevel = NewGUCNestLevel();
	(void) set_config_option("lock_timeout", psprintf("%d", PartitionLockTimeoutMs),
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);

	foreach(cell, names)
	{
		MonthlyTable table;
		char	   *reason = NULL;

		if (CheckMonthlyTable(lfirst(cell), &table, &reason))
			created += EnsureTablePartitions(&table, tm.tm_year, tm.tm_mon, warnings);
		else
			AddWarning(warnings, CurrentMemoryContext, reason);
	}

	AtEOXact_GUC(true, nestLevel);
	return created;
}
