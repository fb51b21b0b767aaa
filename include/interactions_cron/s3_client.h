/*
 * s3_client.h
 *	  Uploads to S3-compatible object storage with libcurl's SigV4 signing.
 */
#ifndef INTERACTIONS_CRON_S3_CLIENT_H
#define INTERACTIONS_CRON_S3_CLIENT_H

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"

#include "interactions_cron/s3_credentials.h"

/* Where and how objects are uploaded, checked once per run. */
typedef struct S3Target
{
	char	   *bucket;
	char	   *prefix;
	char	   *region;
	char	   *endpoint;		/* scheme://host[:port], no trailing slash */
	bool		pathStyle;
	S3Credentials *credentials; /* renewed as they expire */
	char	   *serverSideEncryption;	/* "" for none; else with sseKmsKeyId */
	char	   *sseKmsKeyId;
	char	   *storageClass;	/* "" for the bucket's default */
	int			checksum;		/* S3ChecksumKind */
	char	   *expectedBucketOwner;	/* "" for any */
	Size		partBytes;		/* multipart above this size, in parts of it */
	int			requestTimeoutMs;	/* longest time of one attempt */
	int			lowSpeedLimitBytes; /* an attempt slower than this per second */
	int			lowSpeedTimeSeconds;	/* ... for this long fails */
	char	   *origin;			/* the uploads' origin (see SinkSetOrigin); NULL: none */
} S3Target;

extern S3Target *S3TargetFromSettings(void);
extern S3Target *S3TargetAt(const char *endpoint, const char *bucket, const char *prefix);
extern char *S3Location(const S3Target *target);
extern bool S3UploadFile(const S3Target *target, const char *key, const char *path,
						 const char *contentType);
extern void S3DeleteObject(const S3Target *target, const char *key);
extern StringInfo S3GetObject(const S3Target *target, const char *key);
extern char *S3ObjectOrigin(const S3Target *target, const char *key);
extern void AppendUriEncoded(StringInfo url, const char *key, bool keepSlash);
/* Called by S3ListKeys with each key listed, in a context reset after each page. */
typedef void (*S3KeyVisitor) (const char *key, void *argument);

extern void S3ListKeys(const S3Target *target, const char *prefix, S3KeyVisitor visit,
					   void *argument);

#endif
