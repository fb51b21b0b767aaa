/*
 * guc.h
 *	  Settings of interactions_cron (all under the "interactions_cron." prefix).
 */
#ifndef INTERACTIONS_CRON_GUC_H
#define INTERACTIONS_CRON_GUC_H

#include "nodes/pg_list.h"

#include "interactions_cron/compression.h"

/* Fault points used only by the crash and failure tests. */
typedef enum DebugFault
{
	DEBUG_FAULT_NONE,
	DEBUG_FAULT_ERROR_BEFORE_PLACE,
	DEBUG_FAULT_ERROR_BETWEEN_FILES,
	DEBUG_FAULT_ERROR_AFTER_PLACE,
	DEBUG_FAULT_SLEEP_BEFORE_PLACE,
	DEBUG_FAULT_SLEEP_BETWEEN_FILES,
	DEBUG_FAULT_SLEEP_AFTER_PLACE,
	DEBUG_FAULT_CONCURRENT_MKDIR,
	DEBUG_FAULT_ERROR_AFTER_WORKERS,
	DEBUG_FAULT_SLEEP_AFTER_WORKERS,
	DEBUG_FAULT_ERROR_AT_TAKEN_NAME,
	DEBUG_FAULT_SLEEP_AT_TAKEN_NAME
} DebugFault;

/*
 * Where in a tenant's export a fault can be injected, or in the call once
 * its workers are done (before it builds and hands over its result).
 */
typedef enum FaultPoint
{
	FAULT_POINT_BEFORE_PLACE,
	FAULT_POINT_BETWEEN_FILES,
	FAULT_POINT_AFTER_PLACE,
	FAULT_POINT_AFTER_WORKERS,
	FAULT_POINT_AT_TAKEN_NAME
} FaultPoint;

/* Which checksum S3 uploads carry. */
typedef enum S3ChecksumKind
{
	S3_CHECKSUM_NONE,
	S3_CHECKSUM_CRC32C,
	S3_CHECKSUM_MD5
} S3ChecksumKind;

/* How placed local files are made durable. */
typedef enum LakeSyncMethod
{
	LAKE_SYNC_AUTO,				/* syncfs on a file system of the lake's own */
	LAKE_SYNC_FSYNC,
	LAKE_SYNC_SYNCFS
} LakeSyncMethod;

/* Where export files go. */
typedef enum StorageKind
{
	STORAGE_LOCAL,
	STORAGE_S3
} StorageKind;

extern int	StorageSetting;
extern char *S3BucketSetting;
extern char *S3PrefixSetting;
extern char *S3RegionSetting;
extern char *S3EndpointSetting;
extern bool S3PathStyleSetting;
extern char *S3AccessKeyIdSetting;
extern char *S3SecretAccessKeySetting;
extern char *S3CredentialsFileSetting;
extern char *S3CredentialsProfileSetting;
extern char *S3WebIdentityTokenFileSetting;
extern char *S3RoleArnSetting;
extern char *S3RoleSessionNameSetting;
extern char *S3StsEndpointSetting;
extern char *S3ContainerCredentialsFullUriSetting;
extern char *S3ContainerCredentialsRelativeUriSetting;
extern char *S3ContainerAuthorizationTokenSetting;
extern char *S3ContainerAuthorizationTokenFileSetting;
extern char *S3Ec2MetadataEndpointSetting;
extern bool S3Ec2MetadataDisabledSetting;
extern char *S3SseSetting;
extern char *S3SseKmsKeyIdSetting;
extern char *S3StorageClassSetting;
extern int	S3ChecksumSetting;
extern char *S3ExpectedBucketOwnerSetting;
extern int	S3MultipartThresholdKb;
extern int	S3RequestTimeoutMs;
extern int	S3LowSpeedLimitBytes;
extern int	S3LowSpeedTimeSeconds;
extern char *ExportDirectorySetting;
extern int	CompressionSetting;
extern int	CompressionLevelSetting;
extern int	LakeSyncMethodSetting;
extern char *TenantsTableSetting;
extern char *HistoryTableSetting;
extern int	DefaultBatchSize;
extern int	WatermarkMarginMs;
extern int	WatermarkWaitMs;
extern int	StandbyWaitMs;
extern int	MaxExportWorkers;
extern int	MaxRuntimeMs;
extern int	DebugFaultSetting;
extern int	DebugFaultStallMs;
extern char *SuppressionsTableSetting;
extern char *SummariesTableSetting;
extern char *PartitionedTablesSetting;
extern int	SummaryRetentionDays;
extern int	PremakeMonths;
extern int	RunHistoryRetentionDays;
extern int	CleanupBatchSize;
extern int	MetricsMaxTenants;
extern int	PartitionLockTimeoutMs;
extern char *TenantIdColumnSetting;
extern char *TenantNameColumnSetting;
extern char *ActiveTenantsFilterSetting;
extern char *HistoryTenantColumnSetting;
extern char *HistoryCreatedColumnSetting;
extern char *HistoryIdColumnSetting;
extern char *HistoryTimezoneSetting;
extern char *SuppressionsExpiresColumnSetting;
extern char *SummariesPeriodTypeColumnSetting;
extern char *SummariesDailyValueSetting;
extern char *SummariesPeriodStartColumnSetting;

extern bool LoadedAtServerStart;

extern void DefineSettings(void);
extern char *ResolvedExportDirectory(void);
extern void InjectFault(FaultPoint point, const char *tenantId);
extern void InjectConcurrentMkdir(const char *path);
extern List *SplitQualifiedNameList(const char *rawList);

#endif
