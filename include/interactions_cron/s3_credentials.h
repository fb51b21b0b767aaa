/*
 * s3_credentials.h
 *	  The S3 credentials of a run: settings, a credentials file, the
 *	  server's environment, or a role's temporary credentials (web identity,
 *	  the container endpoint, EC2 instance metadata), renewed as they expire.
 */
#ifndef INTERACTIONS_CRON_S3_CREDENTIALS_H
#define INTERACTIONS_CRON_S3_CREDENTIALS_H

#include "datatype/timestamp.h"

/* Key, secret and token of one source, valid until expiration. */
typedef struct AwsCredentials
{
	char	   *accessKeyId;
	char	   *secretAccessKey;
	char	   *sessionToken;	/* NULL without one */
	TimestampTz expiration;		/* DT_NOEND: not known to expire */
} AwsCredentials;

/* Where a run's credentials come from, and what they are now. */
typedef struct S3Credentials S3Credentials;

extern S3Credentials *S3ResolveCredentials(void);
extern const AwsCredentials *S3CredentialsForRequest(S3Credentials *credentials);
extern bool S3RenewCredentials(S3Credentials *credentials);
extern const char *S3CredentialsSourceName(const S3Credentials *credentials);
extern void AwsCredentialsWipe(AwsCredentials *credentials);

#endif
