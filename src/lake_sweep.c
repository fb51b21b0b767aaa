/*
 * lake_sweep.c
 *	  Removing the files a lost history placed past a tenant's checkpoint.
 *
 * A tenant's files are undone by its intent when a batch does not finish.
 * But a failover with asynchronous replication can lose whole exports:
 * their files are in the lake, and neither their checkpoint nor their
 * intent reached the new primary.  The next export writes those rows again,
 * in batches that need not start at the same rows, so their old files would
 * hold them a second time.  Once per tenant and history (see
 * CurrentLakeEpoch), and before a batch placed in this history is undone
 * (see SweepBeforeUndo in tenant_export.c), under the tenant's claim, every file
 * whose first row (its name) lies past the checkpoint is judged by what it
 * holds: if the table holds any of its rows past the checkpoint, rows the
 * export will write again, the file is removed.  No committed batch of this
 * history can have one (its files end at or before the checkpoint), and no
 * other export is placing files for the tenant.  A database found behind its own
 * lake (see MarkIfBehindLake in tenant_export.c) marks its checkpoint with
 * no database's history, so that its next claim sweeps too.  A checkpoint
 * that has no recorded history (new, reinstalled, or last exported by 1.0)
 * sweeps only the files that this database, or a physical copy of it,
 * placed in a history it does not have, which each file's origin tells
 * (see SinkOriginInLostHistory): a tenant's first export lost by a failover
 * to a standby that was not streaming then; and those that the databases
 * its checkpoint was adopted from placed in their lost histories (see
 * OriginInSourcesLostHistory).  Any other file there may be another
 * database's, or stand past a checkpoint set by hand.
 *
 * A removed file may also hold lines of rows the table does not have (a
 * long transaction whose commit never reached the new primary): they leave
 * the lake with it, as they left the database.  A file none of whose rows
 * the table holds past the checkpoint stays, lines and all: nothing will
 * write them again.  A file that cannot be judged (unreadable, a line that
 * is not a row of ours, an id the column's type no longer reads, a lock
 * wait cut short, a duplicate another database placed in a history this
 * one never had, or any file of such a database beside files to remove)
 * fails the sweep, which then removes nothing: the history stays
 * unrecorded and the tenant unexported, so that the next claim sweeps
 * again.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "interactions_cron/checkpoint.h"
#include "interactions_cron/file_sink.h"
#include "interactions_cron/hive_path.h"
#include "interactions_cron/lake_sweep.h"
#include "interactions_cron/ndjson.h"
#include "interactions_cron/spi_plans.h"
#include "interactions_cron/subtransaction.h"
#include "interactions_cron/tenants.h"

/*
 * The origins of the databases a tenant's checkpoint was adopted from (see
 * CheckpointAdoptedFrom), read when a file of another database first needs
 * them.
 */
typedef struct AdoptedSources
{
	const char *tenantId;
	MemoryContext context;		/* where the list lives */
	bool		read;
	List	   *origins;
} AdoptedSources;

/* A file of the tenant, judged by its rows in a subtransaction. */
typedef struct FileCheck
{
	ExportSink *sink;
	const ConfiguredTable *history;
	const char *tenantId;
	const char *relativePath;
	CheckpointPosition checkpoint;
	SweepScope	scope;			/* whether it is judged at all: see InSweepScope */
	AdoptedSources *sources;
	bool		originRead;
	char	   *origin;			/* its origin (see SinkFileOrigin), once read */
	bool		pastCheckpoint; /* its first row lies past the checkpoint; out of
								 * scope, its name (see KeepOutOfScope) */
	bool		rewritten;		/* the verdict: the export will write some of its rows again */
} FileCheck;

/* The rows a file holds, one a line, as text. */
typedef struct FileRows
{
	List	   *ids;
	List	   *createdAts;		/* as written: see CreatedTextAsColumnType */
} FileRows;

