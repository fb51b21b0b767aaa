/*
 * s3_client.c
 *	  PutObject and multipart uploads to S3 or an S3-compatible store.
 *
 * Requests are signed with SigV4 (sigv4.c) and carry the payload's
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
 *
 * Each attempt is signed with the credentials of that moment: temporary
 * ones are renewed before they expire, and at once when S3 answers
 * ExpiredToken (s3_credentials.c), the request then sent again.  The
 * headers that bucket policies ask for go where S3 reads them: encryption
 * and storage class on PutObject and CreateMultipartUpload, the checksum on
 * PutObject, each UploadPart and (per part) the completion, the expected
 * bucket owner on every request.
 */
#include "postgres.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base64.h"
#include "common/cryptohash.h"
#include "common/md5.h"
#include "common/sha2.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "port/pg_crc32c.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "interactions_cron/guc.h"
#include "interactions_cron/http_request.h"
#include "interactions_cron/pg_compat.h"
#include "interactions_cron/s3_client.h"
#include "interactions_cron/s3_credentials.h"
#include "interactions_cron/sigv4.h"
#include "interactions_cron/xml_response.h"

/* Attempts of one request before a transient failure becomes an error. */
#define S3_MAX_ATTEMPTS 4
#define S3_FIRST_BACKOFF_MS 200
/* S3's answer to If-None-Match: * when the key exists: nothing was written. */
#define S3_PRECONDITION_FAILED 412
/* Read at most this much of an object (a lake file, whole). */
#define S3_MAX_OBJECT_BYTES (256 * 1024 * 1024)
/*
 * A listing page asks for at most this many keys (S3's own maximum); an
 * answer of more, or longer than the bytes below (1,000 keys of 1,024 bytes
 * with their metadata take about 1.5 MB), is refused, not cut.  The bytes
 * are bounded tightly because libxml2's tree of a page takes up to some 35
 * times its size, outside PostgreSQL's memory accounting.  A listing
 * of more pages than that is refused too, as is a page that hands back the
 * continuation token it was asked with: a store that never ends a listing
 * fails the tenant instead of holding it for ever.
 */
#define S3_LIST_MAX_KEYS 1000
#define S3_LIST_MAX_PAGE_BYTES (2 * 1024 * 1024)
#define S3_LIST_MAX_PAGES 10000

/* The metadata header naming the database that uploaded an object. */
#define ORIGIN_HEADER "x-amz-meta-interactions-cron-origin"

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
	bool		createOnly;		/* If-None-Match: *, so that an existing object stays */
	bool		maybeApplied;	/* an earlier attempt failed after it may have taken effect */
	char	   *etag;
	char	   *origin;			/* its x-amz-meta-interactions-cron-origin */
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
	target->serverSideEncryption = pstrdup(S3SseSetting);
	target->sseKmsKeyId = pstrdup(S3SseKmsKeyIdSetting);
	target->storageClass = pstrdup(S3StorageClassSetting);
	target->checksum = S3ChecksumSetting;
	target->expectedBucketOwner = pstrdup(S3ExpectedBucketOwnerSetting);

	target->credentials = S3ResolveCredentials();
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
 * form: libcurl signs the path and query exactly as they are sent.  It is
 * also how a form's values are encoded (STS).
 */
void
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
 * Base64 returns bytes in base64, as S3's checksum headers carry them.
 */
static char *
Base64(const uint8 *bytes, int length)
{
	int			encodedLength = pg_b64_enc_len(length);
	char	   *encoded = palloc(encodedLength + 1);
	int			written = Base64Encode(bytes, length, encoded, encodedLength);

	if (written < 0)
		elog(ERROR, "could not encode a checksum in base64");
	encoded[written] = '\0';
	return encoded;
}

/*
 * AppendWithoutError appends to a whole body and returns length, or 0 (which
 * ends the transfer, and fails it) when memory runs out: no error may be
 * raised through libcurl.  Room grows as the body does, so that reading an
 * object needs memory for its bytes only.
 */
