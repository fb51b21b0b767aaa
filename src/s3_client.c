/*
 * s3_client.c
 *	  PutObject and multipart uploads to S3 or an S3-compatible store.
 *
 * Requests are signed by libcurl (CURLOPT_AWS_SIGV4) and carry the payload's
 * SHA-256 in x-amz-content-sha256 so that the store can verify it.  Memory
 * is bounded by one part: a file up to the part size is sent in one PUT, a
 * larger one in parts of that size read from the spool file in turn.
 * Transient failures (transport errors, 5xx, 408, 429) are retried with
 * exponential backoff; other answers fail at once with the store's own
 * error code in the message.  An object only becomes visible complete.
 *
 * Every attempt is bounded: by a deadline (s3_request_timeout), by a
 * low-speed limit (s3_low_speed_limit for s3_low_speed_time), and by a
 * pending cancel or termination, which stops the transfer within a second.
 */
#include "postgres.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cryptohash.h"
#include "common/sha2.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "interactions_cron/guc.h"
#include "interactions_cron/s3_client.h"
#include "interactions_cron/s3_credentials.h"
#include "interactions_cron/s3_xml.h"

/* Attempts of one request before a transient failure becomes an error. */
#define S3_MAX_ATTEMPTS 4
#define S3_FIRST_BACKOFF_MS 200
/* Keep at most this much of an error response. */
#define S3_MAX_RESPONSE_BYTES (64 * 1024)
/*
 * A listing page asks for at most this many keys (S3's own maximum); an
 * answer of more, or longer than the bytes below (1,000 keys of 1,024 bytes
 * with their metadata take about 1.5 MB), is refused, not cut.  A listing
 * of more pages than that is refused too, as is a page that hands back the
 * continuation token it was asked with: a store that never ends a listing
 * fails the tenant instead of holding it for ever.
 */
#define S3_LIST_MAX_KEYS 1000
#define S3_LIST_MAX_PAGE_BYTES (8 * 1024 * 1024)
#define S3_LIST_MAX_PAGES 10000

/* What one request came back with. */
typedef struct S3Response
{
	long		status;			/* HTTP status, 0 on a transport failure */
	CURLcode	transportCode;	/* why a transport failure failed */
	bool		setupFailed;	/* libcurl refused the request's options */
	char		transportError[CURL_ERROR_SIZE];
	StringInfoData body;
	size_t		wholeBodyLimit; /* 0: keep the start; else the whole, or fail past it */
	bool		bodyTooLarge;	/* the body went past wholeBodyLimit */
	char	   *etag;
} S3Response;

/*
 * RequireSetting raises the fail-fast error of an incomplete configuration.
 */
static void
RequireSetting(const char *value, const char *settingName)
{
	if (value == NULL || value[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("interactions_cron.storage is 's3' but %s is not set", settingName),
				 errhint("Set %s (superuser only), or set interactions_cron.storage to 'local'.",
						 settingName)));
}

/*
 * S3TargetAt returns the target for a bucket, prefix and endpoint (empty:
 * AWS in the configured region), with the configured region and
 * credentials (s3_credentials.c says from where); they never appear in a
 * message.
 */
S3Target *
S3TargetAt(const char *endpoint, const char *bucket, const char *prefix)
{
	S3Target   *target = palloc0(sizeof(S3Target));

	RequireSetting(S3RegionSetting, "interactions_cron.s3_region");
	target->bucket = pstrdup(bucket);
	target->region = pstrdup(S3RegionSetting);
	target->prefix = pstrdup(prefix ? prefix : "");
	target->pathStyle = S3PathStyleSetting;
	target->partBytes = (Size) S3MultipartThresholdKb * 1024;
	target->requestTimeoutMs = S3RequestTimeoutMs;
	target->lowSpeedLimitBytes = S3LowSpeedLimitBytes;
	target->lowSpeedTimeSeconds = S3LowSpeedTimeSeconds;
	target->endpoint = (endpoint && endpoint[0] != '\0')
		? pstrdup(endpoint)
		: psprintf("https://s3.%s.amazonaws.com", target->region);
	while (target->endpoint[0] != '\0' && target->endpoint[strlen(target->endpoint) - 1] == '/')
		target->endpoint[strlen(target->endpoint) - 1] = '\0';

	S3ResolveCredentials(target);
	return target;
}