/*
 * ReadFileRows returns the (created, id) of the first maxRows rows a file
 * holds (all of them when maxRows is negative), one a line, under the
 * created and id columns' names.  Only those two members are decoded (see
 * NdjsonLineMembers): the others are any JSON the table's columns held.
 */
static FileRows
ReadFileRows(StringInfo content, const ConfiguredTable *history, const char *relativePath, int maxRows)
{
	const char *const keys[2] = {history->columns[HISTORY_ID_COLUMN].name,
	history->columns[HISTORY_CREATED_COLUMN].name};
	FileRows	rows = {NIL, NIL};
	char	   *line = content->data;
	char	   *end = content->data + content->len;
	int			lineNumber = 0;
	MemoryContext rowsContext = CurrentMemoryContext;
	MemoryContext lineContext = AllocSetContextCreate(CurrentMemoryContext, "interactions_cron file line",
													  ALLOCSET_SMALL_SIZES);

	while (line < end && (maxRows < 0 || list_length(rows.ids) < maxRows))
	{
		char	   *newline = memchr(line, '\n', end - line);
		char	   *lineEnd = newline != NULL ? newline : end;
		char	   *values[2];

		lineNumber++;
		if (lineEnd > line)
		{
			MemoryContextSwitchTo(lineContext);
			if (!NdjsonLineMembers(line, lineEnd - line, 2, keys, values))
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("line %d of \"%s\" is not a JSON object", lineNumber, relativePath)));
			for (int i = 0; i < 2; i++)
				if (values[i] == NULL)
					ereport(ERROR,
							(errcode(ERRCODE_DATA_CORRUPTED),
							 errmsg("line %d of \"%s\" has no value \"%s\"", lineNumber, relativePath, keys[i])));
			MemoryContextSwitchTo(rowsContext);
			rows.ids = lappend(rows.ids, pstrdup(values[0]));
			rows.createdAts = lappend(rows.createdAts, pstrdup(values[1]));
			MemoryContextReset(lineContext);
		}
		line = lineEnd + 1;
	}
	MemoryContextDelete(lineContext);
	return rows;
}

/*
 * CreatedTextAsColumnType returns SQL text converting a created value as a
 * file holds it (textExpression) to the column's type: a timestamp column's
 * wall-clock time is written as the instant it was in
 * interactions_cron.history_timezone (see ndjson.c), every other type in
 * its own text form.
 */
static char *
CreatedTextAsColumnType(const MappedColumn *created, const char *textExpression)
{
	if (IsLocalTimestamp(created))
		return InstantAsColumnType(created, psprintf("CAST(%s AS pg_catalog.timestamptz)", textExpression));
	return psprintf("CAST(%s AS %s)", textExpression, created->typeName);
}

/*
 * FirstRowPastCheckpoint returns the SQL condition that the file's first row,
 * with its created instant in $5 and its id in $6, lies past the checkpoint
 * ($2, $3), compared as the export compares positions: in the columns'
 * types, the id in its column's collation.  Every row of a file of ours
 * follows its first, so such a file holds nothing at or before the
 * checkpoint; every file a batch of this history confirmed ends at or
 * before it, and so is never judged, however its ids recur past it (only
 * (created, id) is unique).
 */
static const char *
FirstRowPastCheckpoint(const ConfiguredTable *history, CheckpointPosition checkpoint)
{
	const MappedColumn *created = &history->columns[HISTORY_CREATED_COLUMN];
	const MappedColumn *id = &history->columns[HISTORY_ID_COLUMN];
	const char *collate = ColumnCollateClause(id);

	/* A position without a last id holds the rows from its instant on. */
	if (checkpoint.id == NULL)
		return psprintf("%s >= %s", InstantAsColumnType(created, "$5"), InstantAsColumnType(created, "$2"));
	return psprintf("(%s, %s%s) > (%s, %s%s)",
					InstantAsColumnType(created, "$5"), TextAsColumnType(id, "$6"), collate,
					InstantAsColumnType(created, "$2"), TextAsColumnType(id, "$3"), collate);
}