static size_t
AppendWithoutError(StringInfo body, const char *data, size_t length)
{
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
 * PayloadChecksum returns the configured checksum of a payload in the form
 * its header carries it (base64), or NULL when none is configured.
 */
static char *
PayloadChecksum(const S3Target *target, const char *data, size_t length)
{
	if (target->checksum == S3_CHECKSUM_CRC32C)
	{
		pg_crc32c	crc;
		uint32		bigEndian;

		INIT_CRC32C(crc);
		COMP_CRC32C(crc, data, length);
		FIN_CRC32C(crc);
		bigEndian = pg_hton32(crc);
		return Base64((const uint8 *) &bigEndian, sizeof(bigEndian));
	}
	if (target->checksum == S3_CHECKSUM_MD5)
	{
		uint8		digest[MD5_DIGEST_LENGTH];

		ComputeDigest(PG_MD5, data, length, digest, sizeof(digest));
		return Base64(digest, sizeof(digest));
	}
	return NULL;
}

/*
 * ChecksumHeaders returns the header that carries a payload's checksum, as
 * a list of one line (NIL when none is configured); *checksum, when not
 * NULL, receives the checksum itself.
 */
static List *
ChecksumHeaders(const S3Target *target, const char *data, size_t length, char **checksum)
{
	char	   *value = PayloadChecksum(target, data, length);

	if (checksum != NULL)
		*checksum = value;
	if (value == NULL)
		return NIL;
	return list_make1(psprintf(target->checksum == S3_CHECKSUM_CRC32C
							   ? "x-amz-checksum-crc32c: %s" : "Content-MD5: %s", value));
}

/*
 * ObjectCreationHeaders returns the headers that PutObject and
 * CreateMultipartUpload carry: the object's origin, encryption and storage
 * class.
 */
static List *
ObjectCreationHeaders(const S3Target *target)
{
	List	   *headers = NIL;

	if (target->origin != NULL)
		headers = lappend(headers, psprintf("%s: %s", ORIGIN_HEADER, target->origin));

	if (target->serverSideEncryption[0] != '\0')
		headers = lappend(headers, psprintf("x-amz-server-side-encryption: %s",
											target->serverSideEncryption));
	if (strncmp(target->serverSideEncryption, "aws:kms", 7) == 0 && target->sseKmsKeyId[0] != '\0')
		headers = lappend(headers, psprintf("x-amz-server-side-encryption-aws-kms-key-id: %s",
											target->sseKmsKeyId));
	if (target->storageClass[0] != '\0')
		headers = lappend(headers, psprintf("x-amz-storage-class: %s", target->storageClass));
	return headers;
}

/*
 * InitResponse prepares a response for SendOnce; wholeBodyLimit as in
 * CollectBody.
 */
static void
InitResponse(S3Response *response, size_t wholeBodyLimit)
{
	memset(response, 0, sizeof(S3Response));
	initStringInfo(&response->body);
	response->wholeBodyLimit = wholeBodyLimit;
}

/*
 * CollectBody keeps the start of a response body (for error messages), or,
 * with a wholeBodyLimit (a listing, an object read), all of it, stopping the
 * transfer once it goes past that limit: a listing cut short would hide
 * keys.
 */
static size_t
CollectBody(char *data, size_t size, size_t count, void *userdata)
{
	S3Response *response = userdata;
	size_t		length = size * count;

	if (response->wholeBodyLimit == 0)
		return HttpCollectBody(data, size, count, &response->body);
	if (length > response->wholeBodyLimit - response->body.len)
	{
		response->bodyTooLarge = true;
		return 0;				/* libcurl ends the transfer: CURLE_WRITE_ERROR */
	}
	return AppendWithoutError(&response->body, data, length);
	return length;
}

/*
 * HeaderValue returns the value of a header line if it has the name, else
 * NULL.
 */
static char *
HeaderValue(const char *data, size_t length, const char *name)
{
	size_t		nameLength = strlen(name);
	char	   *value;

	if (length <= nameLength || data[nameLength] != ':' || pg_strncasecmp(data, name, nameLength) != 0)
		return NULL;
	value = pnstrdup(data + nameLength + 1, length - nameLength - 1);
	value += strspn(value, " \t");
	value[strcspn(value, "\r\n")] = '\0';
	return value;
}

/*
 * CollectHeaders keeps the ETag header of an uploaded part, and the origin
 * of an object.
 */
static size_t
CollectHeaders(char *data, size_t size, size_t count, void *userdata)
{
	S3Response *response = userdata;
	size_t		length = size * count;
	char	   *value;

	if ((value = HeaderValue(data, length, "etag")) != NULL)
		response->etag = value;
	else if ((value = HeaderValue(data, length, ORIGIN_HEADER)) != NULL)
		response->origin = value;
	return length;
}

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
 * SendOnce performs one signed request, with the credentials of the moment
 * and extra header lines.  No error is raised while curl holds memory of
 * its own; the outcome is left in *response.
 */
static void
SendOnce(const S3Target *target, const char *method, const char *url,
		 const char *payload, size_t length, const char *contentType, List *extraHeaders,
		 S3Response *response)
{
	/* Everything that may raise an error is made before curl has memory. */
	const AwsCredentials *signing = S3CredentialsForRequest(target->credentials);
	char	   *payloadHash = Sha256Hex(payload, length);
	List	   *lines = list_make2(psprintf("x-amz-content-sha256: %s", payloadHash),
								   psprintf("Content-Type: %s", contentType));
	CURL	   *curl;
	struct curl_slist *headers = NULL;
	bool		headersFailed = false;
	CURLcode	code = CURLE_OK;
	ListCell   *cell;
	char	   *tokenLine = NULL;

	if (signing->sessionToken != NULL)
	{
		tokenLine = psprintf("x-amz-security-token: %s", signing->sessionToken);
		lines = lappend(lines, tokenLine);
	}
	if (target->expectedBucketOwner[0] != '\0')
		lines = lappend(lines, psprintf("x-amz-expected-bucket-owner: %s", target->expectedBucketOwner));
	lines = list_concat(lines, extraHeaders);
	if (response->createOnly)
		lines = lappend(lines, "If-None-Match: *");
	lines = SigV4SignedHeaders(method, url, lines, payloadHash, target->region, signing);

	resetStringInfo(&response->body);
	response->bodyTooLarge = false;
	response->status = 0;
	response->etag = NULL;
	response->origin = NULL;
	response->transportCode = CURLE_OK;
	response->setupFailed = false;
	response->transportError[0] = '\0';
	curl = curl_easy_init();
	if (curl == NULL)
	{
		strlcpy(response->transportError, "could not initialise libcurl", CURL_ERROR_SIZE);
		if (tokenLine != NULL)
			explicit_bzero(tokenLine, strlen(tokenLine));
		return;
	}

	/*
	 * Only the signed lines are given; libcurl adds Content-Length and, for
	 * bodies above 1 MB, "Expect: 100-continue" (unsigned, as the AWS SDKs
	 * send it; S3 answers a refusal before the part is sent).
	 */
	foreach(cell, lines)
		headers = AppendHeader(headers, lfirst(cell), &headersFailed);
	if (headersFailed)
		code = CURLE_OUT_OF_MEMORY;

	SET_CURL_OPTION(CURLOPT_URL, url);
	SET_CURL_OPTION(CURLOPT_CUSTOMREQUEST, method);
	SET_CURL_OPTION(CURLOPT_POSTFIELDS, payload);
	SET_CURL_OPTION(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) length);
	/* A HEAD's answer has no body, whatever its Content-Length says. */
	SET_CURL_OPTION(CURLOPT_NOBODY, strcmp(method, "HEAD") == 0 ? 1L : 0L);
	SET_CURL_OPTION(CURLOPT_HTTPHEADER, headers);
	SET_CURL_OPTION(CURLOPT_WRITEFUNCTION, CollectBody);
	SET_CURL_OPTION(CURLOPT_WRITEDATA, response);
	SET_CURL_OPTION(CURLOPT_HEADERFUNCTION, CollectHeaders);
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
	SET_CURL_OPTION(CURLOPT_XFERINFOFUNCTION, HttpStopOnInterrupt);

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
	if (tokenLine != NULL)
		explicit_bzero(tokenLine, strlen(tokenLine));
	CHECK_FOR_INTERRUPTS();
}