/*
 * S3TargetFromSettings checks the S3 configuration once, at the start of a
 * run, and fails fast when it is incomplete.
 */
S3Target *
S3TargetFromSettings(void)
{
	RequireSetting(S3BucketSetting, "interactions_cron.s3_bucket");
	return S3TargetAt(S3EndpointSetting, S3BucketSetting, S3PrefixSetting);
}

/*
 * S3Location returns s3://bucket/prefix, for the run's result.
 */
char *
S3Location(const S3Target *target)
{
	return psprintf("s3://%s/%s", target->bucket, target->prefix);
}

/*
 * AppendUriEncoded appends a key with every byte but the unreserved ones (and
 * '/' when keepSlash) percent-encoded, which is also its SigV4 canonical
 * form: libcurl signs the path and query exactly as they are sent.
 */
static void
AppendUriEncoded(StringInfo url, const char *key, bool keepSlash)
{
	for (const unsigned char *p = (const unsigned char *) key; *p != '\0'; p++)
	{
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
			*p == '-' || *p == '_' || *p == '.' || *p == '~' || (keepSlash && *p == '/'))
			appendStringInfoChar(url, (char) *p);
		else
			appendStringInfo(url, "%%%02X", *p);
	}
}

/*
 * ObjectUrl returns the URL of a key, path-style or virtual-hosted, with an
 * optional query string.
 */
static char *
ObjectUrl(const S3Target *target, const char *key, const char *query)
{
	StringInfoData url;
	const char *schemeEnd = strstr(target->endpoint, "://");

	initStringInfo(&url);
	if (target->pathStyle || schemeEnd == NULL)
		appendStringInfo(&url, "%s/%s/", target->endpoint, target->bucket);
	else
		appendStringInfo(&url, "%.*s%s.%s/", (int) (schemeEnd + 3 - target->endpoint),
						 target->endpoint, target->bucket, schemeEnd + 3);
	AppendUriEncoded(&url, key, true);
	if (query != NULL)
		appendStringInfo(&url, "?%s", query);
	return url.data;
}

/*
 * UploadIdQuery returns a query string naming an upload, the id encoded as
 * SigV4's canonical query requires (AWS's ids may hold any character).
 * partNumber, when positive, comes first, as the canonical order wants.
 */
static char *
UploadIdQuery(int partNumber, const char *uploadId)
{
	StringInfoData query;

	initStringInfo(&query);
	if (partNumber > 0)
		appendStringInfo(&query, "partNumber=%d&", partNumber);
	appendStringInfoString(&query, "uploadId=");
	AppendUriEncoded(&query, uploadId, false);
	return query.data;
}

/*
 * Sha256Hex returns the lowercase hex SHA-256 of a payload.
 */
