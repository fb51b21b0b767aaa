/*
 * database.c
 *	  Calling the extension's SQL functions through libpq, one connection per
 *	  request: cron endpoints are called a few times an hour, and a fresh
 *	  connection cannot inherit a broken state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "shim.h"

/*
 * JsonString returns text as a quoted JSON string (malloc'd).
 */
char *
JsonString(const char *text)
{
	size_t		length = strlen(text);
	char	   *out = malloc(length * 6 + 3);
	char	   *p = out;

	if (out == NULL)
		abort();
	*p++ = '"';
	for (const unsigned char *c = (const unsigned char *) text; *c != '\0'; c++)
	{
		if (*c == '"' || *c == '\\')
		{
			*p++ = '\\';
			*p++ = (char) *c;
		}
		else if (*c < 0x20)
			p += sprintf(p, "\\u%04x", *c);
		else
			*p++ = (char) *c;
	}
	*p++ = '"';
	*p = '\0';
	return out;
}

/*
 * ErrorResponse builds {"ok": false, "error": ..., "sqlstate": ...}.
 */
static JsonResponse
ErrorResponse(unsigned int status, const char *message, const char *sqlstate)
{
	JsonResponse response = {status, NULL};
	char	   *quotedMessage = JsonString(message);
	size_t		size = strlen(quotedMessage) + 64;

	response.body = malloc(size);
	if (response.body == NULL)
		abort();
	snprintf(response.body, size, "{\"ok\": false, \"error\": %s, \"sqlstate\": \"%s\"}",
			 quotedMessage, sqlstate ? sqlstate : "");
	free(quotedMessage);
	return response;
}

/*
 * Connect opens a connection with the statement timeout set.  On failure it
 * logs libpq's message (which names host and user, never the password) and
 * returns NULL; the client only hears "database unavailable".
 */
static PGconn *
Connect(const ShimConfig *config)
{
	char		options[64];
	const char *keywords[] = {"dbname", "application_name", "options", NULL};
	const char *values[] = {config->databaseUrl, "interactions-cron-http", options, NULL};
	PGconn	   *connection;

	snprintf(options, sizeof(options), "-c statement_timeout=%d", config->statementTimeoutMs);
	/* expand_dbname: DATABASE_URL may be a URI or a conninfo string. */
	connection = PQconnectdbParams(keywords, values, 1);
	if (PQstatus(connection) != CONNECTION_OK)
	{
		fprintf(stderr, "interactions-cron-http: could not connect to the database: %s",
				PQerrorMessage(connection));
		PQfinish(connection);
		return NULL;
	}
	return connection;
}

/*
 * RunSqlJob runs one job function and answers 200 with its JSON, or 500
 * with the error PostgreSQL reported.
 */
JsonResponse
RunSqlJob(const ShimConfig *config, const char *sql)
{
	PGconn	   *connection = Connect(config);
	PGresult   *result;
	JsonResponse response;

	if (connection == NULL)
		return ErrorResponse(500, "database unavailable", NULL);

	result = PQexec(connection, sql);
	if (PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1)
	{
		response.status = 200;
		response.body = strdup(PQgetvalue(result, 0, 0));
		if (response.body == NULL)
			abort();
	}
	else
	{
		const char *message = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);

		response = ErrorResponse(500, message ? message : "the job failed",
								 PQresultErrorField(result, PG_DIAG_SQLSTATE));
	}
	PQclear(result);
	PQfinish(connection);
	return response;
}

/*
 * CheckDatabaseHealth answers 200 when the database answers a query and the
 * extension is installed, 503 otherwise.
 */
JsonResponse
CheckDatabaseHealth(const ShimConfig *config)
{
	PGconn	   *connection = Connect(config);
	PGresult   *result;
	JsonResponse response = {503, NULL};

	if (connection == NULL)
		response.body = strdup("{\"status\": \"unavailable\", \"database\": false}");
	else
	{
		result = PQexec(connection,
						"SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'interactions_cron'");
		if (PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1)
		{
			response.status = 200;
			response.body = strdup("{\"status\": \"ok\", \"database\": true, \"extension\": true}");
		}
		else
			response.body = strdup("{\"status\": \"unavailable\", \"database\": true, \"extension\": false}");
		PQclear(result);
		PQfinish(connection);
	}
	if (response.body == NULL)
		abort();
	return response;
}
