/*
 * routes.c
 *	  Routing, authentication and the per-request log line.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shim.h"

/* What the completion callback needs to log a request. */
typedef struct RequestState
{
	struct timespec started;
	char	   *method;			/* NULL until the head has arrived */
	char	   *path;			/* as the client sent it, %-escapes and all */
	unsigned int status;
} RequestState;

/* What an endpoint does. */
typedef enum RouteKind
{
	ROUTE_JOB,					/* runs its SQL; needs the jobs' secret */
	ROUTE_HEALTH,				/* no secret */
	ROUTE_METRICS				/* needs the metrics' secret (see auth.c) */
} RouteKind;

/*
 * One endpoint: its path, its kind, and a job's SQL without and with a time
 * budget ($1, from ?max_runtime=).
 */
typedef struct Route
{
	const char *path;
	RouteKind	kind;
	const char *sql;
	const char *sqlWithBudget;	/* NULL: takes no max_runtime */
} Route;

static const Route routes[] = {
	{"/api/v1/cron/export-interactions", ROUTE_JOB,
		"SELECT interactions_cron.export_interactions()::text",
	"SELECT interactions_cron.export_interactions(max_runtime => $1::pg_catalog.interval)::text"},
	{"/api/v1/cron/cleanup", ROUTE_JOB, "SELECT interactions_cron.cleanup()::text", NULL},
	{"/healthz", ROUTE_HEALTH, NULL, NULL},
	{"/metrics", ROUTE_METRICS, NULL, NULL},
};

/* Room for "<up to 9 digits> seconds". */
#define BUDGET_BYTES 32

static atomic_int requestsInFlight;

/*
 * RequestsInFlight tells shutdown how many requests are still being answered.
 */
int
RequestsInFlight(void)
{
	return atomic_load(&requestsInFlight);
}

/*
 * FindRoute returns the route of a path, or NULL.
 */
static const Route *
FindRoute(const char *path)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
	{
		if (strcmp(routes[i].path, path) == 0)
			return &routes[i];
	}
	return NULL;
}

/*
 * StaticResponse wraps a constant JSON body.
 */
static JsonResponse
StaticResponse(unsigned int status, const char *body)
{
	JsonResponse response = {status, strdup(body)};

	if (response.body == NULL)
		abort();
	return response;
}

/*
 * RespondWith queues a response (taking ownership of its body) of the
 * given type, with an Allow or WWW-Authenticate header when given.  A 413,
 * and every answer once the shim is stopping, closes the connection after
 * it: an unread body cannot be parsed as a next request, and a stopping
 * shim serves no more.
 */
static enum MHD_Result
RespondWith(struct MHD_Connection *connection, RequestState *state, JsonResponse answer,
			const char *contentType, const char *headerName, const char *headerValue)
{
	struct MHD_Response *response =
		MHD_create_response_from_buffer(strlen(answer.body), answer.body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result queued;

	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, contentType);
	MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (headerName != NULL)
		MHD_add_response_header(response, headerName, headerValue);
	if (answer.status == MHD_HTTP_CONTENT_TOO_LARGE || ShimStopping())
		MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close");
	state->status = answer.status;
	queued = MHD_queue_response(connection, answer.status, response);
	MHD_destroy_response(response);
	return queued;
}

/*
 * Respond queues a JSON response (see RespondWith).
 */
static enum MHD_Result
Respond(struct MHD_Connection *connection, RequestState *state, JsonResponse answer,
		const char *headerName, const char *headerValue)
{
	return RespondWith(connection, state, answer, "application/json", headerName, headerValue);
}

/*
 * RespondMetrics queues the /metrics page, in OpenMetrics when the request's
 * Accept header asks for it, else in Prometheus's text format.
 */
static enum MHD_Result
RespondMetrics(const ShimConfig *config, struct MHD_Connection *connection, RequestState *state)
{
	bool		openMetrics = AcceptsOpenMetrics(MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
																			   MHD_HTTP_HEADER_ACCEPT));
	JsonResponse page = {200, MetricsPage(config, openMetrics)};

	return RespondWith(connection, state, page,
					   openMetrics ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
					   : "text/plain; version=0.0.4; charset=utf-8", NULL, NULL);
}

/*
 * RequestArrived is libmicrohttpd's URI callback (MHD_OPTION_URI_LOG_CALLBACK),
 * called with the request's target as the client sent it, before
 * libmicrohttpd decodes its %-escapes (a %00 would cut the decoded path
 * short): its path is what the request is routed by and logged as.
 */
