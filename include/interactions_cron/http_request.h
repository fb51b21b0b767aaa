/*
 * http_request.h
 *	  Bounded, cancellable HTTP requests with libcurl.
 */
#ifndef INTERACTIONS_CRON_HTTP_REQUEST_H
#define INTERACTIONS_CRON_HTTP_REQUEST_H

#include <curl/curl.h>

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"

/* Sets a curl option unless an earlier one failed (the caller's locals curl and code). */
#define SET_CURL_OPTION(option, value) \
	do { \
		if (code == CURLE_OK) \
			code = curl_easy_setopt(curl, (option), (value)); \
	} while (0)

/* One plain (unsigned) request. */
typedef struct HttpRequest
{
	const char *method;
	const char *url;
	List	   *headers;		/* header lines (char *), may be NIL */
	const char *body;			/* NULL: none */
	size_t		bodyLength;
	long		connectTimeoutMs;
	long		timeoutMs;		/* the whole attempt */
	int			attempts;		/* tries of a transient failure, at least 1 */
} HttpRequest;

/* What it came back with. */
typedef struct HttpResponse
{
	long		status;			/* HTTP status, 0 on a transport failure */
	char		transportError[CURL_ERROR_SIZE];
	StringInfoData body;
} HttpResponse;

extern int	HttpStopOnInterrupt(void *userdata, curl_off_t dltotal, curl_off_t dlnow,
								curl_off_t ultotal, curl_off_t ulnow);
extern size_t HttpCollectBody(char *data, size_t size, size_t count, void *userdata);
extern bool HttpPerform(const HttpRequest *request, HttpResponse *response);
extern char *HttpFailure(const HttpResponse *response);
extern void HttpForgetResponse(HttpResponse *response);

#endif
