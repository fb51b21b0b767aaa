/*
 * ndjson.h
 *	  Serialisation of result rows as newline-delimited JSON.
 */
#ifndef INTERACTIONS_CRON_NDJSON_H
#define INTERACTIONS_CRON_NDJSON_H

#include "access/tupdesc.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "pgtime.h"
#include "utils/jsonb.h"

typedef struct NdjsonRowWriter NdjsonRowWriter;

extern NdjsonRowWriter *NdjsonCreateRowWriter(TupleDesc tupleDesc, pg_tz *localZone);
extern void NdjsonAppendRow(NdjsonRowWriter *writer, StringInfo out,
							TupleTableSlot *slot);
extern void NdjsonAppendUtcTimestamp(StringInfo out, TimestampTz value);
extern Jsonb *JsonbFromText(const char *text);
extern bool NdjsonLineMembers(const char *line, int length, int count, const char *const *names,
							  char **values);
extern TimestampTz LocalTimestampToInstant(Timestamp local, pg_tz *zone);

#endif
