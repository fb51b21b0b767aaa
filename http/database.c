/*
 * database.c
 *	  Calling the extension's SQL functions through libpq, one connection per
 *	  job request: cron endpoints are called a few times an hour, and a fresh
 *	  connection cannot inherit a broken state.
 *
 * Every wait is bounded.  libpq's blocking calls wait as long as the server
 * lets them (a server that accepts and never answers holds them for ever),
 * so the calls use libpq's non-blocking API and poll() with a deadline:
 * CONNECT_TIMEOUT_MS for connecting, the statement timeout plus that much
 * for a job.  The same poll() watches the request's client: when it hangs
 * up, the database connection is closed at once, and the server, told by
 * client_connection_check_interval to look, abandons the statement, so
 * neither a thread nor a backend outlives the request.
 *
 * The health check is answered from a cache for a second, by one check at a
 * time, so a client polling /healthz cannot make the server fork a backend
 * per request.
 */
#define _GNU_SOURCE				/* POLLRDHUP */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "shim.h"

/* How long a health answer is reused. */
#define HEALTH_CACHE_MS 1000
/* How often a backend checks, while running a call, that the shim is still there. */
#define CLIENT_CHECK_INTERVAL_MS 1000

/* Why a wait ended. */
typedef enum WaitResult
{
	WAIT_READY,					/* the socket is ready, or libpq will report an error */
	WAIT_TIMED_OUT,
	WAIT_CLIENT_GONE
} WaitResult;

static pthread_mutex_t healthLock = PTHREAD_MUTEX_INITIALIZER;
static JsonResponse healthAnswer;	/* body NULL: no check yet */
static long healthCheckedMs;

/*
 * JsonString returns text as a quoted JSON string (malloc'd).
 */
static char *
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
 * WaitForSocket waits until libpq's socket is ready for events, the
 * deadline passes, or the client's socket (-1: none) hangs up.  Only a
 * hang-up is asked of the client's socket: bytes it sends are left for
 * libmicrohttpd.
 */
static WaitResult
WaitForSocket(int socket, short events, int clientSocket, long deadlineMs)
{
	struct pollfd sockets[2] = {{socket, events, 0}, {clientSocket, POLLRDHUP, 0}};

	for (;;)
	{
		long		remainingMs = deadlineMs - MonotonicMs();
		int			ready;

		if (remainingMs <= 0)
			return WAIT_TIMED_OUT;
		/* poll() skips a negative descriptor: no client to watch. */
		ready = poll(sockets, 2, remainingMs > INT_MAX ? INT_MAX : (int) remainingMs);
		if (ready < 0 && errno == EINTR)
			continue;
		if (ready < 0)
			return WAIT_READY;
		if (sockets[1].revents != 0)
			return WAIT_CLIENT_GONE;
		if (sockets[0].revents != 0)
			return WAIT_READY;
	}
}

/*
 * LogAbandoned logs why a database call was given up.
 */
static void
LogAbandoned(WaitResult why, const char *what)
{
	if (why == WAIT_CLIENT_GONE)
		ShimLog("the client went away; %s abandoned", what);
	else
		ShimLog("the database did not answer in time; %s abandoned", what);
}

/*
 * Connect opens a connection with a statement timeout set (and the extra
 * server options given), waiting until deadlineMs and no longer than the
 * client stays.  On failure it logs why (libpq's message names host and
 * user, never the password) and returns NULL; the client only hears
 * "database unavailable".
 */
static PGconn *
Connect(const ShimConfig *config, int statementTimeoutMs, const char *extraOptions,
		long deadlineMs, int clientSocket)
{
	char		options[256];
	const char *keywords[] = {"dbname", "application_name", "options", NULL};
	const char *values[] = {config->databaseUrl, "interactions-cron-http", options, NULL};
	PostgresPollingStatusType status = PGRES_POLLING_WRITING;
	PGconn	   *connection;

	snprintf(options, sizeof(options), "-c statement_timeout=%d -c client_connection_check_interval=%d %s",
			 statementTimeoutMs, CLIENT_CHECK_INTERVAL_MS, extraOptions);
	/* expand_dbname: DATABASE_URL may be a URI or a conninfo string. */
	connection = PQconnectStartParams(keywords, values, 1);
	if (connection == NULL)
		abort();
	while (status != PGRES_POLLING_OK)
	{
		WaitResult	why;

		if (status == PGRES_POLLING_FAILED || PQstatus(connection) == CONNECTION_BAD)
		{
			ShimLog("could not connect to the database: %s", PQerrorMessage(connection));
			PQfinish(connection);
			return NULL;
		}
		why = WaitForSocket(PQsocket(connection), status == PGRES_POLLING_READING ? POLLIN : POLLOUT,
							clientSocket, deadlineMs);
		if (why != WAIT_READY)
		{
			LogAbandoned(why, "connecting to the database was");
			PQfinish(connection);
			return NULL;
		}
		status = PQconnectPoll(connection);
	}
	return connection;
}

/*
 * AwaitResult sends what is queued and reads until a result is complete
 * (or libpq has an error to report), within the deadline and while the
 * client stays.
 */
static WaitResult
AwaitResult(PGconn *connection, int clientSocket, long deadlineMs)
{
	for (;;)
	{
		int			flushed = PQflush(connection);
		WaitResult	why;

		if (flushed < 0 || (flushed == 0 && !PQisBusy(connection)))
			return WAIT_READY;
		why = WaitForSocket(PQsocket(connection), flushed ? POLLIN | POLLOUT : POLLIN,
							clientSocket, deadlineMs);
		if (why != WAIT_READY)
			return why;
		if (!PQconsumeInput(connection))
			return WAIT_READY;
	}
}

