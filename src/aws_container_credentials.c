/*
 * aws_container_credentials.c
 *	  A role's credentials from the container credentials endpoint (ECS
 *	  task roles, EKS Pod Identity).
 *
 * Configured as the SDKs are: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is a
 * path on ECS's endpoint http://169.254.170.2; otherwise
 * AWS_CONTAINER_CREDENTIALS_FULL_URI is the whole URL, with an
 * Authorization header from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (read at
 * every fetch: EKS rotates it) or else AWS_CONTAINER_AUTHORIZATION_TOKEN.
 * The settings of the same meaning come first.  A full URI may name, over
 * plain http, only the endpoints the SDKs accept: a loopback address or
 * localhost, ECS's 169.254.170.2 and EKS's 169.254.170.23 or fd00:ec2::23;
 * over https any host.  Anything else would send the token in clear to
 * whoever the URI names.
 */
#include "postgres.h"

#include <curl/curl.h>

#include "interactions_cron/aws_credential_sources.h"
#include "interactions_cron/guc.h"
#include "interactions_cron/http_request.h"

#define ECS_CREDENTIALS_ENDPOINT "http://169.254.170.2"
#define CONTAINER_CONNECT_TIMEOUT_MS 2000
#define CONTAINER_TIMEOUT_MS 5000
#define CONTAINER_ATTEMPTS 3

/*
 * IsAllowedPlainHttpHost says whether an http:// full URI may name a host
 * (as libcurl's URL parser gives it, IPv6 in brackets).
 */
static bool
IsAllowedPlainHttpHost(const char *host)
{
	static const char *const allowed[] = {
		"localhost", "[::1]", "169.254.170.2", "169.254.170.23", "[fd00:ec2::23]"
	};

	for (int i = 0; i < (int) lengthof(allowed); i++)
		if (pg_strcasecmp(host, allowed[i]) == 0)
			return true;
	/* 127.0.0.0/8, written as a dotted quad. */
	return strncmp(host, "127.", 4) == 0 && strspn(host, "0123456789.") == strlen(host);
}

/*
 * RequireAllowedFullUri refuses a full URI that is not an http(s) URL, or
 * that sends the token over plain http to a host the SDKs would not.
 */
static void
RequireAllowedFullUri(const char *uri)
{
	CURLU	   *parsed = curl_url();
	char	   *scheme = NULL;
	char	   *host = NULL;
	bool		allowed = false;
	bool		understood = false;

	if (parsed != NULL && curl_url_set(parsed, CURLUPART_URL, uri, 0) == CURLUE_OK &&
		curl_url_get(parsed, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
		curl_url_get(parsed, CURLUPART_HOST, &host, 0) == CURLUE_OK)
	{
		understood = true;
		allowed = pg_strcasecmp(scheme, "https") == 0 ||
			(pg_strcasecmp(scheme, "http") == 0 && IsAllowedPlainHttpHost(host));
	}
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(parsed);
	if (!understood)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the container credentials full URI \"%s\" is not a URL", uri)));
	if (!allowed)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the container credentials full URI \"%s\" names a host that plain http may not reach", uri),
				 errdetail("Over http, only a loopback address, localhost, 169.254.170.2, 169.254.170.23 and fd00:ec2::23 "
						   "are accepted, as by the AWS SDKs; the authorization token would travel in clear."),
				 errhint("Use https, or the address of the ECS or EKS Pod Identity agent.")));
}

/*
 * ContainerConfiguration returns the URL to ask, or NULL when the container
 * endpoint is not configured; the relative URI comes first, as in the SDKs.
 */
char *
ContainerConfiguration(void)
{
	const char *relative = SettingOrEnvironment(S3ContainerCredentialsRelativeUriSetting,
												"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = SettingOrEnvironment(S3ContainerCredentialsFullUriSetting,
											"AWS_CONTAINER_CREDENTIALS_FULL_URI");

	if (relative != NULL)
		return psprintf("%s%s%s", ECS_CREDENTIALS_ENDPOINT, relative[0] == '/' ? "" : "/", relative);
	if (full == NULL)
		return NULL;
	RequireAllowedFullUri(full);
	return pstrdup(full);
}

/*
 * AuthorizationHeader returns the Authorization header line for a full URI,
 * or NULL without a token.  A token holding a line break would forge
 * headers, and is refused.
 */
static char *
AuthorizationHeader(void)
{
	const char *tokenFile = SettingOrEnvironment(S3ContainerAuthorizationTokenFileSetting,
												 "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tokenValue = SettingOrEnvironment(S3ContainerAuthorizationTokenSetting,
												  "AWS_CONTAINER_AUTHORIZATION_TOKEN");
	char	   *token;
	char	   *header;

	if (tokenFile != NULL)
		token = ReadTokenFile(tokenFile, "container authorization token file");
	else if (tokenValue != NULL)
		token = pstrdup(tokenValue);
	else
		return NULL;
	if (strpbrk(token, "\r\n") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("the container authorization token holds a line break")));
	header = psprintf("Authorization: %s", token);
	explicit_bzero(token, strlen(token));
	return header;
}

/*
 * FetchContainerCredentials asks the container endpoint for the role's
 * credentials.
 */
bool
FetchContainerCredentials(AwsCredentials *credentials, char **problem)
{
	char	   *uri = ContainerConfiguration();
	bool		relative = SettingOrEnvironment(S3ContainerCredentialsRelativeUriSetting,
												"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") != NULL;
	char	   *authorization = relative ? NULL : AuthorizationHeader();
	HttpRequest request = {0};
	HttpResponse response;
	bool		answered;

	request.method = "GET";
	request.url = uri;
	request.headers = list_make1("Accept: application/json");
	if (authorization != NULL)
		request.headers = lappend(request.headers, authorization);
	request.connectTimeoutMs = CONTAINER_CONNECT_TIMEOUT_MS;
	request.timeoutMs = CONTAINER_TIMEOUT_MS;
	request.attempts = CONTAINER_ATTEMPTS;
	answered = HttpPerform(&request, &response);
	if (authorization != NULL)
		explicit_bzero(authorization, strlen(authorization));

	*problem = NULL;
	if (!answered || response.status != 200)
		*problem = psprintf("the container credentials endpoint %s %s", uri, HttpFailure(&response));
	else if (!AwsCredentialsFromJson(response.body.data, response.body.len, credentials, problem))
		*problem = psprintf("the container credentials endpoint %s: %s", uri, *problem);
	HttpForgetResponse(&response);
	return *problem == NULL;
}
