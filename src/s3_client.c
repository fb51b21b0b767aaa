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

/* Attempts of one request before a transient failure becomes an error. */
#define S3_MAX_ATTEMPTS 4
#define S3_FIRST_BACKOFF_MS 200
/* Keep at most this much of an error response. */
#define S3_MAX_RESPONSE_BYTES (64 * 1024)
/* S3's answer to If-None-Match: * when the key exists: nothing was written. */
#define S3_PRECONDITION_FAILED 412
/* Read at most this much of an object (a lake file, whole). */
#define S3_MAX_OBJECT_BYTES (256 * 1024 * 1024)

/* What one request came back with. */
typedef struct S3Response
{
	long		status;			/* HTTP status, 0 on a transport failure */
	CURLcode	transportCode;	/* why a transport failure failed */
	bool		setupFailed;	/* libcurl refused the request's options */
	char		transportError[CURL_ERROR_SIZE];
	StringInfoData body;
	bool		wholeBody;		/* keep the whole body (an object read), not its start */
	bool		createOnly;		/* If-None-Match: *, so that an existing object stays */
	bool		maybeApplied;	/* an earlier attempt failed after it may have taken effect */
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
 * AppendWithoutError appends to a whole object's body and returns length,
 * or 0 (which ends the transfer, and fails it) past S3_MAX_OBJECT_BYTES or
 * when memory runs out: no error may be raised through libcurl.
 */
static size_t
AppendWithoutError(StringInfo body, const char *data, size_t length)
{
	if (length >= (size_t) (S3_MAX_OBJECT_BYTES - body->len))
		return 0;
	if ((size_t) body->len + length + 1 > (size_t) body->maxlen)
	{
		Size		grown = Max((Size) body->maxlen * 2, (Size) body->len + length + 1);
		char	   *larger = MemoryContextAllocExtended(GetMemoryChunkContext(body->data), grown,
														MCXT_ALLOC_NO_OOM);

		if (larger == NULL)
			return 0;
		memcpy(larger, body->data, body->len + 1);
		pfree(body->data);
		body->data = larger;
		body->maxlen = grown;
	}
	memcpy(body->data + body->len, data, length);
	body->len += length;
	body->data[body->len] = '\0';
	return length;
}

/*
 * CollectBody keeps the start of a response body (for error messages), or
 * the whole body of an object read, up to S3_MAX_OBJECT_BYTES (past that,
 * it ends the transfer, which fails).
 */
static size_t
CollectBody(char *data, size_t size, size_t count, void *userdata)
{
	S3Response *response = userdata;
	StringInfo	body = &response->body;
	size_t		length = size * count;

	if (response->wholeBody)
		return AppendWithoutError(body, data, length);
	if (body->len < S3_MAX_RESPONSE_BYTES)
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
	if (response->createOnly)
		headers = AppendHeader(headers, "If-None-Match: *", &headersFailed);
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
 * XmlElement returns the text of the first <name> element of a response.
 */
static char *
XmlElement(const char *xml, const char *name)
{
	char	   *open = psprintf("<%s>", name);
	char	   *close = psprintf("</%s>", name);
	const char *start = strstr(xml, open);
	const char *end;

	if (start == NULL)
		return NULL;
	start += strlen(open);
	end = strstr(start, close);
	return end ? pnstrdup(start, end - start) : NULL;
}

/*
 * IsTransient says whether a failed request is worth trying again.
 */
static bool
IsTransient(const S3Response *response)
{
	if (response->setupFailed)
		return false;
	/* 409: a conditional write of the same key was in flight (S3's ConditionalRequestConflict). */
	return response->status == 0 || response->status >= 500 ||
		response->status == 408 || response->status == 429 ||
		(response->createOnly && response->status == 409);
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

	for (int attempt = 1;; attempt++)
	{
		SendOnce(target, method, url, payload, length, contentType, response);
		if ((response->status >= 200 && response->status < 300) ||
			(acceptedStatus != 0 && response->status == acceptedStatus))
			return;
		if (!IsTransient(response) || attempt == S3_MAX_ATTEMPTS)
			break;
		/* No answer, or a server error: the request may have taken effect all the same. */
		response->maybeApplied = true;
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
	ereport(ERROR,
			(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
			 errmsg("S3 %s failed: HTTP %ld %s: %s%s", what, response->status,
					XmlElement(response->body.data, "Code") ? XmlElement(response->body.data, "Code") : "(no error code)",
					XmlElement(response->body.data, "Message") ? XmlElement(response->body.data, "Message") : "",
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
 * ObjectHolds says whether the object key holds exactly these bytes: an
 * upload answered "exists" after an attempt that may have taken effect is
 * this upload's own when it does.
 */
static bool
ObjectHolds(const S3Target *target, const char *key, const char *data, size_t length)
{
	StringInfo	stored = S3GetObject(target, key);

	return (size_t) stored->len == length && memcmp(stored->data, data, length) == 0;
}

/*
 * UploadedOrOurs turns the answer to a create-only upload into whether the
 * object now holds the upload: yes unless S3 answered that the key exists,
 * and then only when an earlier attempt may have written it and it holds
 * exactly this content (read whole by *content, called only then).
 */
static bool
UploadedOrOurs(const S3Target *target, const char *key, const S3Response *response,
			   char *(*content) (void *argument, size_t *length), void *argument)
{
	char	   *data;
	size_t		length;

	if (response->status != S3_PRECONDITION_FAILED)
		return true;
	if (!response->maybeApplied)
		return false;
	data = content(argument, &length);
	return ObjectHolds(target, key, data, length);
}

/* A spool file, as UploadedOrOurs reads it back. */
typedef struct SpoolFile
{
	int			fd;
	const char *path;
	off_t		size;
} SpoolFile;

/*
 * SpoolFileContent reads a whole spool file for UploadedOrOurs.
 */
static char *
SpoolFileContent(void *argument, size_t *length)
{
	SpoolFile  *file = argument;

	*length = file->size;
	return ReadChunk(file->fd, file->path, 0, file->size);
}

/*
 * AbortUpload aborts a multipart upload, so that its parts do not linger; a
 * failure is left to the bucket's lifecycle rules.
 */
static void
AbortUpload(const S3Target *target, const char *key, const char *uploadId, const char *contentType)
{
	S3Response response = {0};

	initStringInfo(&response.body);
	SendOnce(target, "DELETE", ObjectUrl(target, key, UploadIdQuery(0, uploadId)),
			 "", 0, contentType, &response);
}

/*
 * UploadParts sends a large file as a multipart upload, its completion
 * create-only, and says whether the object holds it (see UploadedOrOurs).
 * The upload is aborted if a part or the completion fails, or the key
 * exists already, so that no partial upload remains.
 */
static bool
UploadParts(const S3Target *target, const char *key, SpoolFile *file, const char *contentType)
{
	S3Response response = {0};
	char	   *uploadId;
	StringInfoData completion;
	bool		placed;

	initStringInfo(&response.body);
	Send(target, psprintf("multipart start of %s", key), "POST",
		 ObjectUrl(target, key, "uploads="), "", 0, contentType, &response);
	uploadId = XmlElement(response.body.data, "UploadId");
	if (uploadId == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("S3 multipart start of %s returned no UploadId", key)));

	initStringInfo(&completion);
	appendStringInfoString(&completion, "<CompleteMultipartUpload>");
	PG_TRY();
	{
		int			partNumber = 1;

		for (off_t offset = 0; offset < file->size; offset += target->partBytes, partNumber++)
		{
			size_t		length = Min((off_t) target->partBytes, file->size - offset);
			char	   *part = ReadChunk(file->fd, file->path, offset, length);

			Send(target, psprintf("part %d of %s", partNumber, key), "PUT",
				 ObjectUrl(target, key, UploadIdQuery(partNumber, uploadId)),
				 part, length, contentType, &response);
			pfree(part);
			appendStringInfo(&completion, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>",
							 partNumber, response.etag ? response.etag : "");
		}
		appendStringInfoString(&completion, "</CompleteMultipartUpload>");
		response.createOnly = true;
		SendAccepting(target, psprintf("multipart completion of %s", key), "POST",
					  ObjectUrl(target, key, UploadIdQuery(0, uploadId)),
					  completion.data, completion.len, "application/xml", &response,
					  S3_PRECONDITION_FAILED);
		if (response.status != S3_PRECONDITION_FAILED && strstr(response.body.data, "<Error>") != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
					 errmsg("S3 multipart completion of %s failed: %s", key,
							XmlElement(response.body.data, "Code") ? XmlElement(response.body.data, "Code") : "(no error code)")));
	}
	PG_CATCH();
	{
		AbortUpload(target, key, uploadId, contentType);
		PG_RE_THROW();
	}
	PG_END_TRY();

	placed = UploadedOrOurs(target, key, &response, SpoolFileContent, file);
	if (!placed)
		AbortUpload(target, key, uploadId, contentType);
	return placed;
}

/*
 * S3UploadFile uploads a spool file as the object key, create-only (with
 * If-None-Match: *, on the PUT or on the multipart completion): one PUT up to
 * the part size, a multipart upload above it.  It returns false, having
 * written nothing, when an object of that key exists already: a placed file
 * never replaces another.  A store that ignores If-None-Match replaces it.
 */
bool
S3UploadFile(const S3Target *target, const char *key, const char *path, const char *contentType)
{
	int			fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	struct stat status;
	SpoolFile	file;
	bool		placed;

	if (fd < 0 || fstat(fd, &status) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open spool file \"%s\": %m", path)));
	file.fd = fd;
	file.path = path;
	file.size = status.st_size;

	if ((Size) status.st_size <= target->partBytes)
	{
		S3Response response = {0};
		char	   *payload = ReadChunk(fd, path, 0, status.st_size);

		initStringInfo(&response.body);
		response.createOnly = true;
		SendAccepting(target, psprintf("upload of %s", key), "PUT", ObjectUrl(target, key, NULL),
					  payload, status.st_size, contentType, &response, S3_PRECONDITION_FAILED);
		pfree(payload);
		placed = UploadedOrOurs(target, key, &response, SpoolFileContent, &file);
	}
	else
		placed = UploadParts(target, key, &file, contentType);

	CloseTransientFile(fd);
	return placed;
}

/*
 * S3DeleteObject deletes an object.  An object that does not exist, or whose
 * bucket does not, is as good as deleted (HTTP 404).
 */
void
S3DeleteObject(const S3Target *target, const char *key)
{
	S3Response response = {0};

	initStringInfo(&response.body);
	SendAccepting(target, psprintf("delete of %s", key), "DELETE", ObjectUrl(target, key, NULL),
				  "", 0, "application/octet-stream", &response, 404);
}

/*
 * S3GetObject returns the whole content of an object, read for the lake
 * sweep (lake_sweep.c).
 */
StringInfo
S3GetObject(const S3Target *target, const char *key)
{
	S3Response response = {0};
	StringInfo	content;

	initStringInfo(&response.body);
	response.wholeBody = true;
	Send(target, psprintf("read of %s", key), "GET", ObjectUrl(target, key, NULL), "", 0,
		 "application/octet-stream", &response);
	content = palloc(sizeof(StringInfoData));
	*content = response.body;
	return content;
}

/*
 * XmlUnescape returns an XML text with its five predefined entities decoded.
 */
static char *
XmlUnescape(const char *text)
{
	static const char *const entities[][2] = {
		{"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}
	};
	StringInfoData result;

	initStringInfo(&result);
	while (*text != '\0')
	{
		int			i;

		for (i = 0; i < (int) lengthof(entities); i++)
			if (strncmp(text, entities[i][0], strlen(entities[i][0])) == 0)
				break;
		if (i < (int) lengthof(entities))
		{
			appendStringInfoString(&result, entities[i][1]);
			text += strlen(entities[i][0]);
		}
		else
			appendStringInfoChar(&result, *text++);
	}
	return result.data;
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
	appendStringInfoString(&query, "list-type=2&prefix=");
	AppendUriEncoded(&query, prefix, false);
	return query.data;
}

/*
 * S3ListKeys returns every key that starts with prefix (ListObjectsV2, page
 * after page).
 */
List *
S3ListKeys(const S3Target *target, const char *prefix)
{
	List	   *keys = NIL;
	char	   *continuationToken = NULL;

	do
	{
		S3Response response = {0};
		const char *cursor;
		char	   *truncated;

		initStringInfo(&response.body);
		Send(target, psprintf("list of %s", prefix), "GET",
			 ObjectUrl(target, "", ListQuery(prefix, continuationToken)),
			 "", 0, "application/octet-stream", &response);
		for (cursor = strstr(response.body.data, "<Key>"); cursor != NULL;
			 cursor = strstr(cursor, "<Key>"))
		{
			char	   *key = XmlElement(cursor, "Key");

			if (key == NULL)
				break;
			keys = lappend(keys, XmlUnescape(key));
			cursor += strlen("<Key>");
		}
		truncated = XmlElement(response.body.data, "IsTruncated");
		continuationToken = (truncated != NULL && strcmp(truncated, "true") == 0)
			? XmlElement(response.body.data, "NextContinuationToken") : NULL;
		if (truncated != NULL && strcmp(truncated, "true") == 0 && continuationToken == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("S3 list of %s is truncated without a continuation token", prefix),
					 errhint("The store must support ListObjectsV2 (list-type=2).")));
		CHECK_FOR_INTERRUPTS();
	} while (continuationToken != NULL);
	return keys;
}