static char *
Sha256Hex(const char *data, size_t length)
{
	pg_cryptohash_ctx *context = pg_cryptohash_create(PG_SHA256);
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	char	   *hex = palloc(PG_SHA256_DIGEST_LENGTH * 2 + 1);

	if (context == NULL || pg_cryptohash_init(context) < 0 ||
		pg_cryptohash_update(context, (const uint8 *) data, length) < 0 ||
		pg_cryptohash_final(context, digest, sizeof(digest)) < 0)
		elog(ERROR, "could not compute SHA-256: %s", pg_cryptohash_error(context));
	pg_cryptohash_free(context);
	for (int i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
		sprintf(hex + i * 2, "%02x", digest[i]);
	return hex;
}

/*
 * InitResponse prepares a response for SendOnce; wholeBodyLimit as in
 * CollectBody.  A whole body's room is allocated here, so that CollectBody,
 * called by libcurl, never needs memory it could fail to get: an error must
 * not unwind through libcurl.
 */
static void
InitResponse(S3Response *response, size_t wholeBodyLimit)
{
	initStringInfo(&response->body);
	if (wholeBodyLimit > 0)
		enlargeStringInfo(&response->body, (int) wholeBodyLimit);
	response->wholeBodyLimit = wholeBodyLimit;
	response->bodyTooLarge = false;
}

/*
 * CollectBody keeps the start of a response body (for error messages), or,
 * with a wholeBodyLimit (a listing), all of it, stopping the transfer once
 * it goes past that limit: a listing cut short would hide keys.
 */
static size_t
CollectBody(char *data, size_t size, size_t count, void *userdata)
{
	S3Response *response = userdata;
	StringInfo	body = &response->body;
	size_t		length = size * count;

	if (response->wholeBodyLimit > 0)
	{
		if (length > response->wholeBodyLimit - body->len)
		{
			response->bodyTooLarge = true;
			return 0;			/* libcurl ends the transfer: CURLE_WRITE_ERROR */
		}
		appendBinaryStringInfo(body, data, length);
	}
	else if (body->len < S3_MAX_RESPONSE_BYTES)
		appendBinaryStringInfo(body, data, Min(length, (size_t) (S3_MAX_RESPONSE_BYTES - body->len)));
	return length;
}

/*
 * CollectEtag keeps the ETag header of an uploaded part.
 */
static size_t
CollectEtag(char *data, size_t size, size_t count, void *userdata)
{
	S3Response *response = userdata;
	size_t		length = size * count;

	if (length > 5 && pg_strncasecmp(data, "etag:", 5) == 0)
	{
		char	   *value = pnstrdup(data + 5, length - 5);

		response->etag = pstrdup(value + strspn(value, " \t"));
		response->etag[strcspn(response->etag, "\r\n")] = '\0';
	}
	return length;
}

/*
 * StopOnInterrupt is libcurl's progress callback, called at least once a
 * second even while nothing moves: it aborts the transfer when a cancel
 * (statement_timeout, pg_cancel_backend) or a termination (the SIGTERM that
 * a cancelled call sends its export workers) is pending.  The interrupt is
 * not served here, since an error must not unwind through libcurl; SendOnce
 * serves it once curl has been cleaned up.  Other interrupts (barriers,
 * notifications) do not fail an upload, and neither does a cancel that could
 * not be served now.
 */
static int
StopOnInterrupt(void *userdata, curl_off_t dltotal, curl_off_t dlnow,
				curl_off_t ultotal, curl_off_t ulnow)
{
	return (INTERRUPTS_PENDING_CONDITION() && (QueryCancelPending || ProcDiePending) &&
			INTERRUPTS_CAN_BE_PROCESSED()) ? 1 : 0;
}

/* Sets a curl option unless an earlier one failed; SendOnce's locals. */
#define SET_CURL_OPTION(option, value) \
	do { \
		if (code == CURLE_OK) \
			code = curl_easy_setopt(curl, (option), (value)); \
	} while (0)

/*
 * AppendHeader appends a header line to a curl list, remembering in *failed
 * when libcurl ran out of memory (the list is then kept as it was, so that
 * it can still be freed).
 */
static struct curl_slist *
AppendHeader(struct curl_slist *headers, const char *line, bool *failed)
{
	struct curl_slist *extended = curl_slist_append(headers, line);

	if (extended == NULL)
	{
		*failed = true;
		return headers;
	}
	return extended;
}

/*
 * SendOnce performs one signed request.  No error is raised while curl holds
 * memory of its own; the outcome is left in *response.
 */
static void
SendOnce(const S3Target *target, const char *method, const char *url,
		 const char *payload, size_t length, const char *contentType, S3Response *response)
{
	/* Everything that may raise an error is made before curl has memory. */
	char	   *hashHeader = psprintf("x-amz-content-sha256: %s", Sha256Hex(payload, length));
	char	   *typeHeader = psprintf("Content-Type: %s", contentType);
	char	   *tokenHeader = target->sessionToken
		? psprintf("x-amz-security-token: %s", target->sessionToken) : NULL;
	char	   *provider = psprintf("aws:amz:%s:s3", target->region);
	char	   *credentials = psprintf("%s:%s", target->accessKeyId, target->secretAccessKey);
	CURL	   *curl = curl_easy_init();
	struct curl_slist *headers = NULL;
	bool		headersFailed = false;
	CURLcode	code = CURLE_OK;

	resetStringInfo(&response->body);
	response->bodyTooLarge = false;
	response->status = 0;
	response->etag = NULL;
	response->transportCode = CURLE_OK;
	response->setupFailed = false;
	response->transportError[0] = '\0';
	if (curl == NULL)
	{
		strlcpy(response->transportError, "could not initialise libcurl", CURL_ERROR_SIZE);
		memset(credentials, 0, strlen(credentials));
		if (tokenHeader != NULL)
			memset(tokenHeader, 0, strlen(tokenHeader));
		return;
	}

	/*
	 * No "Expect:" line here, although it is how libcurl is usually told not
	 * to send "Expect: 100-continue": libcurl 7.88 (Debian bookworm) signs
	 * every header of this list, that one too, so each request would list
	 * expect in SignedHeaders without sending it, and S3 rejects that.  Left
	 * alone, libcurl sends the 100-continue only for bodies above 1 MB, and
	 * unsigned, as the AWS SDKs do; S3 accepts it, and answers a refusal
	 * before the part is sent.
	 */
	headers = AppendHeader(headers, hashHeader, &headersFailed);
	headers = AppendHeader(headers, typeHeader, &headersFailed);
	if (tokenHeader != NULL)
		headers = AppendHeader(headers, tokenHeader, &headersFailed);
	if (headersFailed)
		code = CURLE_OUT_OF_MEMORY;

	SET_CURL_OPTION(CURLOPT_URL, url);
	SET_CURL_OPTION(CURLOPT_CUSTOMREQUEST, method);
	SET_CURL_OPTION(CURLOPT_POSTFIELDS, payload);
	SET_CURL_OPTION(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) length);
	SET_CURL_OPTION(CURLOPT_HTTPHEADER, headers);
	SET_CURL_OPTION(CURLOPT_AWS_SIGV4, provider);
	SET_CURL_OPTION(CURLOPT_USERPWD, credentials);
	SET_CURL_OPTION(CURLOPT_WRITEFUNCTION, CollectBody);
	SET_CURL_OPTION(CURLOPT_WRITEDATA, response);
	SET_CURL_OPTION(CURLOPT_HEADERFUNCTION, CollectEtag);
	SET_CURL_OPTION(CURLOPT_HEADERDATA, response);
	SET_CURL_OPTION(CURLOPT_ERRORBUFFER, response->transportError);
	SET_CURL_OPTION(CURLOPT_NOSIGNAL, 1L);
	SET_CURL_OPTION(CURLOPT_CONNECTTIMEOUT, 10L);
	/* The whole attempt, whatever the server sends (an endless body too). */
	SET_CURL_OPTION(CURLOPT_TIMEOUT_MS, (long) target->requestTimeoutMs);
	/* A stalled or trickling transfer fails sooner than the deadline. */
	SET_CURL_OPTION(CURLOPT_LOW_SPEED_LIMIT, (long) target->lowSpeedLimitBytes);
	SET_CURL_OPTION(CURLOPT_LOW_SPEED_TIME, (long) target->lowSpeedTimeSeconds);
	SET_CURL_OPTION(CURLOPT_NOPROGRESS, 0L);
	SET_CURL_OPTION(CURLOPT_XFERINFOFUNCTION, StopOnInterrupt);

	if (code != CURLE_OK)
	{
		response->setupFailed = true;
		snprintf(response->transportError, CURL_ERROR_SIZE, "could not set up the request: %s",
				 curl_easy_strerror(code));
	}
	else
	{
		code = curl_easy_perform(curl);
		if (code == CURLE_OK)
			code = curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response->status);
		if (code != CURLE_OK)
		{
			response->status = 0;
			response->transportCode = code;
			if (response->transportError[0] == '\0')
				strlcpy(response->transportError, curl_easy_strerror(code), CURL_ERROR_SIZE);
		}
	}

	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	memset(credentials, 0, strlen(credentials));
	if (tokenHeader != NULL)
		memset(tokenHeader, 0, strlen(tokenHeader));
	CHECK_FOR_INTERRUPTS();
}

