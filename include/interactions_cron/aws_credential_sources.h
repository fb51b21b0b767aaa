/*
 * aws_credential_sources.h
 *	  The sources of a role's temporary credentials in AWS's default chain:
 *	  web identity (STS), the container endpoint and EC2 instance metadata.
 */
#ifndef INTERACTIONS_CRON_AWS_CREDENTIAL_SOURCES_H
#define INTERACTIONS_CRON_AWS_CREDENTIAL_SOURCES_H

#include "interactions_cron/s3_credentials.h"

/*
 * Each source says how it is configured (NULL: not at all), which also
 * keys the credentials it gave; a fetch fills in credentials with an
 * expiration, or returns false with the reason (no secret in it).
 */
extern char *WebIdentityConfiguration(void);
extern bool FetchWebIdentityCredentials(AwsCredentials *credentials, char **problem);
extern char *ContainerConfiguration(void);
extern bool FetchContainerCredentials(AwsCredentials *credentials, char **problem);
extern char *InstanceMetadataConfiguration(void);
extern bool FetchInstanceMetadataCredentials(AwsCredentials *credentials, char **problem);

/* Shared by the sources (aws_credentials_answer.c). */
extern const char *SettingOrEnvironment(const char *setting, const char *variable);
extern bool AwsCredentialsFromJson(const char *json, size_t length, AwsCredentials *credentials,
								   char **problem);
extern bool AwsExpirationTime(const char *text, TimestampTz *expiration);
extern char *ReadTokenFile(const char *path, const char *what);

#endif
