/*
 * s3_credentials.h
 *	  The S3 credentials of a run: settings, a credentials file, or the
 *	  server's environment.
 */
#ifndef INTERACTIONS_CRON_S3_CREDENTIALS_H
#define INTERACTIONS_CRON_S3_CREDENTIALS_H

#include "interactions_cron/s3_client.h"

extern void S3ResolveCredentials(S3Target *target);

#endif
