/*
 * routes.c
 *	  Routing, authentication and the per-request log line.
 */
#include <stdatomic.h>
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
 * Allow or WWW-Authenticate header when given.  A 413, and every answer
 * once the shim is stopping, closes the connection after it: an unread body
 * cannot be parsed as a next request, and a stopping shim serves no more.
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
	if (answer.status == MHD_HTTP_CONTENT_TOO_LARGE || ShimStopping())
		MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close");
	state->status = answer.status;
	queued = MHD_queue_response(connection, answer.status, response);
	MHD_destroy_response(response);
	return queued;
}

/*
 * StartRequest records what the log line needs.
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
	if (state->method == NULL || state->path == NULL)
		abort();
	atomic_fetch_add(&requestsInFlight, 1);
	return state;
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
 * Answer decides a request without a body: 503 while stopping, 400 for a
 * target that is not a path (libmicrohttpd 1.0 passes an empty one on,
 * 0.9 refused it itself), 404 for unknown paths, 405 for methods other than
 * GET, 401 without the secret, else the endpoint's JSON.
 */
static enum MHD_Result
Answer(const ShimConfig *config, struct MHD_Connection *connection, RequestState *state,
	   const char *url, const char *method)
{
	const Route *route = FindRoute(url);

	if (ShimStopping())
		return Respond(connection, state,
					   StaticResponse(503, "{\"ok\": false, \"error\": \"shutting down\"}"),
					   NULL, NULL);
	if (url[0] != '/')
		return Respond(connection, state, StaticResponse(400, "{\"ok\": false, \"error\": \"bad request\"}"),
					   NULL, NULL);
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
				   route->sql ? RunSqlJob(config, route->sql, ClientSocket(connection))
				   : CheckDatabaseHealth(config),
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

	(void) version;
	(void) uploadData;
	if (state == NULL)
	{
		state = StartRequest(method, url);
		*requestState = state;
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
		queued = Answer(cls, connection, state, url, method);
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
