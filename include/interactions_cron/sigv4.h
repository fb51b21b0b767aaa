/*
 * sigv4.h
 *	  AWS Signature Version 4 for S3 requests.
 */
#ifndef INTERACTIONS_CRON_SIGV4_H
#define INTERACTIONS_CRON_SIGV4_H

#include "common/cryptohash.h"
#include "nodes/pg_list.h"

#include "interactions_cron/s3_credentials.h"

extern void ComputeDigest(pg_cryptohash_type type, const char *data, size_t length,
						  uint8 *digest, size_t digestLength);
extern char *Sha256Hex(const char *data, size_t length);
extern List *SigV4SignedHeaders(const char *method, const char *url, List *headers,
								const char *payloadHash, const char *region,
								const AwsCredentials *credentials);

#endif
