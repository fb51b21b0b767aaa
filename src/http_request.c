/*
 * http_request.c
 *	  Bounded, cancellable HTTP requests with libcurl, for the credential
 *	  sources (STS, the container endpoint, EC2 instance metadata); the S3
 *	  client signs its own but stops on interrupts the same way.
 *
 * Every attempt is bounded by a connect timeout and a deadline, and a
 * pending cancel or termination stops it within a second.  No error is
 * raised while libcurl holds memory of its own: the outcome is left in the
 * response, and pending interrupts are served once curl has been cleaned up.
 * Requests and answers may carry secrets (a token, credentials): neither is
 * ever logged, and callers wipe them once read (HttpForgetResponse).
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/wait_event.h"

#include "interactions_cron/http_request.h"

/* Keep at most this much of an answer: credentials and S3's errors are a few kB. */
#define HTTP_MAX_RESPONSE_BYTES (64 * 1024)
#define HTTP_FIRST_BACKOFF_MS 200

/*
 * HttpStopOnInterrupt is libcurl's progress callback, called at least once a
 * second even while nothing moves: it aborts the transfer when a cancel
 * (statement_timeout, pg_cancel_backend) or a termination (the SIGTERM that
 * a cancelled call sends its export workers) is pending.  The interrupt is
 * not served here, since an error must not unwind through libcurl; the
 * caller serves it once curl has been cleaned up.  Other interrupts
 * (barriers, notifications) do not fail a transfer, and neither does a
 * cancel that could not be served now.
 */
int
HttpStopOnInterrupt(void *userdata, curl_off_t dltotal, curl_off_t dlnow,
					curl_off_t ultotal, curl_off_t ulnow)
{
	return (INTERRUPTS_PENDING_CONDITION() && (QueryCancelPending || ProcDiePending) &&
			INTERRUPTS_CAN_BE_PROCESSED()) ? 1 : 0;
}

/*
 * HttpCollectBody is libcurl's write callback that keeps the start of a
 * response body in a StringInfo.
 */
size_t
HttpCollectBody(char *data, size_t size, size_t count, void *userdata)
{
	StringInfo	body = userdata;
	size_t		length = size * count;

	if (body->len < HTTP_MAX_RESPONSE_BYTES)
		appendBinaryStringInfo(body, data, Min(length, (size_t) (HTTP_MAX_RESPONSE_BYTES - body->len)));
	return length;
}

/*
 * PerformOnce makes one attempt of a request.
 */
static void
PerformOnce(const HttpRequest *request, HttpResponse *response)
{
	CURL	   *curl = curl_easy_init();
	struct curl_slist *headers = NULL;
	CURLcode	code = CURLE_OK;
	ListCell   *cell;

	resetStringInfo(&response->body);
	response->status = 0;
	response->transportError[0] = '\0';
	if (curl == NULL)
	{
		strlcpy(response->transportError, "could not initialise libcurl", CURL_ERROR_SIZE);
		return;
	}
	foreach(cell, request->headers)
	{
		struct curl_slist *extended = curl_slist_append(headers, lfirst(cell));

		if (extended == NULL)
			code = CURLE_OUT_OF_MEMORY;
		else
			headers = extended;
	}

	SET_CURL_OPTION(CURLOPT_URL, request->url);
	SET_CURL_OPTION(CURLOPT_CUSTOMREQUEST, request->method);
	if (request->body != NULL)
	{
		SET_CURL_OPTION(CURLOPT_POSTFIELDS, request->body);
		SET_CURL_OPTION(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) request->bodyLength);
	}
	SET_CURL_OPTION(CURLOPT_HTTPHEADER, headers);
	SET_CURL_OPTION(CURLOPT_WRITEFUNCTION, HttpCollectBody);
	SET_CURL_OPTION(CURLOPT_WRITEDATA, &response->body);
	SET_CURL_OPTION(CURLOPT_ERRORBUFFER, response->transportError);
	SET_CURL_OPTION(CURLOPT_NOSIGNAL, 1L);
	SET_CURL_OPTION(CURLOPT_CONNECTTIMEOUT_MS, request->connectTimeoutMs);
	SET_CURL_OPTION(CURLOPT_TIMEOUT_MS, request->timeoutMs);
	SET_CURL_OPTION(CURLOPT_NOPROGRESS, 0L);
	SET_CURL_OPTION(CURLOPT_XFERINFOFUNCTION, HttpStopOnInterrupt);

	if (code == CURLE_OK)
		code = curl_easy_perform(curl);
	if (code == CURLE_OK)
		code = curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response->status);
	if (code != CURLE_OK)
	{
		response->status = 0;
		if (response->transportError[0] == '\0')
			strlcpy(response->transportError, curl_easy_strerror(code), CURL_ERROR_SIZE);
	}
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
}

/*
 * HttpPerform makes a request, trying a transient failure (no answer, 5xx,
 * 429) again with backoff up to request->attempts times, and says whether
 * it was answered at all; the answer, whatever its status, is in
 * *response.  A pending cancel is served between attempts and at the end.
 */
bool
HttpPerform(const HttpRequest *request, HttpResponse *response)
{
	int			backoffMs = HTTP_FIRST_BACKOFF_MS;

	initStringInfo(&response->body);
	/*
	 * Room for the whole body HttpCollectBody keeps: no credentials are left
	 * in memory freed by a reallocation, and no allocation can fail inside
	 * libcurl's callback.
	 */
	enlargeStringInfo(&response->body, HTTP_MAX_RESPONSE_BYTES + 1);
	for (int attempt = 1;; attempt++)
	{
		PerformOnce(request, response);
		CHECK_FOR_INTERRUPTS();
		if (response->status != 0 && response->status < 500 && response->status != 429)
			break;
		if (attempt >= request->attempts)
			break;
		/* A latch wait, not a sleep, so that a cancel ends the backoff at once. */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 backoffMs, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		backoffMs *= 2;
	}
	return response->status != 0;
}

/*
 * HttpFailure says how a request failed ("did not answer (why)", "answered
 * HTTP 404"), without the body, which may hold secrets.
 */
char *
HttpFailure(const HttpResponse *response)
{
	if (response->status == 0)
		return psprintf("did not answer (%s)", response->transportError);
	return psprintf("answered HTTP %ld", response->status);
}

/*
 * HttpForgetResponse wipes and frees a response's body.
 */
void
HttpForgetResponse(HttpResponse *response)
{
	if (response->body.data == NULL)
		return;
	explicit_bzero(response->body.data, response->body.maxlen);
	pfree(response->body.data);
	response->body.data = NULL;
}