/*
 * FileContent returns the whole content of the file a check judges,
 * decompressed when it is compressed.
 */
static StringInfo
FileContent(const FileCheck *check)
{
	return DecompressedContent(check->sink->ops->read(check->sink, check->relativePath), check->relativePath);
}

/* The parameters of the judging queries: see JudgeFileRows. */
#define JUDGE_PARAMETERS 7

/*
 * RunJudgingQuery runs one of a file's judging queries, which return one
 * boolean, as the history table's owner: the types' input functions are
 * code.  A NULL answer is false.
 */
static bool
RunJudgingQuery(const ConfiguredTable *history, const char *sql, Datum *values, const char *nulls)
{
	Oid			argumentTypes[JUDGE_PARAMETERS] = {TEXTOID, TIMESTAMPTZOID, TEXTOID, TEXTARRAYOID,
	TIMESTAMPTZOID, TEXTOID, TEXTARRAYOID};
	bool		isNull;
	bool		answer;

	ConnectSpi();
	RunQueryAsTableOwner(history, sql, JUDGE_PARAMETERS, argumentTypes, values, nulls, 1, "judge a file's rows");
	answer = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isNull)) && !isNull;
	FinishSpi();
	return answer;
}

/*
 * AdoptedSourcesList returns the origins the tenant's checkpoint was
 * adopted from, reading them the first time.
 */
static List *
AdoptedSourcesList(AdoptedSources *sources)
{
	if (!sources->read)
	{
		ConnectSpi();
		MemoryContextSwitchTo(sources->context);
		sources->origins = CheckpointAdoptedFrom(sources->tenantId);
		FinishSpi();
		sources->read = true;
	}
	return sources->origins;
}

/*
 * FileCheckOrigin returns the origin of the file a check judges (see
 * SinkFileOrigin), reading it the first time: on S3, a request.
 */
static const char *
FileCheckOrigin(FileCheck *check)
{
	if (!check->originRead)
	{
		check->origin = SinkFileOrigin(check->sink, check->relativePath);
		check->originRead = true;
	}
	return check->origin;
}

/*
 * InSweepScope says whether a check judges its file (see SweepScope): a
 * lost history's file is this database's, or that of a database the
 * checkpoint was adopted from, in a history other than the one it released
 * the tenant in (see OriginInSourcesLostHistory).
 */
static bool
InSweepScope(FileCheck *check)
{
	const char *origin;
	OriginParts parts;

	if (check->scope == SWEEP_EVERY_FILE)
		return true;
	origin = FileCheckOrigin(check);
	if (origin == NULL)
		return false;
	if (!SinkOriginIsAnotherDatabases(check->sink, origin))
		return SinkOriginInLostHistory(check->sink, origin);
	return ParseOrigin(origin, &parts) && OriginInSourcesLostHistory(AdoptedSourcesList(check->sources), &parts);
}

/*
 * KeepOutOfScope counts a file of another database that a sweep of lost
 * histories' files does not judge (see InSweepScope), named at or past the
 * checkpoint's instant, among the files it keeps: it may say that the
 * tenant is exported there now, which a sweep with files to remove must not
 * pass over (see RefuseBesideDuplicates).  Its first row is not compared
 * with the checkpoint: a file out of scope is never read, nor its id cast
 * to the column's type, since either could only fail the tenant.
 */
static void
KeepOutOfScope(FileCheck *check)
{
	const char *origin = FileCheckOrigin(check);

	check->pastCheckpoint = origin != NULL && SinkOriginIsAnotherDatabases(check->sink, origin);
}

