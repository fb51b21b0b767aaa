/*
 * metrics.c
 *	  GET /metrics: the samples of interactions_cron.metrics() in
 *	  Prometheus's text exposition format, or in OpenMetrics when the
 *	  scraper asks for it, with the scrape's own health.
 *
 * One query, read-only (it cannot run a job), answered within
 * METRICS_TIMEOUT_MS: a database that is down or slow gives
 * interactions_cron_up 0 and a scrape error, never a hanging scrape.
 * Scrapes are served one at a time, and an answer is reused for a second,
 * so scrapers cannot multiply the database's work.
 *
 * Label values are the database's text (tenant ids hold any bytes): a
 * backslash, a double quote and a line feed are escaped as the formats
 * require, and a byte sequence that is not UTF-8 becomes U+FFFD, so no id
 * can break the exposition.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "shim.h"

/* How long a scrape's samples are reused. */
#define METRICS_CACHE_MS 1000

#define METRICS_QUERY \
	"SELECT metric, type, help, tenant_id, job_name, outcome, kind, value FROM interactions_cron.metrics()"

/* The label names of the query's label columns, in column order. */
static const char *const labelNames[] = {"tenant_id", "job_name", "outcome", "kind"};
#define FIRST_LABEL_COLUMN 3
#define VALUE_COLUMN 7

/* A growing text. */
typedef struct Text
{
	char	   *data;
	size_t		length;
	size_t		capacity;
} Text;

/* The last collection from the database. */
typedef struct Collection
{
	PGresult   *samples;		/* NULL: the collection failed */
	double		seconds;
	long		collectedMs;
} Collection;

static pthread_mutex_t collectionLock = PTHREAD_MUTEX_INITIALIZER;
static Collection lastCollection;
static bool collectedOnce;
static atomic_ullong scrapeErrors;

/*
 * AppendBytes appends length bytes to a text.
 */
static void
AppendBytes(Text *text, const char *bytes, size_t length)
{
	if (text->length + length + 1 > text->capacity)
	{
		text->capacity = (text->length + length + 1) * 2;
		text->data = realloc(text->data, text->capacity);
		if (text->data == NULL)
			abort();
	}
	memcpy(text->data + text->length, bytes, length);
	text->length += length;
	text->data[text->length] = '\0';
}

/*
 * Append appends a C string.
 */
static void
Append(Text *text, const char *string)
{
	AppendBytes(text, string, strlen(string));
}

/*
 * Utf8SequenceLength returns the length of the well-formed UTF-8 sequence
 * at bytes (at most remaining long), or 0 when there is none: a stray
 * continuation byte, a truncated sequence, an overlong form, a surrogate or
 * a code point above U+10FFFF (RFC 3629).
 */
static size_t
Utf8SequenceLength(const unsigned char *bytes, size_t remaining)
{
	unsigned char lead = bytes[0];
	size_t		length;
	unsigned char low = 0x80;
	unsigned char high = 0xBF;

	if (lead < 0x80)
		return 1;
	if (lead >= 0xC2 && lead <= 0xDF)
		length = 2;
	else if (lead >= 0xE0 && lead <= 0xEF)
	{
		length = 3;
		low = lead == 0xE0 ? 0xA0 : 0x80;
		high = lead == 0xED ? 0x9F : 0xBF;
	}
	else if (lead >= 0xF0 && lead <= 0xF4)
	{
		length = 4;
		low = lead == 0xF0 ? 0x90 : 0x80;
		high = lead == 0xF4 ? 0x8F : 0xBF;
	}
	else
		return 0;
	if (remaining < length || bytes[1] < low || bytes[1] > high)
		return 0;
	for (size_t i = 2; i < length; i++)
	{
		if (bytes[i] < 0x80 || bytes[i] > 0xBF)
			return 0;
	}
	return length;
}

/*
 * AppendEscaped appends a label value or help text: backslash, line feed
 * and (where quoteToo) double quote escaped with a backslash, each byte
 * that is not part of well-formed UTF-8 replaced by U+FFFD.
 */