#undef SET_CURL_OPTION

/*
 * ResponseElement returns the text of the first element of a local name in a
 * response's XML body, or NULL.
 */
static char *
ResponseElement(const S3Response *response, const char *name)
{
	return S3XmlElementText(response->body.data, response->body.len, name);
}

/*
 * IsTransient says whether a failed request is worth trying again.
 */
static bool
IsTransient(const S3Response *response)
{
	if (response->setupFailed || response->bodyTooLarge)
		return false;
	return response->status == 0 || response->status >= 500 ||
		response->status == 408 || response->status == 429;
}

static void SendAccepting(const S3Target *target, const char *what, const char *method,
						  const char *url, const char *payload, size_t length,
						  const char *contentType, S3Response *response, long acceptedStatus);

/*
 * Send performs a request, retrying transient failures with backoff, and
 * raises an error naming the operation and the store's error code when it
 * does not succeed.
 */
static void
Send(const S3Target *target, const char *what, const char *method, const char *url,
	 const char *payload, size_t length, const char *contentType, S3Response *response)
{
	SendAccepting(target, what, method, url, payload, length, contentType, response, 0);
}

/*
 * SendAccepting is Send that also takes acceptedStatus (besides 2xx) as
 * success.
 */
static void
SendAccepting(const S3Target *target, const char *what, const char *method, const char *url,
			  const char *payload, size_t length, const char *contentType, S3Response *response,
			  long acceptedStatus)
{
	int			backoffMs = S3_FIRST_BACKOFF_MS;
	char	   *code;
	char	   *message;

	for (int attempt = 1;; attempt++)
	{
		SendOnce(target, method, url, payload, length, contentType, response);
		if ((response->status >= 200 && response->status < 300) ||
			(acceptedStatus != 0 && response->status == acceptedStatus))
			return;
		if (!IsTransient(response) || attempt == S3_MAX_ATTEMPTS)
			break;
		ereport(LOG,
				(errmsg("interactions_cron: S3 %s failed (%s), retrying in %d ms",
						what, response->status ? psprintf("HTTP %ld", response->status) : response->transportError,
						backoffMs)));
		/* A latch wait, not a sleep, so that a cancel ends the backoff at once. */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 backoffMs, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		backoffMs *= 2;
	}

	if (response->bodyTooLarge)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("S3 %s failed: the answer is longer than %zu bytes", what,
						response->wholeBodyLimit),
				 errhint("The store must answer ListObjectsV2 with at most max-keys keys per page.")));
	if (response->setupFailed)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("S3 %s failed: %s", what, response->transportError),
				 errhint("libcurl refused the request's options: it ran out of memory, or it is older "
						 "than 7.75, which brought SigV4 signing.")));
	if (response->status == 0 && response->transportCode == CURLE_OPERATION_TIMEDOUT)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("S3 %s failed after %d attempts: %s", what, S3_MAX_ATTEMPTS,
						response->transportError),
				 errdetail("Each attempt may take at most interactions_cron.s3_request_timeout (%d ms), "
						   "and fails sooner below interactions_cron.s3_low_speed_limit (%d bytes/s) "
						   "for interactions_cron.s3_low_speed_time (%d s).",
						   target->requestTimeoutMs, target->lowSpeedLimitBytes,
						   target->lowSpeedTimeSeconds),
				 errhint("Check that the store at interactions_cron.s3_endpoint answers; raise the "
						 "timeout only for a slow link and a large s3_multipart_threshold.")));
	if (response->status == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("S3 %s failed after %d attempts: %s", what, S3_MAX_ATTEMPTS,
						response->transportError),
				 errhint("Check interactions_cron.s3_endpoint and that the store is reachable.")));
	code = ResponseElement(response, "Code");
	message = ResponseElement(response, "Message");
	ereport(ERROR,
			(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
			 errmsg("S3 %s failed: HTTP %ld %s: %s%s", what, response->status,
					code ? code : "(no error code)", message ? message : "",
					IsTransient(response) ? psprintf(" (after %d attempts)", S3_MAX_ATTEMPTS) : "")));
}

