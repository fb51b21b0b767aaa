/*
 * hive_path.c
 *	  Relative paths of exported files:
 *	  exports/{tenant}/interaction_history/year=YYYY/month=MM/day=DD/batch-{ts}-{id}.json
 *
 * Tenant ids are arbitrary text, so they are escaped the way Hive escapes
 * partition values: whatever the id holds, it becomes exactly one path
 * segment that cannot name a parent or a sibling directory.
 */
#include "postgres.h"

#include <ctype.h>

#include "common/cryptohash.h"
#include "common/sha2.h"
#include "lib/stringinfo.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "interactions_cron/hive_path.h"

/* Longest file name most file systems accept (NAME_MAX on Linux). */
#define MAX_PATH_SEGMENT_BYTES 255

/*
 * Longest row id kept whole in a file name, once escaped; a longer one keeps
 * this many bytes (whole escapes only) before its hash.
 */
#define MAX_FILE_NAME_ID_BYTES 64
#define MAX_FILE_NAME_ID_PREFIX_BYTES 40

/*
 * NeedsHiveEscape says whether Hive's FileUtils escapes this byte: control
 * characters and the characters that mean something in paths or URIs.
 */
static bool
NeedsHiveEscape(unsigned char c)
{
	return c < 0x20 || c == 0x7F || strchr("\"#%'*/:=?\\{[]^", c) != NULL;
}

/*
 * IsPlainRelativePath says whether a path, relative to the lake's root, names
 * a file the way the export does: segments separated by single slashes, none
 * empty, "." or "..".  Paths read back (an intent's, a listing's keys) are
 * checked with it before a file they name is removed: "." or ".." would name
 * a directory, or climb out of the tenant's (a store normalises them too).
 */
bool
IsPlainRelativePath(const char *path)
{
	const char *segment = path;

	for (;;)
	{
		size_t		length = strcspn(segment, "/");

		if (length == 0 || (length == 1 && segment[0] == '.') ||
			(length == 2 && segment[0] == '.' && segment[1] == '.'))
			return false;
		if (segment[length] == '\0')
			return true;
		segment += length + 1;
	}
}

/*
 * HiveEscapePathSegment escapes a tenant id into one safe path segment.  A
 * leading "_" or "." is escaped (%5F, %2E): Hadoop's, Spark's and Hive's file
 * listings skip such names as hidden, and "." and ".." could name the current
 * or the parent directory.  An empty id or one too long for a file name is an
 * error for that tenant, never a truncated or shared directory.
 */
char *
HiveEscapePathSegment(const char *value)
{
	StringInfoData segment;

	if (value[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("tenant id is empty and cannot name an export directory")));

	initStringInfo(&segment);
	for (const unsigned char *p = (const unsigned char *) value; *p != '\0'; p++)
	{
		bool		hiddenStart = p == (const unsigned char *) value && (*p == '_' || *p == '.');

		if (hiddenStart || NeedsHiveEscape(*p))
			appendStringInfo(&segment, "%%%02X", *p);
		else
			appendStringInfoChar(&segment, (char) *p);
	}

	if (segment.len > MAX_PATH_SEGMENT_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("tenant id is too long for an export directory name (%d bytes once escaped, at most %d)",
						segment.len, MAX_PATH_SEGMENT_BYTES),
				 errhint("Tenant ids used with interactions_cron must escape to at most %d bytes.",
						 MAX_PATH_SEGMENT_BYTES)));

	return segment.data;
}

/*
 * UtcDateOf breaks a timestamp into its UTC calendar fields and says whether
 * they fit the layout: a finite instant in the years 1 to 9999.
 */
static bool
UtcDateOf(TimestampTz value, struct pg_tm *tm, fsec_t *fractionUs)
{
	return !TIMESTAMP_NOT_FINITE(value) &&
		timestamp2tm(value, NULL, tm, fractionUs, NULL, NULL) == 0 &&
		tm->tm_year >= 1 && tm->tm_year <= 9999;
}

/*
 * HasDayPartition says whether rows created at value can be placed in the
 * year=/month=/day= layout.
 */
bool
HasDayPartition(TimestampTz value)
{
	struct pg_tm tm;
	fsec_t		fractionUs;

	return UtcDateOf(value, &tm, &fractionUs);
}

/*
 * RequireUtcDate is UtcDateOf for callers that checked HasDayPartition.
 */
static void
RequireUtcDate(TimestampTz value, struct pg_tm *tm, fsec_t *fractionUs)
{
	if (!UtcDateOf(value, tm, fractionUs))
		elog(ERROR, "created_at value %s has no day partition", timestamptz_to_str(value));
}

/*
 * BatchDirectory returns the partition directory, relative to export_dir, of
 * rows created at createdAt (its UTC day).
 */
char *
BatchDirectory(const char *escapedTenantId, TimestampTz createdAt)
{
	struct pg_tm tm;
	fsec_t		fractionUs;

	RequireUtcDate(createdAt, &tm, &fractionUs);
	return psprintf("exports/%s/interaction_history/year=%04d/month=%02d/day=%02d",
					escapedTenantId, tm.tm_year, tm.tm_mon, tm.tm_mday);
}

