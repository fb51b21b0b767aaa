/*
 * ndjson.c
 *	  Column-type-aware JSON serialisation of rows, one line per row.
 *
 * The writer decides once per column how its values are written, so that the
 * per-row work is a switch and an append: no to_json calls, no catalog
 * lookups.  Values follow PostgreSQL's own to_json conventions where a lake
 * reader accepts them (non-finite numbers are strings, json is embedded), and
 * timestamps with time zone are always written in UTC with a trailing Z, as
 * are timestamps without, when the writer is told the zone they were written
 * in (a Prisma-style table's UTC wall-clock times).
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/jsonapi.h"
#include "common/shortest_dec.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/arrayaccess.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "interactions_cron/ndjson.h"
#include "interactions_cron/pg_compat.h"

typedef enum JsonValueKind
{
	JSON_VALUE_INT2,
	JSON_VALUE_INT4,
	JSON_VALUE_INT8,
	JSON_VALUE_TEXT,
	JSON_VALUE_FLOAT4,
	JSON_VALUE_FLOAT8,
	JSON_VALUE_NUMERIC,
	JSON_VALUE_BOOLEAN,
	JSON_VALUE_JSON,
	JSON_VALUE_JSONB,
	JSON_VALUE_TIMESTAMPTZ,
	JSON_VALUE_TIMESTAMP,
	JSON_VALUE_ARRAY,
	JSON_VALUE_STRING
} JsonValueKind;

/* How values of one type are written; arrays point at their element's. */
typedef struct JsonValueWriter
{
	JsonValueKind kind;
	Oid			typeId;
	pg_tz	   *localZone;		/* timestamp values: their zone, or NULL */
	FmgrInfo	outputFunction;
	struct JsonValueWriter *element;
	int16		elementLength;
	bool		elementByValue;
	char		elementAlign;
} JsonValueWriter;

struct NdjsonRowWriter
{
	int			columnCount;
	char	  **keyPrefixes;	/* '{"name":' for the first column, ',"name":' after */
	int		   *keyPrefixLengths;
	JsonValueWriter *columns;
};

static void AppendValue(JsonValueWriter *writer, StringInfo out, Datum value);
static void AppendJsonString(StringInfo out, const char *text, int length);

/*
 * AppendBytes and AppendByte are appendBinaryStringInfo and
 * appendStringInfoChar inlined: they run several times for every value of
 * every row, where the calls cost as much as the copies.
 */
static inline void
AppendBytes(StringInfo out, const char *data, int length)
{
	if (out->len + length >= out->maxlen)
		enlargeStringInfo(out, length);
	memcpy(out->data + out->len, data, length);
	out->len += length;
	out->data[out->len] = '\0';
}

static inline void
AppendByte(StringInfo out, char byte)
{
	appendStringInfoCharMacro(out, byte);
}

/*
 * ClassifyType picks the JSON form for a type, looking through domains.
 */
static JsonValueKind
ClassifyType(Oid typeId)
{
	switch (getBaseType(typeId))
	{
		case INT2OID:
			return JSON_VALUE_INT2;
		case INT4OID:
			return JSON_VALUE_INT4;
		case INT8OID:
			return JSON_VALUE_INT8;
		case OIDOID:
			return JSON_VALUE_NUMERIC;	/* unsigned: its text form is a plain number */
		case TEXTOID:
		case VARCHAROID:
			return JSON_VALUE_TEXT;
		case FLOAT4OID:
			return JSON_VALUE_FLOAT4;
		case FLOAT8OID:
			return JSON_VALUE_FLOAT8;
		case NUMERICOID:
			return JSON_VALUE_NUMERIC;
		case BOOLOID:
			return JSON_VALUE_BOOLEAN;
		case JSONOID:
			return JSON_VALUE_JSON;
		case JSONBOID:
			return JSON_VALUE_JSONB;
		case TIMESTAMPTZOID:
			return JSON_VALUE_TIMESTAMPTZ;
		case TIMESTAMPOID:
			return JSON_VALUE_TIMESTAMP;
		default:
			return OidIsValid(get_element_type(getBaseType(typeId))) ?
				JSON_VALUE_ARRAY : JSON_VALUE_STRING;
	}
}