static void
AppendEscaped(Text *text, const char *value, bool quoteToo)
{
	const unsigned char *bytes = (const unsigned char *) value;
	size_t		remaining = strlen(value);

	while (remaining > 0)
	{
		size_t		length = Utf8SequenceLength(bytes, remaining);

		if (length == 0)
		{
			Append(text, "\xEF\xBF\xBD");
			length = 1;
		}
		else if (bytes[0] == '\\')
			Append(text, "\\\\");
		else if (bytes[0] == '\n')
			Append(text, "\\n");
		else if (bytes[0] == '"' && quoteToo)
			Append(text, "\\\"");
		else
			AppendBytes(text, (const char *) bytes, length);
		bytes += length;
		remaining -= length;
	}
}

/*
 * FamilyName returns the name of a sample's family: in OpenMetrics a
 * counter's family drops its samples' _total suffix.
 */
static char *
FamilyName(const char *metric, const char *type, bool openMetrics)
{
	size_t		length = strlen(metric);
	char	   *name;

	if (openMetrics && strcmp(type, "counter") == 0 && length > 6 &&
		strcmp(metric + length - 6, "_total") == 0)
		length -= 6;
	name = strndup(metric, length);
	if (name == NULL)
		abort();
	return name;
}

/*
 * AppendFamilyHeader appends a family's HELP and TYPE lines.
 */
static void
AppendFamilyHeader(Text *text, const char *metric, const char *type, const char *help,
				   bool openMetrics)
{
	char	   *family = FamilyName(metric, type, openMetrics);

	Append(text, "# HELP ");
	Append(text, family);
	Append(text, " ");
	AppendEscaped(text, help, openMetrics);
	Append(text, "\n# TYPE ");
	Append(text, family);
	Append(text, " ");
	Append(text, type);
	Append(text, "\n");
	free(family);
}

/*
 * AppendValue appends a sample's value, given as PostgreSQL's float8 text,
 * in the formats' spelling of infinities.
 */
static void
AppendValue(Text *text, const char *value)
{
	if (strcmp(value, "Infinity") == 0)
		Append(text, "+Inf");
	else if (strcmp(value, "-Infinity") == 0)
		Append(text, "-Inf");
	else
		Append(text, value);
}

/*
 * AppendSample appends one sample of the query's result: name, the labels
 * that are not NULL, value.
 */
static void
AppendSample(Text *text, const PGresult *samples, int row)
{
	bool		anyLabel = false;

	Append(text, PQgetvalue(samples, row, 0));
	for (int column = FIRST_LABEL_COLUMN; column < VALUE_COLUMN; column++)
	{
		if (PQgetisnull(samples, row, column))
			continue;
		Append(text, anyLabel ? "," : "{");
		Append(text, labelNames[column - FIRST_LABEL_COLUMN]);
		Append(text, "=\"");
		AppendEscaped(text, PQgetvalue(samples, row, column), true);
		Append(text, "\"");
		anyLabel = true;
	}
	Append(text, anyLabel ? "} " : " ");
	AppendValue(text, PQgetvalue(samples, row, VALUE_COLUMN));
	Append(text, "\n");
}

/*
 * AppendDatabaseSamples appends the database's samples, a family's header
 * before its first sample (metrics() returns each family's samples
 * together).
 */
static void
AppendDatabaseSamples(Text *text, const PGresult *samples, bool openMetrics)
{
	for (int row = 0; row < PQntuples(samples); row++)
	{
		const char *metric = PQgetvalue(samples, row, 0);

		if (row == 0 || strcmp(metric, PQgetvalue(samples, row - 1, 0)) != 0)
			AppendFamilyHeader(text, metric, PQgetvalue(samples, row, 1),
							   PQgetvalue(samples, row, 2), openMetrics);
		AppendSample(text, samples, row);
	}
}

/*
 * AppendScrapeSamples appends the scrape's own health: whether the
 * database answered, how long it took, and the failures so far.
 */