/*
 * ResponseElement returns the text of the first element of a local name in
 * a response's XML body (read with libxml2), or NULL.
 */
static char *
ResponseElement(const S3Response *response, const char *name)
{
	char	   *text;

	(void) XmlResponseTexts(response->body.data, response->body.len, 1, &name, &text);
	return text;
}

/*
 * IsTransient says whether a failed request is worth trying again.
 */
static bool
IsTransient(const S3Response *response)
{
	if (response->setupFailed || response->bodyTooLarge)
		return false;
	/* 409: a conditional write of the same key was in flight (S3's ConditionalRequestConflict). */
	return response->status == 0 || response->status >= 500 ||
		response->status == 408 || response->status == 429 ||
		(response->createOnly && response->status == 409);
}

/*
 * RefusedAsExpired says whether S3 refused a request's credentials as
 * expired or no longer valid, which renewing them mends.
 */
static bool
RefusedAsExpired(const S3Response *response)
{
	char	   *code;

	if (response->status != 400 && response->status != 403)
		return false;
	code = ResponseElement(response, "Code");
	return code != NULL && (strcmp(code, "ExpiredToken") == 0 || strcmp(code, "InvalidToken") == 0 ||
							strcmp(code, "TokenRefreshRequired") == 0);
}

/*
 * SendRequest performs a request with extra header lines, retrying
 * transient failures with backoff and sending it again at once with renewed
 * credentials when S3 refuses them as expired (once per request), and
 * raises an error naming the operation and the store's error code when it
 * does not succeed.  acceptedStatus (besides 2xx), when not 0, is success.
 */