/*
 * InitValueWriter prepares the writer for one type, recursing into arrays.
 */
static void
InitValueWriter(JsonValueWriter *writer, Oid typeId, pg_tz *localZone)
{
	Oid			outputFunctionId;
	bool		isVarlena;

	writer->typeId = typeId;
	writer->localZone = localZone;
	writer->kind = ClassifyType(typeId);
	getTypeOutputInfo(typeId, &outputFunctionId, &isVarlena);
	fmgr_info(outputFunctionId, &writer->outputFunction);
	writer->element = NULL;

	if (writer->kind == JSON_VALUE_ARRAY)
	{
		Oid			elementType = get_element_type(getBaseType(typeId));

		writer->element = palloc(sizeof(JsonValueWriter));
		InitValueWriter(writer->element, elementType, localZone);
		get_typlenbyvalalign(elementType, &writer->elementLength,
							 &writer->elementByValue, &writer->elementAlign);
	}
}

/*
 * NdjsonCreateRowWriter builds the per-column plan for rows of tupleDesc,
 * including the pre-escaped object keys.  With a localZone, timestamp
 * (without time zone) values are read as wall-clock times in that zone and
 * written as UTC instants.
 */
NdjsonRowWriter *
NdjsonCreateRowWriter(TupleDesc tupleDesc, pg_tz *localZone)
{
	NdjsonRowWriter *writer = palloc0(sizeof(NdjsonRowWriter));

	writer->columnCount = tupleDesc->natts;
	writer->keyPrefixes = palloc(sizeof(char *) * tupleDesc->natts);
	writer->keyPrefixLengths = palloc(sizeof(int) * tupleDesc->natts);
	writer->columns = palloc0(sizeof(JsonValueWriter) * tupleDesc->natts);

	for (int i = 0; i < tupleDesc->natts; i++)
	{
		Form_pg_attribute attribute = TupleDescAttr(tupleDesc, i);
		StringInfoData key;

		initStringInfo(&key);
		appendStringInfoChar(&key, i == 0 ? '{' : ',');
		AppendJsonString(&key, NameStr(attribute->attname),
						   strlen(NameStr(attribute->attname)));
		appendStringInfoChar(&key, ':');
		writer->keyPrefixes[i] = key.data;
		writer->keyPrefixLengths[i] = key.len;

		InitValueWriter(&writer->columns[i], attribute->atttypid, localZone);
	}

	return writer;
}

/*
 * NdjsonAppendRow writes one row as a JSON object followed by a newline.
 * Output functions allocate, so callers reset a per-row context afterwards.
 */
void
NdjsonAppendRow(NdjsonRowWriter *writer, StringInfo out, TupleTableSlot *slot)
{
	slot_getallattrs(slot);

	if (writer->columnCount == 0)
		AppendByte(out, '{');

	for (int i = 0; i < writer->columnCount; i++)
	{
		AppendBytes(out, writer->keyPrefixes[i],
							   writer->keyPrefixLengths[i]);
		if (slot->tts_isnull[i])
			AppendBytes(out, "null", 4);
		else
			AppendValue(&writer->columns[i], out, slot->tts_values[i]);
	}

	AppendBytes(out, "}\n", 2);
}

/*
 * AppendJsonString appends text as a quoted JSON string.  Runs of plain
 * characters are copied in one go; the text is converted to UTF-8 first when
 * the database uses another encoding.
 */