/*
 * ReadChunk reads up to length bytes of a spool file at offset.
 */
static char *
ReadChunk(int fd, const char *path, off_t offset, size_t length)
{
	char	   *chunk = palloc(length);
	size_t		done = 0;

	while (done < length)
	{
		ssize_t		got = pg_pread(fd, chunk + done, length - done, offset + done);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read spool file \"%s\": %m", path)));
		done += got;
	}
	return chunk;
}

/*
 * UploadParts sends a large file as a multipart upload, aborting the upload
 * if a part or the completion fails so that no partial object remains.
 */
static void
UploadParts(const S3Target *target, const char *key, int fd, const char *path,
			off_t size, const char *contentType)
{
	S3Response response;
	char	   *uploadId;
	StringInfoData completion;

	InitResponse(&response, 0);
	Send(target, psprintf("multipart start of %s", key), "POST",
		 ObjectUrl(target, key, "uploads="), "", 0, contentType, &response);
	uploadId = ResponseElement(&response, "UploadId");
	if (uploadId == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("S3 multipart start of %s returned no UploadId", key)));

	initStringInfo(&completion);
	appendStringInfoString(&completion, "<CompleteMultipartUpload>");
	PG_TRY();
	{
		int			partNumber = 1;
		char	   *errorCode;

		for (off_t offset = 0; offset < size; offset += target->partBytes, partNumber++)
		{
			size_t		length = Min((off_t) target->partBytes, size - offset);
			char	   *part = ReadChunk(fd, path, offset, length);

			Send(target, psprintf("part %d of %s", partNumber, key), "PUT",
				 ObjectUrl(target, key, UploadIdQuery(partNumber, uploadId)),
				 part, length, contentType, &response);
			pfree(part);
			appendStringInfo(&completion, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>",
							 partNumber, response.etag ? response.etag : "");
		}
		appendStringInfoString(&completion, "</CompleteMultipartUpload>");
		Send(target, psprintf("multipart completion of %s", key), "POST",
			 ObjectUrl(target, key, UploadIdQuery(0, uploadId)),
			 completion.data, completion.len, "application/xml", &response);
		/* A completion can fail after its 200 has been sent: the body then holds an Error. */
		errorCode = ResponseElement(&response, "Code");
		if (errorCode != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
					 errmsg("S3 multipart completion of %s failed: %s", key, errorCode)));
	}
	PG_CATCH();
	{
		S3Response abortResponse;

		InitResponse(&abortResponse, 0);
		SendOnce(target, "DELETE", ObjectUrl(target, key, UploadIdQuery(0, uploadId)),
				 "", 0, contentType, &abortResponse);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * S3UploadFile uploads a spool file as the object key: one PUT up to the
 * part size, a multipart upload above it.
 */
void
S3UploadFile(const S3Target *target, const char *key, const char *path, const char *contentType)
{
	int			fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	struct stat status;

	if (fd < 0 || fstat(fd, &status) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open spool file \"%s\": %m", path)));

	if ((Size) status.st_size <= target->partBytes)
	{
		S3Response response;
		char	   *payload = ReadChunk(fd, path, 0, status.st_size);

		InitResponse(&response, 0);
		Send(target, psprintf("upload of %s", key), "PUT", ObjectUrl(target, key, NULL),
			 payload, status.st_size, contentType, &response);
		pfree(payload);
	}
	else
		UploadParts(target, key, fd, path, status.st_size, contentType);

	CloseTransientFile(fd);
}