/*
 * Execute runs one statement, with its one text parameter $1 unless that is
 * NULL, and returns its last result, as PQexec would, or NULL with *why
 * saying why it was given up.
 */
static PGresult *
Execute(PGconn *connection, const char *sql, const char *parameter, int clientSocket,
		long deadlineMs, WaitResult *why)
{
	PGresult   *result = NULL;
	PGresult   *next;
	int			sent;

	*why = WAIT_READY;
	if (PQsetnonblocking(connection, 1) != 0)
		return PQmakeEmptyPGresult(connection, PGRES_FATAL_ERROR);
	sent = parameter != NULL
		? PQsendQueryParams(connection, sql, 1, NULL, &parameter, NULL, NULL, 0)
		: PQsendQuery(connection, sql);
	if (!sent)
		return PQmakeEmptyPGresult(connection, PGRES_FATAL_ERROR);
	for (;;)
	{
		*why = AwaitResult(connection, clientSocket, deadlineMs);
		if (*why != WAIT_READY)
		{
			PQclear(result);
			return NULL;
		}
		next = PQgetResult(connection);
		if (next == NULL)
			return result;
		PQclear(result);
		result = next;
	}
}

/*
 * RunSqlJob runs one job function (with its parameter, or NULL) and answers
 * 200 with its JSON, or 500 with the error PostgreSQL reported.  The server
 * ends the statement at the statement timeout; the shim waits
 * CONNECT_TIMEOUT_MS longer for a server that cannot even do that.
 */
JsonResponse
RunSqlJob(const ShimConfig *config, const char *sql, const char *parameter, int clientSocket)
{
	PGconn	   *connection = Connect(config, config->statementTimeoutMs, "",
									 MonotonicMs() + config->connectTimeoutMs, clientSocket);
	PGresult   *result;
	WaitResult	why;
	JsonResponse response;

	if (connection == NULL)
		return ErrorResponse(500, "database unavailable", NULL);

	result = Execute(connection, sql, parameter, clientSocket,
					 MonotonicMs() + config->statementTimeoutMs + config->connectTimeoutMs, &why);
	if (result == NULL)
	{
		LogAbandoned(why, "the call was");
		response = ErrorResponse(500, why == WAIT_CLIENT_GONE ? "the client went away" :
								 "the database did not answer in time", NULL);
	}
	else if (PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1)
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
 * QueryDatabaseHealth answers 200 when the database answers a query and
 * the extension is installed, 503 otherwise, within twice
 * CONNECT_TIMEOUT_MS.
 */
static JsonResponse
QueryDatabaseHealth(const ShimConfig *config)
{
	PGconn	   *connection = Connect(config, config->connectTimeoutMs, "",
									 MonotonicMs() + config->connectTimeoutMs, -1);
	PGresult   *result;
	WaitResult	why;
	JsonResponse response = {503, NULL};

	if (connection == NULL)
		response.body = strdup("{\"status\": \"unavailable\", \"database\": false}");
	else
	{
		result = Execute(connection,
						 "SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'interactions_cron'",
						 NULL, -1, MonotonicMs() + config->connectTimeoutMs, &why);
		if (result == NULL)
			LogAbandoned(why, "the health check was");
		if (PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1)
		{
			response.status = 200;
			response.body = strdup("{\"status\": \"ok\", \"database\": true, \"extension\": true}");
		}
		else if (PQresultStatus(result) == PGRES_TUPLES_OK)
			response.body = strdup("{\"status\": \"unavailable\", \"database\": true, \"extension\": false}");
		else
			response.body = strdup("{\"status\": \"unavailable\", \"database\": false}");
		PQclear(result);
		PQfinish(connection);
	}
	if (response.body == NULL)
		abort();
	return response;
}

/*
 * CheckDatabaseHealth answers /healthz: a check at most once a second,
 * whatever the number of clients; the others get a copy of its answer.
 */
JsonResponse
CheckDatabaseHealth(const ShimConfig *config)
{
	JsonResponse copy;

	pthread_mutex_lock(&healthLock);
	if (healthAnswer.body == NULL || MonotonicMs() - healthCheckedMs >= HEALTH_CACHE_MS)
	{
		free(healthAnswer.body);
		healthAnswer = QueryDatabaseHealth(config);
		healthCheckedMs = MonotonicMs();
	}
	copy.status = healthAnswer.status;
	copy.body = strdup(healthAnswer.body);
	pthread_mutex_unlock(&healthLock);
	if (copy.body == NULL)
		abort();
	return copy;
}

/*
 * QueryReadOnly runs one query in a read-only session, connecting and
 * answering within timeoutMs in all: the server ends the
 * statement then, and the shim stops waiting.  It returns the result (the
 * caller checks its status and clears it), or NULL, logged, when the
 * database could not be reached or did not answer in time.  A read-only
 * transaction cannot run a job: every job writes.
 */
PGresult *
QueryReadOnly(const ShimConfig *config, const char *sql, int timeoutMs)
{
	long		deadlineMs = MonotonicMs() + timeoutMs;
	PGconn	   *connection = Connect(config, timeoutMs,
									 "-c default_transaction_read_only=on",
									 deadlineMs, -1);
	PGresult   *result;
	WaitResult	why;

	if (connection == NULL)
		return NULL;
	result = Execute(connection, sql, NULL, -1, deadlineMs, &why);
	if (result == NULL)
		LogAbandoned(why, "the query was");
	PQfinish(connection);
	return result;
}