static void
AppendJsonString(StringInfo out, const char *text, int length)
{
	const char *utf8 = text;
	const char *runStart;
	const char *end;

	if (GetDatabaseEncoding() != PG_UTF8)
	{
		utf8 = pg_server_to_any(text, length, PG_UTF8);
		if (utf8 != text)
			length = strlen(utf8);
	}

	AppendByte(out, '"');
	runStart = utf8;
	end = utf8 + length;
	for (const char *p = utf8; p < end; p++)
	{
		unsigned char c = (unsigned char) *p;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;

		AppendBytes(out, runStart, p - runStart);
		switch (c)
		{
			case '"':
				AppendBytes(out, "\\\"", 2);
				break;
			case '\\':
				AppendBytes(out, "\\\\", 2);
				break;
			case '\n':
				AppendBytes(out, "\\n", 2);
				break;
			case '\r':
				AppendBytes(out, "\\r", 2);
				break;
			case '\t':
				AppendBytes(out, "\\t", 2);
				break;
			default:
				appendStringInfo(out, "\\u%04x", c);
				break;
		}
		runStart = p + 1;
	}
	AppendBytes(out, runStart, end - runStart);
	AppendByte(out, '"');
}

/*
 * PutDigits writes value as exactly width decimal digits and returns the
 * position after them.
 */
static char *
PutDigits(char *position, int value, int width)
{
	for (int i = width - 1; i >= 0; i--)
	{
		position[i] = (char) ('0' + value % 10);
		value /= 10;
	}
	return position + width;
}

/*
 * AppendIsoTimestamp writes a finite timestamp as ISO 8601 with trailing zeros
 * of the fraction dropped; "Z" is added for instants.  Years outside 1..9999
 * have no plain ISO 8601 form, so they fall back to the text output.  It
 * runs for every timestamp of every row, hence the digits by hand.
 */
static bool
AppendIsoTimestamp(StringInfo out, Timestamp value, bool isInstant)
{
	struct pg_tm tm;
	fsec_t		fractionUs;
	char		text[40];
	char	   *p = text;

	if (TIMESTAMP_NOT_FINITE(value) ||
		timestamp2tm(value, NULL, &tm, &fractionUs, NULL, NULL) != 0 ||
		tm.tm_year < 1 || tm.tm_year > 9999)
		return false;

	*p++ = '"';
	p = PutDigits(p, tm.tm_year, 4);
	*p++ = '-';
	p = PutDigits(p, tm.tm_mon, 2);
	*p++ = '-';
	p = PutDigits(p, tm.tm_mday, 2);
	*p++ = 'T';
	p = PutDigits(p, tm.tm_hour, 2);
	*p++ = ':';
	p = PutDigits(p, tm.tm_min, 2);
	*p++ = ':';
	p = PutDigits(p, tm.tm_sec, 2);
	if (fractionUs != 0)
	{
		*p++ = '.';
		p = PutDigits(p, (int) fractionUs, 6);
		while (p[-1] == '0')
			p--;
	}
	if (isInstant)
		*p++ = 'Z';
	*p++ = '"';
	AppendBytes(out, text, p - text);
	return true;
}

/*
 * LocalTimestampToInstant returns the instant at which a zone's clocks
 * showed a wall-clock time, as timestamp AT TIME ZONE does (in a gap or an
 * overlap of daylight saving time, the same instant it picks).  Infinities
 * stay infinite.
 */