static void
SendRequest(const S3Target *target, const char *what, const char *method, const char *url,
			const char *payload, size_t length, const char *contentType, List *extraHeaders,
			S3Response *response, long acceptedStatus)
{
	int			backoffMs = S3_FIRST_BACKOFF_MS;
	bool		renewed = false;
	char	   *code;
	char	   *message;

	for (int attempt = 1;; attempt++)
	{
		SendOnce(target, method, url, payload, length, contentType, extraHeaders, response);
		if ((response->status >= 200 && response->status < 300) ||
			(acceptedStatus != 0 && response->status == acceptedStatus))
			return;
		if (!renewed && RefusedAsExpired(response) && S3RenewCredentials(target->credentials))
		{
			ereport(LOG,
					(errmsg("interactions_cron: S3 %s refused the credentials (%s); renewed them, sending it again",
							what, ResponseElement(response, "Code"))));
			renewed = true;
			attempt--;
			continue;
		}
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

	if (response->bodyTooLarge)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("S3 %s failed: the answer is longer than %zu bytes", what,
						response->wholeBodyLimit),
				 response->wholeBodyLimit == S3_LIST_MAX_PAGE_BYTES
				 ? errhint("The store must answer ListObjectsV2 with at most max-keys keys per page.")
				 : errhint("Lake files are written far smaller than this.")));
	if (response->setupFailed)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("S3 %s failed: %s", what, response->transportError),
				 errhint("libcurl refused the request's options: it ran out of memory.")));
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
	if (RefusedAsExpired(response))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("S3 %s failed: HTTP %ld %s: the credentials from %s are expired or invalid",
						what, response->status, ResponseElement(response, "Code"),
						S3CredentialsSourceName(target->credentials)),
				 errhint("Credentials with a session token from settings, a credentials file or the environment "
						 "cannot be renewed: replace them, or let the server take a role's credentials.")));
	code = ResponseElement(response, "Code");
	message = ResponseElement(response, "Message");
	ereport(ERROR,
			(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
			 errmsg("S3 %s failed: HTTP %ld %s: %s%s", what, response->status,
					code ? code : "(no error code)", message ? message : "",
					IsTransient(response) ? psprintf(" (after %d attempts)", S3_MAX_ATTEMPTS) : "")));
}

/*
 * Send performs a request without extra headers (see SendRequest).
 */
