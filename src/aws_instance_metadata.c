/*
 * aws_instance_metadata.c
 *	  An EC2 instance profile's credentials from the instance metadata
 *	  service, IMDSv2 only.
 *
 * IMDSv2: a PUT for a session token, then, with it, the name of the
 * instance's role and that role's credentials.  IMDSv1 (plain GETs) is never
 * used: instances that require IMDSv2 refuse it, and it is what SSRF
 * attacks reach.  The endpoint is http://169.254.169.254, or
 * AWS_EC2_METADATA_SERVICE_ENDPOINT / s3_ec2_metadata_endpoint;
 * AWS_EC2_METADATA_DISABLED=true or s3_ec2_metadata_disabled turns the
 * source off.  Off EC2 nothing answers at that address, so every request
 * has a short connect timeout and deadline and is tried once: the chain
 * falls through to its end within a few seconds, not a minute.
 */
#include "postgres.h"

#include "interactions_cron/aws_credential_sources.h"
#include "interactions_cron/guc.h"
#include "interactions_cron/http_request.h"

#define IMDS_ENDPOINT "http://169.254.169.254"
#define IMDS_CONNECT_TIMEOUT_MS 1000
#define IMDS_TIMEOUT_MS 2000
#define IMDS_TOKEN_TTL_SECONDS 21600
#define IMDS_CREDENTIALS_PATH "/latest/meta-data/iam/security-credentials/"

/*
 * MetadataEndpoint returns the endpoint, without a trailing slash.
 */
static char *
MetadataEndpoint(void)
{
	const char *configured = SettingOrEnvironment(S3Ec2MetadataEndpointSetting,
												  "AWS_EC2_METADATA_SERVICE_ENDPOINT");
	char	   *endpoint = pstrdup(configured != NULL ? configured : IMDS_ENDPOINT);

	while (endpoint[0] != '\0' && endpoint[strlen(endpoint) - 1] == '/')
		endpoint[strlen(endpoint) - 1] = '\0';
	return endpoint;
}

/*
 * InstanceMetadataConfiguration returns the endpoint, or NULL when the
 * source is turned off.
 */
char *
InstanceMetadataConfiguration(void)
{
	const char *disabled = getenv("AWS_EC2_METADATA_DISABLED");

	if (S3Ec2MetadataDisabledSetting || (disabled != NULL && pg_strcasecmp(disabled, "true") == 0))
		return NULL;
	return MetadataEndpoint();
}

/*
 * AskMetadata makes one bounded request of the metadata service and returns
 * its answer's body, or NULL with the problem.
 */
static char *
AskMetadata(const char *method, const char *path, List *headers, char **problem)
{
	HttpRequest request = {0};
	HttpResponse response;
	char	   *answer = NULL;

	request.method = method;
	request.url = psprintf("%s%s", MetadataEndpoint(), path);
	request.headers = headers;
	request.connectTimeoutMs = IMDS_CONNECT_TIMEOUT_MS;
	request.timeoutMs = IMDS_TIMEOUT_MS;
	request.attempts = 1;
	if (!HttpPerform(&request, &response) || response.status != 200)
		*problem = psprintf("EC2 instance metadata at %s %s", request.url, HttpFailure(&response));
	else
		answer = pnstrdup(response.body.data, response.body.len);
	HttpForgetResponse(&response);
	return answer;
}

/*
 * FetchInstanceMetadataCredentials asks the metadata service for the
 * instance profile's credentials.
 */
bool
FetchInstanceMetadataCredentials(AwsCredentials *credentials, char **problem)
{
	char	   *token;
	char	   *tokenHeader;
	char	   *roleName;
	char	   *answer;
	bool		fetched = false;

	*problem = NULL;
	token = AskMetadata("PUT", "/latest/api/token",
						list_make1(psprintf("X-aws-ec2-metadata-token-ttl-seconds: %d", IMDS_TOKEN_TTL_SECONDS)),
						problem);
	if (token == NULL)
		return false;
	tokenHeader = psprintf("X-aws-ec2-metadata-token: %s", token);
	explicit_bzero(token, strlen(token));

	roleName = AskMetadata("GET", IMDS_CREDENTIALS_PATH, list_make1(tokenHeader), problem);
	if (roleName != NULL)
	{
		/* The first line names the instance profile's role. */
		roleName[strcspn(roleName, "\r\n")] = '\0';
		if (roleName[0] == '\0' || strchr(roleName, '/') != NULL)
			*problem = pstrdup("EC2 instance metadata names no role: the instance has no instance profile");
	}
	if (*problem == NULL)
	{
		answer = AskMetadata("GET", psprintf(IMDS_CREDENTIALS_PATH "%s", roleName),
							 list_make1(tokenHeader), problem);
		if (answer != NULL)
		{
			fetched = AwsCredentialsFromJson(answer, strlen(answer), credentials, problem);
			if (!fetched)
				*problem = psprintf("EC2 instance metadata for role %s: %s", roleName, *problem);
			explicit_bzero(answer, strlen(answer));
		}
	}
	explicit_bzero(tokenHeader, strlen(tokenHeader));
	return fetched;
}