void *
RequestArrived(void *cls, const char *uri, struct MHD_Connection *connection)
{
	RequestState *state = calloc(1, sizeof(RequestState));

	(void) cls;
	(void) connection;
	if (state == NULL)
		abort();
	state->path = strndup(uri, strcspn(uri, "?"));
	if (state->path == NULL)
		abort();
	return state;
}

/*
 * StartRequest records the method and start of a request whose head has
 * arrived.
 */
static void
StartRequest(RequestState *state, const char *method)
{
	clock_gettime(CLOCK_MONOTONIC, &state->started);
	state->method = strdup(method);
	if (state->method == NULL)
		abort();
	atomic_fetch_add(&requestsInFlight, 1);
}

/*
 * AnnouncesBody says whether a request comes with a body: a Content-Length
 * other than zero, or any Transfer-Encoding.  No endpoint takes one.
 */
static bool
AnnouncesBody(struct MHD_Connection *connection)
{
	const char *length = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
													  MHD_HTTP_HEADER_CONTENT_LENGTH);

	if (MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
									MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL)
		return true;
	return length != NULL && length[strspn(length, "0")] != '\0';
}

/*
 * ClientSocket returns the socket of a request's client, which the database
 * calls watch to give up when the client goes away.
 */
static int
ClientSocket(struct MHD_Connection *connection)
{
	return MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD)->connect_fd;
}

/*
 * RouteIsAuthorized says whether a request carries the secret its route
 * needs, if any.
 */
static bool
RouteIsAuthorized(const ShimConfig *config, const Route *route, struct MHD_Connection *connection)
{
	const char *authorization = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
															MHD_HTTP_HEADER_AUTHORIZATION);
	const char *secretHeader = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "X-Cron-Secret");

	if (route->kind == ROUTE_HEALTH)
		return true;
	if (route->kind == ROUTE_METRICS)
		return MetricsRequestIsAuthorized(config, authorization, secretHeader);
	return RequestIsAuthorized(config, authorization, secretHeader);
}

/*
 * ReadBudget turns ?max_runtime=<whole seconds> into the interval text
 * "<n> seconds" in budget, and says whether it is one the shim allows: at
 * most MAX_RUNTIME_LIMIT_MS, so that no caller holds a connection and a
 * database session longer than the operator allows.
 */
static bool
ReadBudget(const ShimConfig *config, const char *requested, char budget[BUDGET_BYTES])
{
	long		seconds;

	if (requested[0] == '\0' || strlen(requested) > 9 ||
		requested[strspn(requested, "0123456789")] != '\0')
		return false;
	seconds = strtol(requested, NULL, 10);
	if (seconds * 1000 > config->maxRuntimeLimitMs)
		return false;
	snprintf(budget, BUDGET_BYTES, "%ld seconds", seconds);
	return true;
}

/*
 * BudgetRefused answers 400 to a max_runtime the route does not take or the
 * shim does not allow, saying what it allows.
 */
static JsonResponse
BudgetRefused(const ShimConfig *config, const Route *route)
{
	char		body[200];

	if (route->sqlWithBudget == NULL)
		return StaticResponse(400, "{\"ok\": false, \"error\": \"this endpoint takes no max_runtime\"}");
	snprintf(body, sizeof(body),
			 "{\"ok\": false, \"error\": \"max_runtime must be whole seconds from 0 to %d "
			 "(MAX_RUNTIME_LIMIT_MS)\"}", config->maxRuntimeLimitMs / 1000);
	return StaticResponse(400, body);
}

/*
 * Answer decides a request without a body: 503 while stopping, 400 for a
 * target that is not a path (libmicrohttpd 1.0 passes an empty one on,
 * 0.9 refused it itself), 404 for unknown paths, 405 for methods other than
 * GET, 401 without the secret the route needs, 400 for a max_runtime not
 * allowed, else the endpoint's JSON, or the metrics.
 */
