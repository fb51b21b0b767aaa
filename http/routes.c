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
	char	   *method;
	char	   *path;
	unsigned int status;
} RequestState;

/* One endpoint: its path, whether it needs the secret, and its work. */
typedef struct Route
{
	const char *path;
	bool		needsSecret;
	const char *sql;			/* NULL: the health check */
} Route;

static const Route routes[] = {
	{"/api/v1/cron/export-interactions", true,
	"SELECT interactions_cron.export_interactions()::text"},
	{"/api/v1/cron/cleanup", true, "SELECT interactions_cron.cleanup()::text"},
	{"/healthz", false, NULL},
};

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
 * Respond queues a JSON response (taking ownership of its body), with an
 * Allow or WWW-Authenticate header when given.
 */
static enum MHD_Result
Respond(struct MHD_Connection *connection, RequestState *state, JsonResponse answer,
		const char *headerName, const char *headerValue)
{
	struct MHD_Response *response =
		MHD_create_response_from_buffer(strlen(answer.body), answer.body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result queued;

	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (headerName != NULL)
		MHD_add_response_header(response, headerName, headerValue);
	state->status = answer.status;
	queued = MHD_queue_response(connection, answer.status, response);
	MHD_destroy_response(response);
	return queued;
}

/*
 * StartRequest records what the log line needs on a request's first call.
 */
static RequestState *
StartRequest(const char *method, const char *url)
{
	RequestState *state = calloc(1, sizeof(RequestState));

	if (state == NULL)
		abort();
	clock_gettime(CLOCK_MONOTONIC, &state->started);
	state->method = strdup(method);
	state->path = strdup(url);
	atomic_fetch_add(&requestsInFlight, 1);
	return state;
}

/*
 * HandleRequest answers a request: 404 for unknown paths, 405 for methods
 * other than GET, 401 without the secret, else the endpoint's JSON.  Any
 * request body is read and ignored.
 */
enum MHD_Result
HandleRequest(void *cls, struct MHD_Connection *connection, const char *url,
			  const char *method, const char *version, const char *uploadData,
			  size_t *uploadDataSize, void **requestState)
{
	const ShimConfig *config = cls;
	RequestState *state = *requestState;
	const Route *route;

	(void) version;
	(void) uploadData;
	if (state == NULL)
	{
		*requestState = StartRequest(method, url);
		return MHD_YES;
	}
	if (*uploadDataSize != 0 || state->status != 0)
	{
		*uploadDataSize = 0;
		return MHD_YES;
	}

	route = FindRoute(url);
	if (route == NULL)
		return Respond(connection, state, StaticResponse(404, "{\"ok\": false, \"error\": \"not found\"}"),
					   NULL, NULL);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
		return Respond(connection, state,
					   StaticResponse(405, "{\"ok\": false, \"error\": \"method not allowed\"}"),
					   MHD_HTTP_HEADER_ALLOW, MHD_HTTP_METHOD_GET);
	if (route->needsSecret &&
		!RequestIsAuthorized(config,
							 MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
							 MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "X-Cron-Secret")))
		return Respond(connection, state,
					   StaticResponse(401, "{\"ok\": false, \"error\": \"invalid or missing CRON_SECRET\"}"),
					   MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");

	return Respond(connection, state,
				   route->sql ? RunSqlJob(config, route->sql) : CheckDatabaseHealth(config),
				   NULL, NULL);
}

/*
 * RequestCompleted writes the request's log line (method, path, status,
 * duration; never a header) and frees its state.
 */
void
RequestCompleted(void *cls, struct MHD_Connection *connection, void **requestState,
				 enum MHD_RequestTerminationCode code)
{
	RequestState *state = *requestState;
	struct timespec finished;
	char	   *path;

	(void) cls;
	(void) connection;
	(void) code;
	if (state == NULL)
		return;
	clock_gettime(CLOCK_MONOTONIC, &finished);
	path = JsonString(state->path);
	fprintf(stderr, "interactions-cron-http: %s %s %u %.1fms\n", state->method, path,
			state->status,
			(finished.tv_sec - state->started.tv_sec) * 1e3 +
			(finished.tv_nsec - state->started.tv_nsec) / 1e6);
	free(path);
	free(state->method);
	free(state->path);
	free(state);
	*requestState = NULL;
	atomic_fetch_sub(&requestsInFlight, 1);
}