TimestampTz
LocalTimestampToInstant(Timestamp local, pg_tz *zone)
{
	struct pg_tm tm;
	fsec_t		fractionUs;
	int			offset;
	TimestampTz instant;

	if (TIMESTAMP_NOT_FINITE(local))
		return local;
	if (timestamp2tm(local, NULL, &tm, &fractionUs, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	offset = DetermineTimeZoneOffset(&tm, zone);
	if (tm2timestamp(&tm, fractionUs, &offset, &instant) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return instant;
}

/*
 * NdjsonAppendUtcTimestamp writes an instant as an ISO 8601 UTC string.
 */
void
NdjsonAppendUtcTimestamp(StringInfo out, TimestampTz value)
{
	if (!AppendIsoTimestamp(out, value, true))
	{
		char	   *text = DatumGetCString(DirectFunctionCall1(timestamptz_out,
															   TimestampTzGetDatum(value)));

		AppendJsonString(out, text, strlen(text));
	}
}

/*
 * AppendEmbeddedJson copies json text in place.  json keeps its input's
 * whitespace, and a raw newline there would split the NDJSON line; newlines
 * can only be insignificant whitespace in valid json, so they become spaces.
 */
static void
AppendEmbeddedJson(StringInfo out, const char *text)
{
	int			start = out->len;

	appendStringInfoString(out, text);
	for (int i = start; i < out->len; i++)
	{
		if (out->data[i] == '\n' || out->data[i] == '\r')
			out->data[i] = ' ';
	}
}

/*
 * AppendJsonbScalar writes one scalar of a jsonb value.
 */
static void
AppendJsonbScalar(StringInfo out, const JsonbValue *scalar)
{
	switch (scalar->type)
	{
		case jbvNull:
			AppendBytes(out, "null", 4);
			break;
		case jbvString:
			AppendJsonString(out, scalar->val.string.val, scalar->val.string.len);
			break;
		case jbvNumeric:
			appendStringInfoString(out, DatumGetCString(DirectFunctionCall1(numeric_out,
																			NumericGetDatum(scalar->val.numeric))));
			break;
		case jbvBool:
			appendStringInfoString(out, scalar->val.boolean ? "true" : "false");
			break;
		default:
			elog(ERROR, "unexpected jsonb scalar type %d", (int) scalar->type);
	}
}

/*
 * AppendJsonb writes a jsonb value as compact JSON.  Walking it here, rather
 * than through JsonbToCString, escapes its strings in place as every other
 * string is, with no copy of each key and value on the way.
 */
static void
AppendJsonb(StringInfo out, Jsonb *jsonb)
{
	JsonbIterator *iterator;
	JsonbIteratorToken token;
	JsonbValue	value;
	bool		needComma = false;

	if (JB_ROOT_IS_SCALAR(jsonb))
	{
		(void) JsonbExtractScalar(&jsonb->root, &value);
		AppendJsonbScalar(out, &value);
		return;
	}

	iterator = JsonbIteratorInit(&jsonb->root);
	while ((token = JsonbIteratorNext(&iterator, &value, false)) != WJB_DONE)
	{
		if (needComma && (token == WJB_KEY || token == WJB_ELEM ||
						  token == WJB_BEGIN_ARRAY || token == WJB_BEGIN_OBJECT))
			AppendByte(out, ',');
		switch (token)
		{
			case WJB_BEGIN_ARRAY:
			case WJB_BEGIN_OBJECT:
				AppendByte(out, token == WJB_BEGIN_ARRAY ? '[' : '{');
				needComma = false;
				break;
			case WJB_END_ARRAY:
			case WJB_END_OBJECT:
				AppendByte(out, token == WJB_END_ARRAY ? ']' : '}');
				needComma = true;
				break;
			case WJB_KEY:
				AppendJsonString(out, value.val.string.val, value.val.string.len);
				AppendByte(out, ':');
				needComma = false;
				break;
			case WJB_VALUE:
			case WJB_ELEM:
				AppendJsonbScalar(out, &value);
				needComma = true;
				break;
			case WJB_DONE:
				break;
		}
	}
}

/*
 * AppendArrayLevel writes dimension `level` of an array as nested JSON arrays.
 */
static void
AppendArrayLevel(JsonValueWriter *writer, StringInfo out,
				 array_iter *iterator, int *index,
				 int level, int dimensionCount, const int *dimensions)
{
	AppendByte(out, '[');
	for (int i = 0; i < dimensions[level]; i++)
	{
		if (i > 0)
			AppendByte(out, ',');

		if (level + 1 < dimensionCount)
			AppendArrayLevel(writer, out, iterator, index,
							 level + 1, dimensionCount, dimensions);
		else
		{
			bool		isNull;
			Datum		element = array_iter_next(iterator, &isNull, (*index)++,
												  writer->elementLength,
												  writer->elementByValue,
												  writer->elementAlign);

			if (isNull)
				AppendBytes(out, "null", 4);
			else
				AppendValue(writer->element, out, element);
		}
	}
	AppendByte(out, ']');
}

/*
 * AppendNumberText writes the text of a number, quoting the non-finite ones
 * (NaN, Infinity, -Infinity) that JSON has no literal for.
 */
static void
AppendNumberText(StringInfo out, const char *text)
{
	if (strcmp(text, "NaN") == 0 || strstr(text, "Infinity") != NULL)
		AppendJsonString(out, text, strlen(text));
	else
		appendStringInfoString(out, text);
}

/*
 * AppendShortestFloat writes a float4 or float8 as the shortest decimal that
 * reads back as the same value, whatever the session's extra_float_digits
 * (float8out would round to 15 digits with it at 0), without the output
 * function's allocation.  NaN and the infinities are quoted.
 */
static void
AppendShortestFloat(StringInfo out, double value, bool isDouble)
{
	char		digits[DOUBLE_SHORTEST_DECIMAL_LEN];
	int			length;

	length = isDouble ? double_to_shortest_decimal_buf(value, digits)
		: float_to_shortest_decimal_buf((float) value, digits);
	if (isnan(value) || isinf(value))
		AppendJsonString(out, digits, length);
	else
		AppendBytes(out, digits, length);
}

/*
 * AppendValue writes one non-null value in the form its writer chose.
 */
static void
AppendValue(JsonValueWriter *writer, StringInfo out, Datum value)
{
	char	   *textForm;

	char		digits[MAXINT8LEN + 1];

	switch (writer->kind)
	{
		case JSON_VALUE_INT2:
			AppendBytes(out, digits, pg_ltoa(DatumGetInt16(value), digits));
			return;
		case JSON_VALUE_INT4:
			AppendBytes(out, digits, pg_ltoa(DatumGetInt32(value), digits));
			return;
		case JSON_VALUE_INT8:
			AppendBytes(out, digits, pg_lltoa(DatumGetInt64(value), digits));
			return;
		case JSON_VALUE_TEXT:
			{
				text	   *string = DatumGetTextPP(value);

				AppendJsonString(out, VARDATA_ANY(string), VARSIZE_ANY_EXHDR(string));
				return;
			}
		case JSON_VALUE_FLOAT4:
			AppendShortestFloat(out, DatumGetFloat4(value), false);
			return;
		case JSON_VALUE_FLOAT8:
			AppendShortestFloat(out, DatumGetFloat8(value), true);
			return;
		case JSON_VALUE_NUMERIC:
			AppendNumberText(out, OutputFunctionCall(&writer->outputFunction, value));
			return;
		case JSON_VALUE_BOOLEAN:
			if (DatumGetBool(value))
				AppendBytes(out, "true", 4);
			else
				AppendBytes(out, "false", 5);
			return;
		case JSON_VALUE_JSON:
			AppendEmbeddedJson(out, OutputFunctionCall(&writer->outputFunction, value));
			return;
		case JSON_VALUE_JSONB:
			AppendJsonb(out, DatumGetJsonbP(value));
			return;
		case JSON_VALUE_TIMESTAMPTZ:
			if (AppendIsoTimestamp(out, DatumGetTimestampTz(value), true))
				return;
			break;
		case JSON_VALUE_TIMESTAMP:
			if (writer->localZone == NULL
				? AppendIsoTimestamp(out, DatumGetTimestamp(value), false)
				: AppendIsoTimestamp(out, LocalTimestampToInstant(DatumGetTimestamp(value),
																  writer->localZone), true))
				return;
			break;
		case JSON_VALUE_ARRAY:
			{
				AnyArrayType *array = DatumGetAnyArrayP(value);
				array_iter	iterator;
				int			index = 0;

				if (AARR_NDIM(array) == 0)
				{
					AppendBytes(out, "[]", 2);
					return;
				}
				array_iter_setup(&iterator, array);
				AppendArrayLevel(writer, out, &iterator, &index,
								 0, AARR_NDIM(array), AARR_DIMS(array));
				return;
			}
		case JSON_VALUE_STRING:
			break;
	}

	textForm = OutputFunctionCall(&writer->outputFunction, value);
	AppendJsonString(out, textForm, strlen(textForm));
}

/*
 * JsonbFromText parses JSON text into a jsonb, in a memory context of its
 * own that is gone when it returns: jsonb_in's parse tree takes many times
 * the text's size (a run's summary over 50,000 tenants is tens of MB of
 * text), and only the packed jsonb is kept.
 */
Jsonb *
JsonbFromText(const char *text)
{
	MemoryContext parseContext = AllocSetContextCreate(CurrentMemoryContext,
													   "interactions_cron JSON parse",
													   ALLOCSET_DEFAULT_SIZES);
	MemoryContext callerContext = MemoryContextSwitchTo(parseContext);
	Jsonb	   *parsed = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
	Jsonb	   *packed;

	MemoryContextSwitchTo(callerContext);
	packed = palloc(VARSIZE(parsed));
	memcpy(packed, parsed, VARSIZE(parsed));
	MemoryContextDelete(parseContext);
	return packed;
}

/*
 * JsonStringTokenText returns the text a JSON string token (quotes and all)
 * holds, in the server's encoding, or NULL when it holds none that text can
 * (\u0000).
 */
static char *
JsonStringTokenText(const char *token, int length)
{
	JsonLexContext *lex = MakeJsonLexContext(pnstrdup(token, length), length, true);

	if (json_lex(lex) != JSON_SUCCESS || lex->token_type != JSON_TOKEN_STRING)
		return NULL;
	return pg_any_to_server(lex->strval->data, lex->strval->len, PG_UTF8);
}

/*
 * NdjsonLineMembers reads, from one line NdjsonAppendRow wrote, the values
 * of the top-level members named in names into values: a string's text, a
 * number's digits, NULL for a member that is missing or of another kind.
 * The line is only lexed: what it holds besides those members is never
 * decoded, so a line jsonb could not hold (a json column's \u0000, a number
 * numeric cannot hold) still gives its members up.  It returns false when
 * the line is not one JSON object.
 */
bool
NdjsonLineMembers(const char *line, int length, int count, const char *const *names, char **values)
{
	JsonLexContext *lex = MakeJsonLexContext(pnstrdup(line, length), length, false);
	StringInfoData *keys = palloc(sizeof(StringInfoData) * count);
	int			depth = 0;
	int			member = -1;
	bool		atKey = false;

	for (int i = 0; i < count; i++)
	{
		initStringInfo(&keys[i]);
		AppendJsonString(&keys[i], names[i], strlen(names[i]));
		values[i] = NULL;
	}
	for (;;)
	{
		const char *token;
		int			tokenLength;

		if (json_lex(lex) != JSON_SUCCESS)
			return false;
		token = lex->token_start;
		tokenLength = lex->token_terminator - lex->token_start;
		switch (lex->token_type)
		{
			case JSON_TOKEN_OBJECT_START:
				atKey = depth++ == 0;
				break;
			case JSON_TOKEN_ARRAY_START:
				if (depth++ == 0)
					return false;
				break;
			case JSON_TOKEN_OBJECT_END:
			case JSON_TOKEN_ARRAY_END:
				if (--depth == 0)
					return json_lex(lex) == JSON_SUCCESS && lex->token_type == JSON_TOKEN_END;
				break;
			case JSON_TOKEN_COMMA:
				atKey = depth == 1;
				member = -1;
				break;
			case JSON_TOKEN_COLON:
				break;
			case JSON_TOKEN_END:
			case JSON_TOKEN_INVALID:
				return false;
			default:
				if (depth == 0)
					return false;
				if (depth == 1 && atKey)
				{
					atKey = false;
					for (int i = 0; i < count; i++)
						if (keys[i].len == tokenLength && memcmp(keys[i].data, token, tokenLength) == 0)
							member = i;
				}
				else if (depth == 1 && member >= 0 && values[member] == NULL)
				{
					if (lex->token_type == JSON_TOKEN_STRING)
						values[member] = JsonStringTokenText(token, tokenLength);
					else if (lex->token_type == JSON_TOKEN_NUMBER)
						values[member] = pnstrdup(token, tokenLength);
				}
				break;
		}
	}
}