static void
AppendScrapeSamples(Text *text, const Collection *collection, unsigned long long errors,
					bool openMetrics)
{
	char		line[128];

	AppendFamilyHeader(text, "interactions_cron_up", "gauge",
					   "1 when the database answered the metrics query, 0 when it failed or timed out.",
					   openMetrics);
	Append(text, collection->samples != NULL ? "interactions_cron_up 1\n" : "interactions_cron_up 0\n");
	AppendFamilyHeader(text, "interactions_cron_scrape_duration_seconds", "gauge",
					   "How long the metrics query took, connecting included.", openMetrics);
	snprintf(line, sizeof(line), "interactions_cron_scrape_duration_seconds %.6f\n", collection->seconds);
	Append(text, line);
	AppendFamilyHeader(text, "interactions_cron_scrape_errors_total", "counter",
					   "Metrics queries that failed or timed out since the shim started.", openMetrics);
	snprintf(line, sizeof(line), "interactions_cron_scrape_errors_total %llu\n", errors);
	Append(text, line);
}

/*
 * Collect runs the metrics query within METRICS_TIMEOUT_MS.  A failure is
 * logged and counted.
 */
static Collection
Collect(const ShimConfig *config)
{
	long		startedMs = MonotonicMs();
	Collection	collection = {QueryReadOnly(config, METRICS_QUERY, config->metricsTimeoutMs), 0, 0};

	if (collection.samples != NULL && PQresultStatus(collection.samples) != PGRES_TUPLES_OK)
	{
		const char *message = PQresultErrorField(collection.samples, PG_DIAG_MESSAGE_PRIMARY);
		const char *sqlstate = PQresultErrorField(collection.samples, PG_DIAG_SQLSTATE);
		char	   *quoted = LogQuoted(message ? message : "no message");

		ShimLog("the metrics query failed: %s (SQLSTATE %s)", quoted, sqlstate ? sqlstate : "none");
		free(quoted);
		PQclear(collection.samples);
		collection.samples = NULL;
	}
	if (collection.samples == NULL)
		atomic_fetch_add(&scrapeErrors, 1);
	collection.collectedMs = MonotonicMs();
	collection.seconds = (collection.collectedMs - startedMs) / 1000.0;
	return collection;
}

/*
 * MetricsPage returns the body of a /metrics answer (malloc'd).  The
 * samples come from a collection at most METRICS_CACHE_MS old, made by one
 * scrape at a time; a scrape that cannot take its turn within
 * METRICS_TIMEOUT_MS reports the database as not answering.
 */
char *
MetricsPage(const ShimConfig *config, bool openMetrics)
{
	Text		text = {NULL, 0, 0};
	struct timespec deadline;
	Collection	unanswered = {NULL, config->metricsTimeoutMs / 1000.0, 0};

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += config->metricsTimeoutMs / 1000;
	deadline.tv_nsec += (config->metricsTimeoutMs % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L)
	{
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	Append(&text, "");
	if (pthread_mutex_timedlock(&collectionLock, &deadline) != 0)
	{
		ShimLog("another scrape held the database for METRICS_TIMEOUT_MS; reporting it down");
		AppendScrapeSamples(&text, &unanswered, atomic_fetch_add(&scrapeErrors, 1) + 1, openMetrics);
	}
	else
	{
		if (!collectedOnce || MonotonicMs() - lastCollection.collectedMs >= METRICS_CACHE_MS)
		{
			PQclear(lastCollection.samples);
			lastCollection = Collect(config);
			collectedOnce = true;
		}
		AppendScrapeSamples(&text, &lastCollection, atomic_load(&scrapeErrors), openMetrics);
		if (lastCollection.samples != NULL)
			AppendDatabaseSamples(&text, lastCollection.samples, openMetrics);
		pthread_mutex_unlock(&collectionLock);
	}
	if (openMetrics)
		Append(&text, "# EOF\n");
	return text.data;
}

/*
 * AcceptsOpenMetrics says whether an Accept header asks for OpenMetrics,
 * as Prometheus's does by default.
 */
bool
AcceptsOpenMetrics(const char *accept)
{
	return accept != NULL && strstr(accept, "application/openmetrics-text") != NULL;
}
