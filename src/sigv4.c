/*
 * sigv4.c
 *	  AWS Signature Version 4 for S3 requests, computed here rather than by
 *	  libcurl (CURLOPT_AWS_SIGV4).
 *
 * libcurl 7.88 (Debian bookworm) sorts the signed headers by their whole
 * "name:value" line, not by name, so a header whose name extends another's
 * (x-amz-server-side-encryption-aws-kms-key-id after
 * x-amz-server-side-encryption) is signed out of order and S3 refuses the
 * request; it also signs every header of the request's list, an empty
 * "Expect:" included.  Here the canonical request is exactly what AWS
 * documents: the method, the path and query as sent (already encoded by
 * the caller, as S3 wants them: not encoded twice), the headers given here
 * and Host and X-Amz-Date, by lowercase name, and the payload's SHA-256.
 * Headers libcurl adds on its own (Content-Length, Accept, Expect for large
 * bodies) are not signed, as the AWS SDKs leave them.
 */
#include "postgres.h"

#include <curl/curl.h>
#include <time.h>

#include "common/cryptohash.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "lib/stringinfo.h"

#include "interactions_cron/sigv4.h"

/* One header to sign: its lowercase name and its trimmed value. */
typedef struct SignedHeader
{
	char	   *name;
	char	   *value;
} SignedHeader;

/*
 * Hmac computes HMAC-SHA256 of data with key into digest.
 */
static void
Hmac(const uint8 *key, size_t keyLength, const char *data, uint8 *digest)
{
	pg_hmac_ctx *context = pg_hmac_create(PG_SHA256);

	if (context == NULL || pg_hmac_init(context, key, keyLength) < 0 ||
		pg_hmac_update(context, (const uint8 *) data, strlen(data)) < 0 ||
		pg_hmac_final(context, digest, PG_SHA256_DIGEST_LENGTH) < 0)
		elog(ERROR, "could not compute HMAC-SHA256: %s", pg_hmac_error(context));
	pg_hmac_free(context);
}

/*
 * Hex returns bytes as lowercase hex.
 */
static char *
Hex(const uint8 *bytes, int length)
{
	char	   *hex = palloc(length * 2 + 1);

	for (int i = 0; i < length; i++)
		sprintf(hex + i * 2, "%02x", bytes[i]);
	return hex;
}

/*
 * ComputeDigest computes a payload's digest with one of PostgreSQL's hashes.
 */
void
ComputeDigest(pg_cryptohash_type type, const char *data, size_t length, uint8 *digest,
			  size_t digestLength)
{
	pg_cryptohash_ctx *context = pg_cryptohash_create(type);

	if (context == NULL || pg_cryptohash_init(context) < 0 ||
		pg_cryptohash_update(context, (const uint8 *) data, length) < 0 ||
		pg_cryptohash_final(context, digest, digestLength) < 0)
		elog(ERROR, "could not compute a digest: %s", pg_cryptohash_error(context));
	pg_cryptohash_free(context);
}

/*
 * Sha256Hex returns the lowercase hex SHA-256 of a payload.
 */
char *
Sha256Hex(const char *data, size_t length)
{
	uint8		digest[PG_SHA256_DIGEST_LENGTH];

	ComputeDigest(PG_SHA256, data, length, digest, sizeof(digest));
	return Hex(digest, sizeof(digest));
}

/*
 * CompareHeaderNames orders headers by name, as the canonical request wants.
 */
static int
CompareHeaderNames(const ListCell *a, const ListCell *b)
{
	return strcmp(((SignedHeader *) lfirst(a))->name, ((SignedHeader *) lfirst(b))->name);
}

/*
 * ParseHeaderLine splits "Name: value" into a lowercase name and a trimmed
 * value.
 */
static SignedHeader *
ParseHeaderLine(const char *line)
{
	SignedHeader *header = palloc(sizeof(SignedHeader));
	const char *colon = strchr(line, ':');
	char	   *value;
	size_t		length;

	if (colon == NULL)
		elog(ERROR, "header line without a colon");
	header->name = pnstrdup(line, colon - line);
	for (char *p = header->name; *p != '\0'; p++)
		*p = pg_tolower((unsigned char) *p);
	value = pstrdup(colon + 1 + strspn(colon + 1, " \t"));
	length = strlen(value);
	while (length > 0 && (value[length - 1] == ' ' || value[length - 1] == '\t'))
		value[--length] = '\0';
	header->value = value;
	return header;
}

/*
 * UrlParts returns a URL's host header value (host, and port when given),
 * its path and its query (NULL without one), as they are sent.
 */