/*
 * RefuseAnotherDatabasesFile fails the judgement of a duplicate (see
 * JudgeFileRows), or of a file kept beside duplicates (see
 * RefuseBesideDuplicates), that another database placed (see
 * SinkOriginIsAnotherDatabases) in a history that is not this one's (see
 * HistoryIsThisDatabases), past the checkpoint (or with none at all).
 * Such a file is that database's export of a tenant it exports now,
 * typically one that moved there after the backup this database was
 * restored from: the rows of it this table holds are the ones that were
 * copied over, and removing the file would lose the others.  A
 * dump restored anywhere, or pg_upgrade, keeps its source's histories
 * (export_histories) with the origin prefix each was drawn under, a
 * physical copy has this database's origin, and a DBA records as this
 * database's the history of one it replaces (doc/troubleshooting.md).  Two
 * databases of one cluster that descend from one database (CREATE DATABASE
 * ... TEMPLATE, a dump restored into the same cluster) each draw a history
 * id of their own (see CurrentHistoryId), so neither takes the other's
 * files for its own; nor do they take the files of the database they
 * descend from while it is still in the cluster (see
 * OriginDatabaseStillHere): the files of a database still in this cluster
 * are judged only in a history a DBA recorded as this database's.  Past a
 * checkpoint adopted from other databases, in this cluster or another, the
 * files they placed in histories other than the one each released the
 * tenant in are judged: a source's lost history is this database's to
 * sweep (see OriginInSourcesLostHistory).
 */
static void
RefuseAnotherDatabasesFile(FileCheck *check)
{
	const char *origin = FileCheckOrigin(check);
	OriginParts parts;
	Oid			placer;
	bool		refused;

	if (origin == NULL || !SinkOriginIsAnotherDatabases(check->sink, origin))
		return;
	if (!ParseOrigin(origin, &parts))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_FILE),
				 errmsg("another database placed it, with an origin of a form this extension never writes: \"%s\"",
						origin)));
	if (OriginInSourcesLostHistory(AdoptedSourcesList(check->sources), &parts))
		return;
	ConnectSpi();
	placer = OriginDatabaseStillHere(&parts);
	refused = !HistoryIsThisDatabases(&parts, OidIsValid(placer));
	FinishSpi();
	if (refused && OidIsValid(placer))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_FILE),
				 errmsg("another database placed it, in history %s, which is that database's (OID %u, still in this cluster)",
						parts.historyId, placer)));
	if (refused)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_FILE),
				 errmsg("another database placed it, in history %s, which this database has never had",
						parts.historyId)));
}

/*
 * JudgeFileRows sets check->rewritten when the file's first row lies past
 * the checkpoint (see FirstRowPastCheckpoint: its created instant and its id
 * from its name, or from its first line when the name holds the id only
 * shortened), the file is in the check's scope (see InSweepScope; another
 * database's out of it is kept, see KeepOutOfScope) and the table holds,
 * past the checkpoint, any row the file holds, by its (created, id), which
 * is unique where the id alone is not: the export will write it again, so
 * the file is a duplicate.  The first row is judged before the file is
 * read, so that a file of this history's last batch, which is named at the
 * checkpoint's instant, is never read: reading it could only fail.  A
 * duplicate another database placed is refused rather than removed (see
 * RefuseAnotherDatabasesFile); any other file stays whoever placed it, since
 * keeping it loses nothing and duplicates nothing, unless it says, beside
 * files to remove, that the tenant is exported elsewhere (see
 * RefuseBesideDuplicates).  Refusing every kept file of another database
 * would leave its tenant unexported for ever once nothing names that
 * database's history any more (a source's lost file, kept by the first sweep
 * past an adoption, judged again after the export cleared adopted_from).
 * The file is read whole (decompressed when compressed).
 */
