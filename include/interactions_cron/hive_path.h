/*
 * hive_path.h
 *	  The Hive-partitioned layout of exported files.
 */
#ifndef INTERACTIONS_CRON_HIVE_PATH_H
#define INTERACTIONS_CRON_HIVE_PATH_H

#include "datatype/timestamp.h"

#include "interactions_cron/compression.h"

extern char *HiveEscapePathSegment(const char *value);
extern bool IsPlainRelativePath(const char *path);
extern bool HasDayPartition(TimestampTz value);
extern char *BatchDirectory(const char *escapedTenantId, TimestampTz createdAt);
extern char *BatchFileName(TimestampTz firstCreatedAt, const char *firstId,
						   CompressionKind compression);
extern bool ParseBatchFileName(const char *name, TimestampTz *firstCreatedAt, char **firstId);
extern int64 UtcDayNumber(TimestampTz value);

#endif
