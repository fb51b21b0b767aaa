/*
 * aws_web_identity.c
 *	  A role's credentials for a web identity token (EKS IRSA): the token
 *	  file's token exchanged at STS with AssumeRoleWithWebIdentity.
 *
 * Configured as the SDKs are, by AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN
 * and AWS_ROLE_SESSION_NAME in the server's environment (or the settings
 * of the same meaning, which come first).  STS is asked at its regional
 * endpoint (https://sts.REGION.amazonaws.com, the region of s3_region), or
 * at AWS_ENDPOINT_URL_STS / s3_sts_endpoint.  The request is not signed: the
 * token is the proof.  The token file is read at every fetch, since the
 * kubelet rotates it.
 */
#include "postgres.h"

#include <time.h>

#include "lib/stringinfo.h"
#include "miscadmin.h"

#include "interactions_cron/aws_credential_sources.h"
#include "interactions_cron/guc.h"
#include "interactions_cron/http_request.h"
#include "interactions_cron/s3_client.h"
#include "interactions_cron/xml_response.h"

#define STS_CONNECT_TIMEOUT_MS 5000
#define STS_TIMEOUT_MS 30000
#define STS_ATTEMPTS 3

/* The elements of STS's answer that are read. */
enum StsElement
{
	STS_ACCESS_KEY_ID,
	STS_SECRET_ACCESS_KEY,
	STS_SESSION_TOKEN,
	STS_EXPIRATION,
	STS_ERROR_CODE,
	STS_ERROR_MESSAGE,
	STS_ELEMENT_COUNT
};

static const char *const StsElementNames[STS_ELEMENT_COUNT] = {
	"AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration", "Code", "Message"
};

/*
 * StsEndpoint returns the STS endpoint to ask, without a trailing slash.
 */
static char *
StsEndpoint(void)
{
	const char *configured = SettingOrEnvironment(S3StsEndpointSetting, "AWS_ENDPOINT_URL_STS");
	char	   *endpoint = configured != NULL
		? pstrdup(configured) : psprintf("https://sts.%s.amazonaws.com", S3RegionSetting);

	while (endpoint[0] != '\0' && endpoint[strlen(endpoint) - 1] == '/')
		endpoint[strlen(endpoint) - 1] = '\0';
	return endpoint;
}

/*
 * RoleSessionName returns the session name that CloudTrail will show: the
 * configured one, else one naming the extension and this process.
 */
static char *
RoleSessionName(void)
{
	const char *configured = SettingOrEnvironment(S3RoleSessionNameSetting, "AWS_ROLE_SESSION_NAME");

	if (configured != NULL)
		return pstrdup(configured);
	return psprintf("interactions_cron-%d-%ld", MyProcPid, (long) time(NULL));
}

/*
 * WebIdentityConfiguration returns the role, token file and endpoint when
 * web identity is configured, NULL when it is not; one of the role and the
 * token file without the other is a mistake, not a reason to look further.
 */
char *
WebIdentityConfiguration(void)
{
	const char *tokenFile = SettingOrEnvironment(S3WebIdentityTokenFileSetting, "AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *roleArn = SettingOrEnvironment(S3RoleArnSetting, "AWS_ROLE_ARN");

	if (tokenFile == NULL && roleArn == NULL)
		return NULL;
	if (tokenFile == NULL || roleArn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("web identity needs both a role and a token file, but only %s is set",
						tokenFile != NULL ? "the token file" : "the role"),
				 errhint("Set AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE in the server's environment, "
						 "or interactions_cron.s3_role_arn and interactions_cron.s3_web_identity_token_file.")));
	return psprintf("role %s, token file %s, STS %s", roleArn, tokenFile, StsEndpoint());
}

/*
 * AssumeRoleBody returns the form-encoded AssumeRoleWithWebIdentity request.
 */
static char *
AssumeRoleBody(const char *roleArn, const char *token)
{
	StringInfoData body;

	initStringInfo(&body);
	appendStringInfoString(&body, "Action=AssumeRoleWithWebIdentity&RoleArn=");
	AppendUriEncoded(&body, roleArn, false);
	appendStringInfoString(&body, "&RoleSessionName=");
	AppendUriEncoded(&body, RoleSessionName(), false);
	appendStringInfoString(&body, "&Version=2011-06-15&WebIdentityToken=");
	AppendUriEncoded(&body, token, false);
	return body.data;
}

/*
 * FetchWebIdentityCredentials exchanges the token for the role's
 * credentials.  A token file that cannot be read is an error (nothing can
 * be done without it); STS not answering, or refusing, is a problem.
 */
bool
FetchWebIdentityCredentials(AwsCredentials *credentials, char **problem)
{
	const char *tokenFile = SettingOrEnvironment(S3WebIdentityTokenFileSetting, "AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *roleArn = SettingOrEnvironment(S3RoleArnSetting, "AWS_ROLE_ARN");
	char	   *token = ReadTokenFile(tokenFile, "web identity token file");
	char	   *body = AssumeRoleBody(roleArn, token);
	HttpRequest request = {0};
	HttpResponse response;
	char	   *texts[STS_ELEMENT_COUNT] = {0};
	bool		parsed;

	request.method = "POST";
	request.url = psprintf("%s/", StsEndpoint());
	request.headers = list_make2("Content-Type: application/x-www-form-urlencoded; charset=utf-8",
								 "Accept: application/xml");
	request.body = body;
	request.bodyLength = strlen(body);
	request.connectTimeoutMs = STS_CONNECT_TIMEOUT_MS;
	request.timeoutMs = STS_TIMEOUT_MS;
	request.attempts = STS_ATTEMPTS;
	(void) HttpPerform(&request, &response);
	explicit_bzero(token, strlen(token));
	explicit_bzero(body, strlen(body));

	parsed = response.status != 0 &&
		XmlResponseTexts(response.body.data, response.body.len, STS_ELEMENT_COUNT, StsElementNames, texts);
	HttpForgetResponse(&response);
	*problem = NULL;
	if (response.status == 0)
		*problem = psprintf("STS at %s %s", request.url, HttpFailure(&response));
	else if (!parsed)
		*problem = psprintf("STS at %s answered HTTP %ld with no XML", request.url, response.status);
	else if (response.status != 200)
		*problem = psprintf("STS at %s refused AssumeRoleWithWebIdentity for %s: HTTP %ld %s: %s",
							request.url, roleArn, response.status,
							texts[STS_ERROR_CODE] ? texts[STS_ERROR_CODE] : "(no error code)",
							texts[STS_ERROR_MESSAGE] ? texts[STS_ERROR_MESSAGE] : "");
	else if (texts[STS_ACCESS_KEY_ID] == NULL || texts[STS_SECRET_ACCESS_KEY] == NULL ||
			 texts[STS_SESSION_TOKEN] == NULL || texts[STS_EXPIRATION] == NULL)
		*problem = psprintf("STS at %s answered without AccessKeyId, SecretAccessKey, SessionToken or Expiration",
							request.url);
	else if (!AwsExpirationTime(texts[STS_EXPIRATION], &credentials->expiration))
		*problem = psprintf("STS at %s answered an Expiration \"%s\" that is not an ISO 8601 UTC time",
							request.url, texts[STS_EXPIRATION]);

	credentials->accessKeyId = texts[STS_ACCESS_KEY_ID];
	credentials->secretAccessKey = texts[STS_SECRET_ACCESS_KEY];
	credentials->sessionToken = texts[STS_SESSION_TOKEN];
	if (*problem != NULL)
		AwsCredentialsWipe(credentials);
	return *problem == NULL;
}