static void
JudgeFileRows(void *argument)
{
	FileCheck  *check = argument;
	const ConfiguredTable *history = check->history;
	const MappedColumn *created = &history->columns[HISTORY_CREATED_COLUMN];
	const MappedColumn *id = &history->columns[HISTORY_ID_COLUMN];
	const char *name = strrchr(check->relativePath, '/');
	TimestampTz firstCreatedAt;
	char	   *firstId;
	StringInfo	content = NULL;
	FileRows	rows;
	Datum		values[JUDGE_PARAMETERS];
	char		nulls[JUDGE_PARAMETERS] = {' ', ' ', check->checkpoint.id ? ' ' : 'n', 'n', ' ', ' ', 'n'};

	if (!ParseBatchFileName(name != NULL ? name + 1 : check->relativePath, &firstCreatedAt, &firstId))
		return;
	if (!InSweepScope(check))
	{
		KeepOutOfScope(check);
		return;
	}
	if (firstId == NULL)
	{
		content = FileContent(check);
		rows = ReadFileRows(content, history, check->relativePath, 1);
		if (rows.ids == NIL)
			return;
		firstId = linitial(rows.ids);
	}
	values[0] = CStringGetTextDatum(check->tenantId);
	values[1] = TimestampTzGetDatum(check->checkpoint.createdAt);
	values[2] = check->checkpoint.id ? CStringGetTextDatum(check->checkpoint.id) : (Datum) 0;
	values[4] = TimestampTzGetDatum(firstCreatedAt);
	values[5] = CStringGetTextDatum(firstId);
	if (!RunJudgingQuery(history, psprintf("SELECT %s", FirstRowPastCheckpoint(history, check->checkpoint)),
						 values, nulls))
		return;
	check->pastCheckpoint = true;

	if (content == NULL)
		content = FileContent(check);
	rows = ReadFileRows(content, history, check->relativePath, -1);
	if (rows.ids == NIL)
		return;
	values[3] = TextArrayParameter(rows.ids);
	values[6] = TextArrayParameter(rows.createdAts);
	nulls[3] = nulls[6] = ' ';
	check->rewritten =
		RunJudgingQuery(history,
						psprintf("SELECT EXISTS (SELECT 1 FROM ROWS FROM (pg_catalog.unnest($4), pg_catalog.unnest($7)) AS f(u, c), %s h"
								 " WHERE %s AND h.%s = %s AND h.%s = %s)",
								 history->quotedName,
								 HistoryRowsAfter(history, "$1", "$2", "$3"),
								 created->quotedName, CreatedTextAsColumnType(created, "f.c"),
								 id->quotedName, TextAsColumnType(id, "f.u")),
						values, nulls);
	if (check->rewritten)
		RefuseAnotherDatabasesFile(check);
}

/*
 * FileHoldsRowsPastCheckpoint says whether the table holds, past the
 * checkpoint, any row a file of the tenant holds (see JudgeFileRows): a file
 * whose rows the export will write again.  A file that cannot be judged
 * does not, and why is logged; a cancel ends the judgement at once.
 */
bool
FileHoldsRowsPastCheckpoint(ExportSink *sink, const ConfiguredTable *history, const char *tenantId,
							const char *relativePath, CheckpointPosition checkpoint)
{
	AdoptedSources sources = {tenantId, CurrentMemoryContext, false, NIL};
	FileCheck	check = {sink, history, tenantId, relativePath, checkpoint, SWEEP_EVERY_FILE, &sources,
	false, NULL, false, false};
	ErrorData  *error = RunInSubtransaction(JudgeFileRows, &check);

	if (error == NULL)
		return check.rewritten;
	if (error->sqlerrcode == ERRCODE_QUERY_CANCELED)
		ReThrowError(error);
	ereport(LOG,
			(errmsg("interactions_cron: could not judge the rows of \"%s\": %s", relativePath, error->message)));
	return false;
}

/*
 * NamedPastCheckpoint says whether a file's name is one of ours naming a
 * first row at or past the checkpoint's instant: a file a lost history may
 * have placed.  Every other file (not ours, or a committed batch of an
 * earlier instant) is left alone unread.
 */
static bool
NamedPastCheckpoint(const char *relativePath, CheckpointPosition checkpoint)
{
	const char *name = strrchr(relativePath, '/');
	TimestampTz firstCreatedAt;
	char	   *firstId;

	return ParseBatchFileName(name != NULL ? name + 1 : relativePath, &firstCreatedAt, &firstId) &&
		firstCreatedAt >= checkpoint.createdAt;
}