/*
 * FileNameId returns a row id's text as it appears in file names: bytes
 * other than letters, digits, "-", "_" and "." escaped as %XX, so that any
 * id (text, uuid, numeric) gives a name that is safe in paths and S3 keys
 * and distinct for distinct ids.  An id longer than MAX_FILE_NAME_ID_BYTES
 * once escaped keeps its first bytes, then "~" (never part of an escaped
 * id) and the first 16 hex digits of its SHA-256: bounded, deterministic,
 * and distinct from every other id's form.
 */
static char *
FileNameId(const char *id)
{
	StringInfoData escaped;
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	pg_cryptohash_ctx *hash;
	int			kept = 0;

	initStringInfo(&escaped);
	for (const unsigned char *p = (const unsigned char *) id; *p != '\0'; p++)
	{
		if (isalnum(*p) && *p < 0x80)
			appendStringInfoChar(&escaped, (char) *p);
		else if (*p == '-' || *p == '_' || *p == '.')
			appendStringInfoChar(&escaped, (char) *p);
		else
			appendStringInfo(&escaped, "%%%02X", *p);
		if (escaped.len <= MAX_FILE_NAME_ID_PREFIX_BYTES)
			kept = escaped.len;
	}
	if (escaped.len <= MAX_FILE_NAME_ID_BYTES)
		return escaped.data;

	hash = pg_cryptohash_create(PG_SHA256);
	if (pg_cryptohash_init(hash) < 0 ||
		pg_cryptohash_update(hash, (const uint8 *) id, strlen(id)) < 0 ||
		pg_cryptohash_final(hash, digest, sizeof(digest)) < 0)
		elog(ERROR, "could not compute the SHA-256 of a row id: %s", pg_cryptohash_error(hash));
	pg_cryptohash_free(hash);

	escaped.len = kept;
	escaped.data[kept] = '\0';
	appendStringInfoChar(&escaped, '~');
	for (int i = 0; i < 8; i++)
		appendStringInfo(&escaped, "%02x", digest[i]);
	return escaped.data;
}

/*
 * BatchFileName names a file after its first row: the created instant to
 * the microsecond (2026-03-30T02-00-00-000123Z; the seed's example stops at
 * milliseconds, which two distinct rows can share) and the row's id (see
 * FileNameId); compressed files end in .json.gz or .json.zst.  (created, id) is unique, so two
 * batches never share a name, and a retry of the same rows reproduces the
 * same name.
 */
char *
BatchFileName(TimestampTz firstCreatedAt, const char *firstId, CompressionKind compression)
{
	struct pg_tm tm;
	fsec_t		fractionUs;

	RequireUtcDate(firstCreatedAt, &tm, &fractionUs);
	return psprintf("batch-%04d-%02d-%02dT%02d-%02d-%02d-%06dZ-%s.json%s",
					tm.tm_year, tm.tm_mon, tm.tm_mday,
					tm.tm_hour, tm.tm_min, tm.tm_sec,
					(int) fractionUs, FileNameId(firstId), CompressionFileSuffix(compression));
}

/*
 * UnescapeFileNameId decodes a file name's id (see FileNameId), or returns
 * NULL for a shortened one, whose full text the name does not hold.
 */
static char *
UnescapeFileNameId(const char *escaped, int length)
{
	StringInfoData id;

	if (memchr(escaped, '~', length) != NULL)
		return NULL;
	initStringInfo(&id);
	for (int i = 0; i < length; i++)
	{
		unsigned int byte;

		if (escaped[i] == '%' && i + 2 < length + 1 && sscanf(escaped + i + 1, "%2x", &byte) == 1)
		{
			appendStringInfoChar(&id, (char) byte);
			i += 2;
		}
		else
			appendStringInfoChar(&id, escaped[i]);
	}
	return id.data;
}

/*
 * ParseBatchFileName reads back what BatchFileName put in a name: the first
 * row's created instant and id (*firstId NULL when the name holds only a
 * shortened id).  Names of any other form (1.0's millisecond names, files
 * that are not ours) give false.
 */
bool
ParseBatchFileName(const char *name, TimestampTz *firstCreatedAt, char **firstId)
{
	struct pg_tm tm;
	int			fraction;
	int			fractionStart = 0;
	int			fractionEnd = 0;
	int			idStart = 0;
	size_t		length;
	const char *extension;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(name, "batch-%4d-%2d-%2dT%2d-%2d-%2d-%n%6d%nZ-%n",
			   &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
			   &fractionStart, &fraction, &fractionEnd, &idStart) != 7 ||
		idStart == 0 || fractionEnd - fractionStart != 6)
		return false;
	/* The extension is the name's end: an id may itself hold ".json". */
	length = strlen(name);
	if (length > 8 && strcmp(name + length - 8, ".json.gz") == 0)
		extension = name + length - 8;
	else if (length > 9 && strcmp(name + length - 9, ".json.zst") == 0)
		extension = name + length - 9;
	else if (length > 5 && strcmp(name + length - 5, ".json") == 0)
		extension = name + length - 5;
	else
		return false;
	if (extension <= name + idStart)
		return false;
	if (tm2timestamp(&tm, fraction, NULL, firstCreatedAt) != 0)
		return false;
	*firstId = UnescapeFileNameId(name + idStart, extension - (name + idStart));
	return true;
}

/*
 * UtcDayNumber returns the number of the UTC day holding value, so that rows
 * can be compared by day without breaking each one into calendar fields.
 */
int64
UtcDayNumber(TimestampTz value)
{
	int64		day = value / USECS_PER_DAY;

	if (value < 0 && value % USECS_PER_DAY != 0)
		day--;
	return day;
}