/*
 * S3DeleteObject deletes an object.  An object that does not exist, or whose
 * bucket does not, is as good as deleted (HTTP 404).
 */
void
S3DeleteObject(const S3Target *target, const char *key)
{
	S3Response response;

	InitResponse(&response, 0);
	SendAccepting(target, psprintf("delete of %s", key), "DELETE", ObjectUrl(target, key, NULL),
				  "", 0, "application/octet-stream", &response, 404);
}

/*
 * ListQuery returns ListObjectsV2's query string for a prefix, its
 * parameters in SigV4's canonical (sorted) order and encoded as it wants.
 */
static char *
ListQuery(const char *prefix, const char *continuationToken)
{
	StringInfoData query;

	initStringInfo(&query);
	if (continuationToken != NULL)
	{
		appendStringInfoString(&query, "continuation-token=");
		AppendUriEncoded(&query, continuationToken, false);
		appendStringInfoChar(&query, '&');
	}
	appendStringInfo(&query, "list-type=2&max-keys=%d&prefix=", S3_LIST_MAX_KEYS);
	AppendUriEncoded(&query, prefix, false);
	return query.data;
}

/*
 * RequireListProgress refuses a listing that does not end: a truncated page
 * without a continuation token, one that hands back the token it was asked
 * with, or more pages than S3_LIST_MAX_PAGES.
 */
