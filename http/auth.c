/*
 * auth.c
 *	  The secrets' checks: "Authorization: Bearer <secret>" or
 *	  "X-Cron-Secret: <secret>", compared in constant time.  The jobs take
 *	  CRON_SECRET; /metrics takes METRICS_SECRET when it is set, else the
 *	  jobs' secret.
 */
#include <string.h>
#include <strings.h>

#include "shim.h"

/*
 * SecretMatches compares a presented value with a secret in time that
 * depends only on the secret's length, never on where they differ.
 */
static bool
SecretMatches(const char *secret, size_t secretLength, const char *presented)
{
	size_t		presentedLength = strlen(presented);
	unsigned char difference = presentedLength != secretLength;

	for (size_t i = 0; i < secretLength; i++)
	{
		unsigned char presentedByte = i < presentedLength ? (unsigned char) presented[i] : 0;

		difference |= presentedByte ^ (unsigned char) secret[i];
	}
	return difference == 0;
}

/*
 * HeadersCarrySecret says whether either header presents the secret.  Both
 * are checked whatever the first says, so timing tells nothing.
 */
static bool
HeadersCarrySecret(const char *secret, size_t secretLength, const char *authorization,
				   const char *secretHeader)
{
	static const char bearerPrefix[] = "Bearer ";
	bool		authorized = false;

	if (authorization != NULL &&
		strncasecmp(authorization, bearerPrefix, sizeof(bearerPrefix) - 1) == 0)
		authorized |= SecretMatches(secret, secretLength, authorization + sizeof(bearerPrefix) - 1);
	if (secretHeader != NULL)
		authorized |= SecretMatches(secret, secretLength, secretHeader);
	return authorized;
}

/*
 * RequestIsAuthorized says whether a request may run a job.  Without a
 * configured secret (development mode) every request may.
 */
bool
RequestIsAuthorized(const ShimConfig *config, const char *authorization,
					const char *cronSecretHeader)
{
	if (config->cronSecret == NULL)
		return true;
	return HeadersCarrySecret(config->cronSecret, config->cronSecretLength, authorization,
							  cronSecretHeader);
}

/*
 * MetricsRequestIsAuthorized says whether a request may read /metrics: with
 * METRICS_SECRET set, one that presents it; else one that may run a job.
 */
bool
MetricsRequestIsAuthorized(const ShimConfig *config, const char *authorization,
						   const char *secretHeader)
{
	if (config->metricsSecret == NULL)
		return RequestIsAuthorized(config, authorization, secretHeader);
	return HeadersCarrySecret(config->metricsSecret, config->metricsSecretLength, authorization,
							  secretHeader);
}