/* A file of a sweep, with its origin once read (see FileCheckOrigin). */
typedef struct SweptFile
{
	char	   *relativePath;
	bool		originRead;
	char	   *origin;
} SweptFile;

/* A sweep of one tenant's files, as the sink's list hands them over. */
typedef struct FileSweep
{
	ExportSink *sink;
	const ConfiguredTable *history;
	const char *tenantId;
	CheckpointPosition checkpoint;
	SweepScope	scope;			/* which files it judges */
	List	   *passOver;		/* relative paths of files not to judge */
	AdoptedSources sources;
	MemoryContext sweepContext; /* where the result lives */
	MemoryContext fileContext;	/* one file's content, reset before the next */
	List	   *duplicates;		/* relative paths of the files to remove */
	List	   *kept;			/* the others named past the checkpoint: SweptFile */
	LakeSweep	result;
} FileSweep;

/*
 * NoteUnjudged counts a file the sweep could not judge, the first with its
 * error; a cancel ends the sweep at once.
 */
static void
NoteUnjudged(FileSweep *sweep, const char *relativePath, ErrorData *error)
{
	if (error->sqlerrcode == ERRCODE_QUERY_CANCELED)
		ReThrowError(error);
	if (sweep->result.unjudged++ == 0)
	{
		sweep->result.firstUnjudged = MemoryContextStrdup(sweep->sweepContext, relativePath);
		sweep->result.firstErrorCode = error->sqlerrcode;
		sweep->result.firstErrorMessage = MemoryContextStrdup(sweep->sweepContext, error->message);
	}
}

/*
 * CheckSweptFile runs body (JudgeFileRows, RefuseKeptFile) on the check of
 * one of the sweep's files, *check, in a subtransaction, and returns its
 * error, if any; a file kept earlier brings its origin, if it was read.  A
 * file is read whole: its memory goes before the next one is read.
 */
static ErrorData *
CheckSweptFile(FileSweep *sweep, const SweptFile *file, SubtransactionBody body, FileCheck *check)
{
	MemoryContext callerContext = CurrentMemoryContext;
	FileCheck	fresh = {sweep->sink, sweep->history, sweep->tenantId, file->relativePath,
	sweep->checkpoint, sweep->scope, &sweep->sources, file->originRead, file->origin, false, false};
	ErrorData  *error;

	*check = fresh;
	MemoryContextReset(sweep->fileContext);
	MemoryContextSwitchTo(sweep->fileContext);
	error = RunInSubtransaction(body, check);
	MemoryContextSwitchTo(callerContext);
	return error;
}

/*
 * JudgeListedFile judges one listed file named past the checkpoint by its
 * rows (see JudgeFileRows) and notes it for removal if the export will
 * write some of them again, or as kept (see RefuseBesideDuplicates); a file
 * it cannot judge is counted (see NoteUnjudged).
 */
static void
JudgeListedFile(const char *relativePath, void *argument)
{
	FileSweep  *sweep = argument;
	MemoryContext listContext = CurrentMemoryContext;
	SweptFile	listed = {(char *) relativePath, false, NULL};
	FileCheck	check;
	ErrorData  *error;

	if (!NamedPastCheckpoint(relativePath, sweep->checkpoint) ||
		StringListContains(sweep->passOver, relativePath))
		return;
	error = CheckSweptFile(sweep, &listed, JudgeFileRows, &check);
	if (error != NULL)
	{
		NoteUnjudged(sweep, relativePath, error);
		return;
	}
	if (check.pastCheckpoint)
	{
		/* The lists outlive the listing's memory, which a sink may reset per page. */
		MemoryContextSwitchTo(sweep->sweepContext);
		if (check.rewritten)
			sweep->duplicates = lappend(sweep->duplicates, pstrdup(relativePath));
		else
		{
			SweptFile  *kept = palloc(sizeof(SweptFile));

			kept->relativePath = pstrdup(relativePath);
			kept->originRead = check.originRead;
			kept->origin = check.origin != NULL ? pstrdup(check.origin) : NULL;
			sweep->kept = lappend(sweep->kept, kept);
		}
		MemoryContextSwitchTo(listContext);
	}
}

