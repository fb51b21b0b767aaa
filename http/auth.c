/*
 * auth.c
 *	  The CRON_SECRET check: "Authorization: Bearer <secret>" or
 *	  "X-Cron-Secret: <secret>", compared in constant time.
 */
#include <string.h>
#include <strings.h>

#include "shim.h"

/*
 * SecretMatches compares a presented value with the secret in time that
 * depends only on the secret's length, never on where they differ.
 */
static bool
SecretMatches(const ShimConfig *config, const char *presented)
{
	size_t		presentedLength = strlen(presented);
	unsigned char difference = presentedLength != config->cronSecretLength;

	for (size_t i = 0; i < config->cronSecretLength; i++)
	{
		unsigned char presentedByte = i < presentedLength ? (unsigned char) presented[i] : 0;

		difference |= presentedByte ^ (unsigned char) config->cronSecret[i];
	}
	return difference == 0;
}

/*
 * RequestIsAuthorized says whether a request may run a job.  Without a
 * configured secret (development mode) every request may.
 */
bool
RequestIsAuthorized(const ShimConfig *config, const char *authorization,
					const char *cronSecretHeader)
{
	static const char bearerPrefix[] = "Bearer ";
	bool		authorized = false;

	if (config->cronSecret == NULL)
		return true;

	/* Check both headers whatever the first says, so timing tells nothing. */
	if (authorization != NULL &&
		strncasecmp(authorization, bearerPrefix, sizeof(bearerPrefix) - 1) == 0)
		authorized |= SecretMatches(config, authorization + sizeof(bearerPrefix) - 1);
	if (cronSecretHeader != NULL)
		authorized |= SecretMatches(config, cronSecretHeader);
	return authorized;
}