static void
Send(const S3Target *target, const char *what, const char *method, const char *url,
	 const char *payload, size_t length, const char *contentType, S3Response *response)
{
	SendRequest(target, what, method, url, payload, length, contentType, NIL, response, 0);
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
 * MultipartStartHeaders returns the headers of CreateMultipartUpload: those
 * of an object's creation, and the checksum algorithm its parts will carry
 * (S3 wants it declared there, and refuses parts' CRC32C otherwise).
 */
static List *
MultipartStartHeaders(const S3Target *target)
{
	List	   *headers = ObjectCreationHeaders(target);

	if (target->checksum == S3_CHECKSUM_CRC32C)
		headers = lappend(headers, "x-amz-checksum-algorithm: CRC32C");
	return headers;
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
	S3Response response;

	InitResponse(&response, 0);
	SendOnce(target, "DELETE", ObjectUrl(target, key, UploadIdQuery(0, uploadId)),
			 "", 0, contentType, NIL, &response);
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
	S3Response response;
	char	   *uploadId;
	StringInfoData completion;
	bool		placed;

	InitResponse(&response, 0);
	SendRequest(target, psprintf("multipart start of %s", key), "POST",
				ObjectUrl(target, key, "uploads="), "", 0, contentType,
				MultipartStartHeaders(target), &response, 0);
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

		for (off_t offset = 0; offset < file->size; offset += target->partBytes, partNumber++)
		{
			size_t		length = Min((off_t) target->partBytes, file->size - offset);
			char	   *part = ReadChunk(file->fd, file->path, offset, length);
			char	   *checksum;
			List	   *headers = ChecksumHeaders(target, part, length, &checksum);

			SendRequest(target, psprintf("part %d of %s", partNumber, key), "PUT",
						ObjectUrl(target, key, UploadIdQuery(partNumber, uploadId)),
						part, length, contentType, headers, &response, 0);
			pfree(part);
			appendStringInfo(&completion, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag>",
							 partNumber, response.etag ? response.etag : "");
			if (target->checksum == S3_CHECKSUM_CRC32C)
				appendStringInfo(&completion, "<ChecksumCRC32C>%s</ChecksumCRC32C>", checksum);
			appendStringInfoString(&completion, "</Part>");
		}
		appendStringInfoString(&completion, "</CompleteMultipartUpload>");
		/* The parts' CRC32C are in the body; an MD5 covers the body itself. */
		response.createOnly = true;
		response.maybeApplied = false;
		SendRequest(target, psprintf("multipart completion of %s", key), "POST",
					ObjectUrl(target, key, UploadIdQuery(0, uploadId)),
					completion.data, completion.len, "application/xml",
					target->checksum == S3_CHECKSUM_MD5
					? ChecksumHeaders(target, completion.data, completion.len, NULL) : NIL,
					&response, S3_PRECONDITION_FAILED);
		/* A completion can fail after its 200 has been sent: the body then holds an Error. */
		errorCode = response.status != S3_PRECONDITION_FAILED ? ResponseElement(&response, "Code") : NULL;
		if (errorCode != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
					 errmsg("S3 multipart completion of %s failed: %s", key, errorCode)));
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
		S3Response response;
		char	   *payload = ReadChunk(fd, path, 0, status.st_size);

		InitResponse(&response, 0);
		response.createOnly = true;
		SendRequest(target, psprintf("upload of %s", key), "PUT", ObjectUrl(target, key, NULL),
					payload, status.st_size, contentType,
					list_concat(ObjectCreationHeaders(target),
								ChecksumHeaders(target, payload, status.st_size, NULL)),
					&response, S3_PRECONDITION_FAILED);
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
	S3Response response;

	InitResponse(&response, 0);
	SendRequest(target, psprintf("delete of %s", key), "DELETE", ObjectUrl(target, key, NULL),
				"", 0, "application/octet-stream", NIL, &response, 404);
}

/*
 * S3GetObject returns the whole content of an object, read for the lake
 * sweep (lake_sweep.c) and to tell whether a create-only upload refused as
 * existing was this upload's own.
 */
StringInfo
S3GetObject(const S3Target *target, const char *key)
{
	S3Response response;
	StringInfo	content;

	InitResponse(&response, S3_MAX_OBJECT_BYTES);
	Send(target, psprintf("read of %s", key), "GET", ObjectUrl(target, key, NULL), "", 0,
		 "application/octet-stream", &response);
	content = palloc(sizeof(StringInfoData));
	*content = response.body;
	return content;
}

/*
 * S3ObjectOrigin returns the origin an object was uploaded with (see
 * ObjectCreationHeaders), read with a HEAD request: NULL for an object
 * without one, or gone (HTTP 404).
 */
char *
S3ObjectOrigin(const S3Target *target, const char *key)
{
	S3Response response;

	InitResponse(&response, 0);
	SendRequest(target, psprintf("look-up of %s", key), "HEAD", ObjectUrl(target, key, NULL), "", 0,
				"application/octet-stream", NIL, &response, 404);
	return response.status == 404 ? NULL : response.origin;
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
RequireListProgress(const char *prefix, const XmlListPage *page, const char *askedToken, int pages)
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
		XmlListPage page;
		ListCell   *cell;

		MemoryContextSwitchTo(pageContext);
		InitResponse(&response, S3_LIST_MAX_PAGE_BYTES);
		Send(target, psprintf("list of %s", prefix), "GET",
			 ObjectUrl(target, "", ListQuery(prefix, continuationToken)),
			 "", 0, "application/octet-stream", &response);
		pages++;
		if (!XmlReadListPage(response.body.data, response.body.len, S3_LIST_MAX_KEYS, &page))
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