static void
RequireListProgress(const char *prefix, const S3ListPage *page, const char *askedToken, int pages)
{
	if (!page->truncated)
		return;
	if (page->nextToken == NULL || page->nextToken[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("S3 list of %s is truncated without a continuation token", prefix),
				 errhint("The store must support ListObjectsV2 (list-type=2).")));
	if (askedToken != NULL && strcmp(page->nextToken, askedToken) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("S3 list of %s does not end: page %d hands back the continuation token it was asked with",
						prefix, pages)));
	if (pages >= S3_LIST_MAX_PAGES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("S3 list of %s has more than %d pages of %d keys", prefix,
						S3_LIST_MAX_PAGES, S3_LIST_MAX_KEYS)));
}

/*
 * S3ListKeys calls visit(key, argument) for every key that the store lists
 * under prefix (ListObjectsV2, page after page).  Each page is read, parsed
 * and visited in a memory context of its own, reset after the page, so that
 * memory stays that of one page however long the listing: visit must copy
 * into a context of its own whatever it keeps.  The keys are the store's:
 * the caller checks them.
 */
void
S3ListKeys(const S3Target *target, const char *prefix, S3KeyVisitor visit, void *argument)
{
	MemoryContext callerContext = CurrentMemoryContext;
	MemoryContext pageContext = AllocSetContextCreate(CurrentMemoryContext, "interactions_cron S3 list page",
													  ALLOCSET_DEFAULT_SIZES);
	char	   *continuationToken = NULL;
	int			pages = 0;

	do
	{
		S3Response response;
		S3ListPage page;
		ListCell   *cell;

		MemoryContextSwitchTo(pageContext);
		InitResponse(&response, S3_LIST_MAX_PAGE_BYTES);
		Send(target, psprintf("list of %s", prefix), "GET",
			 ObjectUrl(target, "", ListQuery(prefix, continuationToken)),
			 "", 0, "application/octet-stream", &response);
		pages++;
		if (!S3XmlParseListPage(response.body.data, response.body.len, S3_LIST_MAX_KEYS, &page))
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("S3 list of %s returned no ListObjectsV2 page of at most %d keys", prefix,
							S3_LIST_MAX_KEYS)));
		RequireListProgress(prefix, &page, continuationToken, pages);

		foreach(cell, page.keys)
			visit(lfirst(cell), argument);
		if (continuationToken != NULL)
			pfree(continuationToken);
		continuationToken = page.truncated ? MemoryContextStrdup(callerContext, page.nextToken) : NULL;
		MemoryContextSwitchTo(callerContext);
		MemoryContextReset(pageContext);
		CHECK_FOR_INTERRUPTS();
	} while (continuationToken != NULL);
	MemoryContextDelete(pageContext);
}