static void
UrlParts(const char *url, char **host, char **path, char **query)
{
	CURLU	   *parsed = curl_url();
	char	   *hostPart = NULL;
	char	   *portPart = NULL;
	char	   *pathPart = NULL;
	char	   *queryPart = NULL;
	bool		understood;

	understood = parsed != NULL && curl_url_set(parsed, CURLUPART_URL, url, 0) == CURLUE_OK &&
		curl_url_get(parsed, CURLUPART_HOST, &hostPart, 0) == CURLUE_OK &&
		curl_url_get(parsed, CURLUPART_PATH, &pathPart, 0) == CURLUE_OK;
	if (understood)
	{
		*host = (curl_url_get(parsed, CURLUPART_PORT, &portPart, 0) == CURLUE_OK)
			? psprintf("%s:%s", hostPart, portPart) : pstrdup(hostPart);
		*path = pstrdup(pathPart);
		*query = (curl_url_get(parsed, CURLUPART_QUERY, &queryPart, 0) == CURLUE_OK)
			? pstrdup(queryPart) : NULL;
	}
	curl_free(hostPart);
	curl_free(portPart);
	curl_free(pathPart);
	curl_free(queryPart);
	curl_url_cleanup(parsed);
	if (!understood)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a URL that can be signed", url)));
}

/*
 * SigningKey derives the day's key for a region's S3 from the secret.
 */
static void
SigningKey(const char *secret, const char *date, const char *region, uint8 *key)
{
	char	   *secretKey = psprintf("AWS4%s", secret);

	Hmac((const uint8 *) secretKey, strlen(secretKey), date, key);
	explicit_bzero(secretKey, strlen(secretKey));
	Hmac(key, PG_SHA256_DIGEST_LENGTH, region, key);
	Hmac(key, PG_SHA256_DIGEST_LENGTH, "s3", key);
	Hmac(key, PG_SHA256_DIGEST_LENGTH, "aws4_request", key);
}

/*
 * SigV4SignedHeaders returns the header lines of a request signed with the
 * credentials: Host and X-Amz-Date, the given lines (which must include
 * x-amz-content-sha256 with payloadHash), and Authorization.  The query of
 * url must already be in canonical order and encoding.
 */
List *
SigV4SignedHeaders(const char *method, const char *url, List *headers, const char *payloadHash,
				   const char *region, const AwsCredentials *credentials)
{
	char	   *host;
	char	   *path;
	char	   *query;
	char		amzDate[17];
	char		date[9];
	time_t		now = time(NULL);
	struct tm	utc;
	List	   *lines;
	List	   *parsed = NIL;
	StringInfoData canonical;
	StringInfoData signedNames;
	char	   *scope;
	char	   *stringToSign;
	uint8		key[PG_SHA256_DIGEST_LENGTH];
	uint8		signature[PG_SHA256_DIGEST_LENGTH];
	ListCell   *cell;

	UrlParts(url, &host, &path, &query);
	gmtime_r(&now, &utc);
	strftime(amzDate, sizeof(amzDate), "%Y%m%dT%H%M%SZ", &utc);
	strlcpy(date, amzDate, sizeof(date));

	lines = list_make2(psprintf("Host: %s", host), psprintf("X-Amz-Date: %s", amzDate));
	lines = list_concat(lines, headers);
	foreach(cell, lines)
		parsed = lappend(parsed, ParseHeaderLine(lfirst(cell)));
	list_sort(parsed, CompareHeaderNames);

	initStringInfo(&canonical);
	initStringInfo(&signedNames);
	appendStringInfo(&canonical, "%s\n%s\n%s\n", method, path, query ? query : "");
	foreach(cell, parsed)
	{
		SignedHeader *header = lfirst(cell);

		appendStringInfo(&canonical, "%s:%s\n", header->name, header->value);
		appendStringInfo(&signedNames, "%s%s", foreach_current_index(cell) > 0 ? ";" : "", header->name);
	}
	appendStringInfo(&canonical, "\n%s\n%s", signedNames.data, payloadHash);

	scope = psprintf("%s/%s/s3/aws4_request", date, region);
	stringToSign = psprintf("AWS4-HMAC-SHA256\n%s\n%s\n%s", amzDate, scope, Sha256Hex(canonical.data, canonical.len));
	SigningKey(credentials->secretAccessKey, date, region, key);
	Hmac(key, sizeof(key), stringToSign, signature);
	explicit_bzero(key, sizeof(key));

	return lappend(lines, psprintf("Authorization: AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
								   credentials->accessKeyId, scope, signedNames.data,
								   Hex(signature, sizeof(signature))));
}