static enum MHD_Result
Answer(const ShimConfig *config, struct MHD_Connection *connection, RequestState *state,
	   const char *method)
{
	const Route *route = FindRoute(state->path);
	const char *requestedBudget;
	char		budget[BUDGET_BYTES];

	if (ShimStopping())
		return Respond(connection, state,
					   StaticResponse(503, "{\"ok\": false, \"error\": \"shutting down\"}"),
					   NULL, NULL);
	if (state->path[0] != '/')
		return Respond(connection, state, StaticResponse(400, "{\"ok\": false, \"error\": \"bad request\"}"),
					   NULL, NULL);
	if (route == NULL)
		return Respond(connection, state, StaticResponse(404, "{\"ok\": false, \"error\": \"not found\"}"),
					   NULL, NULL);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
		return Respond(connection, state,
					   StaticResponse(405, "{\"ok\": false, \"error\": \"method not allowed\"}"),
					   MHD_HTTP_HEADER_ALLOW, MHD_HTTP_METHOD_GET);
	if (!RouteIsAuthorized(config, route, connection))
		return Respond(connection, state,
					   StaticResponse(401, route->kind == ROUTE_METRICS ?
									  "{\"ok\": false, \"error\": \"invalid or missing secret\"}" :
									  "{\"ok\": false, \"error\": \"invalid or missing CRON_SECRET\"}"),
					   MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");

	requestedBudget = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "max_runtime");
	if (requestedBudget != NULL &&
		(route->sqlWithBudget == NULL || !ReadBudget(config, requestedBudget, budget)))
		return Respond(connection, state, BudgetRefused(config, route), NULL, NULL);

	if (route->kind == ROUTE_METRICS)
		return RespondMetrics(config, connection, state);
	if (route->kind == ROUTE_HEALTH)
		return Respond(connection, state, CheckDatabaseHealth(config), NULL, NULL);
	return Respond(connection, state,
				   requestedBudget != NULL
				   ? RunSqlJob(config, route->sqlWithBudget, budget, ClientSocket(connection))
				   : RunSqlJob(config, route->sql, NULL, ClientSocket(connection)),
				   NULL, NULL);
}

/*
 * HandleRequest answers a request.  Its first call comes when the head has
 * arrived: a request announcing a body gets 413 there and then, which makes
 * libmicrohttpd close the connection without reading the body.  Any other
 * request is answered on the second call, which follows at once (there is
 * no body to wait for): an answer queued on the first call would end
 * keep-alive.
 */
enum MHD_Result
HandleRequest(void *cls, struct MHD_Connection *connection, const char *url,
			  const char *method, const char *version, const char *uploadData,
			  size_t *uploadDataSize, void **requestState)
{
	RequestState *state = *requestState;
	enum MHD_Result queued;

	(void) url;
	(void) version;
	(void) uploadData;
	if (state == NULL)
		return MHD_NO;			/* RequestArrived always made one */
	if (state->method == NULL)
	{
		StartRequest(state, method);
		ConnectionRunning(connection);
		if (!AnnouncesBody(connection))
			return MHD_YES;
		queued = Respond(connection, state,
						 StaticResponse(MHD_HTTP_CONTENT_TOO_LARGE,
										"{\"ok\": false, \"error\": \"request bodies are not accepted\"}"),
						 NULL, NULL);
	}
	else if (*uploadDataSize != 0 || state->status != 0)
		return MHD_NO;			/* body bytes without a body announced: drop the connection */
	else
		queued = Answer(cls, connection, state, method);
	ConnectionSending(connection);
	return queued;
}

/*
 * RequestCompleted writes the request's log line (method, path, status,
 * duration; never a header, every field escaped), frees its state, and
 * starts the connection's wait for its next request.
 */
void
RequestCompleted(void *cls, struct MHD_Connection *connection, void **requestState,
				 enum MHD_RequestTerminationCode code)
{
	RequestState *state = *requestState;
	struct timespec finished;
	char	   *method;
	char	   *path;

	(void) cls;
	(void) code;
	if (state == NULL)
		return;
	if (state->method == NULL)
	{
		/* Refused by libmicrohttpd before its head was complete: never reached a route. */
		free(state->path);
		free(state);
		*requestState = NULL;
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &finished);
	method = LogQuoted(state->method);
	path = LogQuoted(state->path);
	ShimLog("%s %s %u %.1fms", method, path, state->status,
			(finished.tv_sec - state->started.tv_sec) * 1e3 +
			(finished.tv_nsec - state->started.tv_nsec) / 1e6);
	free(method);
	free(path);
	free(state->method);
	free(state->path);
	free(state);
	*requestState = NULL;
	ConnectionWaiting(connection);
	atomic_fetch_sub(&requestsInFlight, 1);
}