/* RefuseKeptFile is RefuseAnotherDatabasesFile for RunInSubtransaction. */
static void
RefuseKeptFile(void *argument)
{
	RefuseAnotherDatabasesFile(argument);
}

/*
 * RefuseBesideDuplicates counts as unjudged each file the sweep keeps that
 * another database placed in a history that is not this one's (see
 * RefuseAnotherDatabasesFile), when the sweep has duplicates to remove.
 * Such a file says that another database exports the tenant now (it moved
 * there after the backup this database was restored from): this database's
 * own lost files may then hold, beside rows this table holds, rows written
 * after the backup that only that database holds, behind its checkpoint,
 * and removing them would lose those.  Kept alone, such a file loses
 * nothing, so a sweep with nothing to remove passes it (the lost file of a
 * source a checkpoint was adopted from, kept by its first sweep).
 */
static void
RefuseBesideDuplicates(FileSweep *sweep)
{
	ListCell   *cell;

	if (sweep->duplicates == NIL)
		return;
	foreach(cell, sweep->kept)
	{
		SweptFile  *kept = lfirst(cell);
		FileCheck	check;
		ErrorData  *error = CheckSweptFile(sweep, kept, RefuseKeptFile, &check);

		if (error != NULL)
			NoteUnjudged(sweep, kept->relativePath, error);
	}
}

/*
 * RemoveDuplicates removes the files a sweep judged duplicates.
 */
static void
RemoveDuplicates(FileSweep *sweep)
{
	ListCell   *cell;

	foreach(cell, sweep->duplicates)
	{
		const char *relativePath = lfirst(cell);

		ereport(LOG,
				(errmsg("interactions_cron: removing \"%s\", which holds rows past its tenant's checkpoint that an export this database's history lost wrote",
						relativePath)));
		sweep->sink->ops->remove(sweep->sink, relativePath);
		sweep->result.removed++;
	}
}

/*
 * SweepLostFiles removes the tenant's files that a lost history placed past
 * its checkpoint (see JudgeFileRows), of those in scope (see SweepScope),
 * none of passOver (paths relative to the lake's root), and reports how
 * many, and how many it could not judge, with the first such file and its
 * error.  Files are removed only once every one is judged, and none while
 * another database's file says the tenant is exported there now (see
 * RefuseBesideDuplicates): the rows of a duplicate are written again only
 * if the tenant exports on, which a file it could not judge stops.  The
 * caller holds the tenant's claim; a cancel ends the sweep at once.
 */
LakeSweep
SweepLostFiles(ExportSink *sink, const ConfiguredTable *history, const char *tenantId,
			   CheckpointPosition checkpoint, SweepScope scope, List *passOver)
{
	FileSweep	sweep = {sink, history, tenantId, checkpoint, scope, passOver,
	{tenantId, CurrentMemoryContext, false, NIL}, CurrentMemoryContext, NULL, NIL, NIL, {0, 0, NULL, 0, NULL}};

	if (scope == SWEEP_LOST_HISTORY_FILES && sink->ops->origin == NULL)
		return sweep.result;

	sweep.fileContext = AllocSetContextCreate(CurrentMemoryContext, "interactions_cron lake sweep file",
											  ALLOCSET_DEFAULT_SIZES);
	sink->ops->list(sink, psprintf("exports/%s/interaction_history", HiveEscapePathSegment(tenantId)),
					JudgeListedFile, &sweep);
	if (sweep.result.unjudged == 0)
		RefuseBesideDuplicates(&sweep);
	MemoryContextDelete(sweep.fileContext);
	if (sweep.result.unjudged == 0)
		RemoveDuplicates(&sweep);
	return sweep.result;
}
