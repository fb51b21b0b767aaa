/*
 * guc.c
 *	  Definition and validation of the interactions_cron.* settings.
 *
 * Every setting that chooses where files go or which relations are read is
 * PGC_SUSET: a role that may call the export must not be able to redirect it.
 */
#include "postgres.h"

#include <limits.h>
#include <sys/stat.h>

#include "common/file_perm.h"

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "commands/dbcommands.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "parser/scansup.h"
#include "pgtime.h"
#include "utils/varlena.h"

#include "interactions_cron/file_sink.h"
#include "interactions_cron/guc.h"
#include "interactions_cron/hive_path.h"

bool		LoadedAtServerStart = false;
char	   *ExportDirectorySetting = NULL;
char	   *TenantsTableSetting = NULL;
char	   *HistoryTableSetting = NULL;
int			DefaultBatchSize = 10000;
int			WatermarkMarginMs = 1000;
int			WatermarkWaitMs = 10000;
int			StandbyWaitMs = 10000;
int			MaxExportWorkers = 4;
int			MaxRuntimeMs = 0;
int			DebugFaultSetting = DEBUG_FAULT_NONE;
int			DebugFaultStallMs = 60000;
int			CompressionSetting = COMPRESSION_NONE;
int			CompressionLevelSetting = 0;
int			LakeSyncMethodSetting = LAKE_SYNC_AUTO;
int			StorageSetting = STORAGE_LOCAL;
char	   *S3BucketSetting = NULL;
char	   *S3PrefixSetting = NULL;
char	   *S3RegionSetting = NULL;
char	   *S3EndpointSetting = NULL;
bool		S3PathStyleSetting = false;
char	   *S3AccessKeyIdSetting = NULL;
char	   *S3SecretAccessKeySetting = NULL;
char	   *S3CredentialsFileSetting = NULL;
char	   *S3CredentialsProfileSetting = NULL;
char	   *S3WebIdentityTokenFileSetting = NULL;
char	   *S3RoleArnSetting = NULL;
char	   *S3RoleSessionNameSetting = NULL;
char	   *S3StsEndpointSetting = NULL;
char	   *S3ContainerCredentialsFullUriSetting = NULL;
char	   *S3ContainerCredentialsRelativeUriSetting = NULL;
char	   *S3ContainerAuthorizationTokenSetting = NULL;
char	   *S3ContainerAuthorizationTokenFileSetting = NULL;
char	   *S3Ec2MetadataEndpointSetting = NULL;
bool		S3Ec2MetadataDisabledSetting = false;
char	   *S3SseSetting = NULL;
char	   *S3SseKmsKeyIdSetting = NULL;
char	   *S3StorageClassSetting = NULL;
int			S3ChecksumSetting = S3_CHECKSUM_NONE;
char	   *S3ExpectedBucketOwnerSetting = NULL;
int			S3MultipartThresholdKb = 16 * 1024;
int			S3RequestTimeoutMs = 300 * 1000;
int			S3LowSpeedLimitBytes = 1024;
int			S3LowSpeedTimeSeconds = 30;
char	   *SuppressionsTableSetting = NULL;
char	   *SummariesTableSetting = NULL;
char	   *PartitionedTablesSetting = NULL;
int			SummaryRetentionDays = 365;
int			PremakeMonths = 3;
int			RunHistoryRetentionDays = 30;
int			CleanupBatchSize = 10000;
int			MetricsMaxTenants = 100;
int			PartitionLockTimeoutMs = 2000;
char	   *TenantIdColumnSetting = NULL;
char	   *TenantNameColumnSetting = NULL;
char	   *ActiveTenantsFilterSetting = NULL;
char	   *HistoryTenantColumnSetting = NULL;
char	   *HistoryCreatedColumnSetting = NULL;
char	   *HistoryIdColumnSetting = NULL;
char	   *HistoryTimezoneSetting = NULL;
char	   *SuppressionsExpiresColumnSetting = NULL;
char	   *SummariesPeriodTypeColumnSetting = NULL;
char	   *SummariesDailyValueSetting = NULL;
char	   *SummariesPeriodStartColumnSetting = NULL;

static const struct config_enum_entry debug_fault_options[] = {
	{"none", DEBUG_FAULT_NONE, false},
	{"error_before_place", DEBUG_FAULT_ERROR_BEFORE_PLACE, false},
	{"error_between_files", DEBUG_FAULT_ERROR_BETWEEN_FILES, false},
	{"error_after_place", DEBUG_FAULT_ERROR_AFTER_PLACE, false},
	{"sleep_before_place", DEBUG_FAULT_SLEEP_BEFORE_PLACE, false},
	{"sleep_between_files", DEBUG_FAULT_SLEEP_BETWEEN_FILES, false},
	{"sleep_after_place", DEBUG_FAULT_SLEEP_AFTER_PLACE, false},
	{"concurrent_mkdir", DEBUG_FAULT_CONCURRENT_MKDIR, false},
	{"error_after_workers", DEBUG_FAULT_ERROR_AFTER_WORKERS, false},
	{"sleep_after_workers", DEBUG_FAULT_SLEEP_AFTER_WORKERS, false},
	{"error_at_taken_name", DEBUG_FAULT_ERROR_AT_TAKEN_NAME, false},
	{"sleep_at_taken_name", DEBUG_FAULT_SLEEP_AT_TAKEN_NAME, false},
	{NULL, 0, false}
};

static const struct config_enum_entry compression_options[] = {
	{"none", COMPRESSION_NONE, false},
	{"gzip", COMPRESSION_GZIP, false},
	{"zstd", COMPRESSION_ZSTD, false},
	{NULL, 0, false}
};

static const struct config_enum_entry lake_sync_method_options[] = {
	{"auto", LAKE_SYNC_AUTO, false},
	{"fsync", LAKE_SYNC_FSYNC, false},
#ifdef HAVE_SYNCFS
	{"syncfs", LAKE_SYNC_SYNCFS, false},
#endif
	{NULL, 0, false}
};

static const struct config_enum_entry s3_checksum_options[] = {
	{"none", S3_CHECKSUM_NONE, false},
	{"crc32c", S3_CHECKSUM_CRC32C, false},
	{"md5", S3_CHECKSUM_MD5, false},
	{NULL, 0, false}
};

static const struct config_enum_entry storage_options[] = {
	{"local", STORAGE_LOCAL, false},
	{"s3", STORAGE_S3, false},
	{NULL, 0, false}
};

/*
 * ShowCredential never shows a credential, to superusers neither: SHOW,
 * pg_settings and pg_file_settings readers only learn whether it is set.
 */
static const char *
ShowCredential(char *const *value)
{
	return (*value != NULL && (*value)[0] != '\0') ? "(set)" : "";
}

static const char *
ShowAccessKeyId(void)
{
	return ShowCredential(&S3AccessKeyIdSetting);
}

static const char *
ShowSecretAccessKey(void)
{
	return ShowCredential(&S3SecretAccessKeySetting);
}

static const char *
ShowContainerAuthorizationToken(void)
{
	return ShowCredential(&S3ContainerAuthorizationTokenSetting);
}

/*
 * CheckCredential accepts a credential only from the server's configuration
 * files (postgresql.conf, ALTER SYSTEM), readable by the server's OS user
 * alone; clearing one is always allowed.  Every other source leaves the
 * value where other roles or users can read it: ALTER DATABASE, ALTER ROLE
 * and a function's SET clause store it in pg_db_role_setting or pg_proc,
 * which every role may SELECT (PGC_S_TEST is how PostgreSQL validates those
 * statements); a session's SET or set_config(), even a superuser's, puts it
 * in the statement's text, which pg_stat_activity and pg_stat_statements
 * show to pg_read_all_stats and log_statement writes to the server log; a
 * startup packet's options (PGC_S_CLIENT) come from a client's environment;
 * the server's command line is in every OS user's process list.
 */
static bool
CheckCredential(char **newval, void **extra, GucSource source)
{
	if (**newval == '\0' || source == PGC_S_DEFAULT || source == PGC_S_DYNAMIC_DEFAULT ||
		source == PGC_S_FILE || source == PGC_S_OVERRIDE)
		return true;

	GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
	if (source == PGC_S_ARGV)
	{
		GUC_check_errmsg("S3 credentials cannot be given on the server's command line");
		GUC_check_errdetail("Every OS user can read the command line in the process list.");
	}
	else if (source == PGC_S_CLIENT || source == PGC_S_SESSION)
	{
		GUC_check_errmsg("S3 credentials cannot be set in a session");
		GUC_check_errdetail("The statement's text can reach pg_stat_activity, pg_stat_statements and the server log, which roles other than superusers may read.");
	}
	else
	{
		GUC_check_errmsg("S3 credentials cannot be set with ALTER DATABASE, ALTER ROLE or a function's SET clause");
		GUC_check_errdetail("Those values are stored in pg_db_role_setting or pg_proc, which every role can read.");
	}
	GUC_check_errhint("Put them in postgresql.conf or set them with ALTER SYSTEM (files only the server's OS user can read), "
					  "give the server AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in its environment, "
					  "or point interactions_cron.s3_credentials_file at an AWS credentials file.");
	return false;
}

/*
 * CheckOptionalAbsolutePath accepts an empty string (none, or the server's
 * environment's) or an absolute path, for the files of credentials and
 * tokens; the file itself is checked and read when an export uses it.
 */
static bool
CheckOptionalAbsolutePath(char **newval, void **extra, GucSource source)
{
	if (**newval == '\0' || is_absolute_path(*newval))
		return true;

	GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
	GUC_check_errmsg("\"%s\" is not an absolute path", *newval);
	GUC_check_errhint("For example /var/lib/postgresql/.aws/credentials, or an empty string for none.");
	return false;
}

/*
 * CheckHeaderValue accepts a value that can be sent in an HTTP header: no
 * control characters, so that no value can add a header of its own.
 */
static bool
CheckHeaderValue(char **newval, void **extra, GucSource source)
{
	for (const unsigned char *p = (const unsigned char *) *newval; *p != '\0'; p++)
	{
		if (*p < 0x20 || *p == 0x7f)
		{
			GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
			GUC_check_errmsg("the value must not hold control characters");
			return false;
		}
	}
	return true;
}

/*
 * CheckServerSideEncryption accepts the values of S3's
 * x-amz-server-side-encryption header, or an empty string for none.
 */
static bool
CheckServerSideEncryption(char **newval, void **extra, GucSource source)
{
	if (strcmp(*newval, "") == 0 || strcmp(*newval, "AES256") == 0 ||
		strcmp(*newval, "aws:kms") == 0 || strcmp(*newval, "aws:kms:dsse") == 0)
		return true;

	GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
	GUC_check_errmsg("interactions_cron.s3_sse must be '', 'AES256', 'aws:kms' or 'aws:kms:dsse'");
	GUC_check_errhint("AES256 is SSE-S3; aws:kms and aws:kms:dsse use interactions_cron.s3_sse_kms_key_id, or the bucket's default key.");
	return false;
}

/*
 * CheckStorageClass accepts an S3 storage class name (STANDARD_IA,
 * INTELLIGENT_TIERING, ...: capitals, digits and underscores), or an empty
 * string for the bucket's default.
 */
static bool
CheckStorageClass(char **newval, void **extra, GucSource source)
{
	if (strspn(*newval, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == strlen(*newval))
		return true;

	GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
	GUC_check_errmsg("\"%s\" is not an S3 storage class", *newval);
	GUC_check_errhint("For example STANDARD_IA or INTELLIGENT_TIERING, or an empty string for the bucket's default.");
	return false;
}

/*
 * CheckProfileName accepts a profile name that can appear between the
 * brackets of a section header.
 */
static bool
CheckProfileName(char **newval, void **extra, GucSource source)
{
	if (**newval != '\0' && strpbrk(*newval, "[]\r\n") == NULL)
		return true;

	GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
	GUC_check_errmsg("interactions_cron.s3_credentials_profile must be a profile name");
	GUC_check_errhint("For example default, as in the section header [default].");
	return false;
}

/*
 * CheckEndpoint accepts an empty string (AWS) or an http(s) URL.
 */
static bool
CheckEndpoint(char **newval, void **extra, GucSource source)
{
	if (**newval == '\0' || strncmp(*newval, "http://", 7) == 0 || strncmp(*newval, "https://", 8) == 0)
		return true;

	GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
	GUC_check_errmsg("interactions_cron.s3_endpoint must start with http:// or https://");
	GUC_check_errhint("For example http://127.0.0.1:9000, or an empty string for AWS.");
	return false;
}

/*
 * CheckExportDirectory accepts an empty string (meaning a folder under the
 * data directory) or an absolute path; a relative path would silently depend
 * on the server's working directory.
 */
static bool
CheckExportDirectory(char **newval, void **extra, GucSource source)
{
	if (**newval == '\0' || is_absolute_path(*newval))
		return true;

	GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
	GUC_check_errmsg("interactions_cron.export_dir must be an absolute path");
	GUC_check_errhint("Use an absolute path such as /var/lib/interactions_cron, or an empty string for a folder under the data directory.");
	return false;
}

/*
 * CheckQualifiedTableName accepts only "schema.table": the export runs with a
 * fixed search_path, so an unqualified name would resolve somewhere surprising.
 */
static bool
CheckQualifiedTableName(char **newval, void **extra, GucSource source)
{
	char	   *rawname = pstrdup(*newval);
	List	   *namelist = NIL;
	bool		valid = SplitIdentifierString(rawname, '.', &namelist) &&
		list_length(namelist) == 2;

	list_free(namelist);
	pfree(rawname);

	if (valid)
		return true;

	GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
	GUC_check_errmsg("\"%s\" is not a schema-qualified table name", *newval);
	GUC_check_errhint("Write the name as schema.table, for example public.tenants.");
	return false;
}

/*
 * SplitQualifiedNameList splits a comma-separated list of qualified names at
 * the commas outside double quotes and trims each name; quoting is left in
 * place for StringToQualifiedNameList.
 */
List *
SplitQualifiedNameList(const char *rawList)
{
	List	   *names = NIL;
	StringInfoData name;
	bool		inQuotes = false;

	initStringInfo(&name);
	for (const char *p = rawList;; p++)
	{
		if (*p == '\0' || (*p == ',' && !inQuotes))
		{
			char	   *trimmed = name.data;
			int			length = name.len;

			while (length > 0 && scanner_isspace(trimmed[0]))
				trimmed++, length--;
			while (length > 0 && scanner_isspace(trimmed[length - 1]))
				length--;
			if (length > 0 || *p == ',')
				names = lappend(names, pnstrdup(trimmed, length));
			resetStringInfo(&name);
			if (*p == '\0')
				break;
			continue;
		}
		if (*p == '"')
			inQuotes = !inQuotes;
		appendStringInfoChar(&name, *p);
	}
	return names;
}

/*
 * CheckQualifiedTableList accepts a comma-separated list of schema-qualified
 * table names, or an empty string for none.
 */
static bool
CheckQualifiedTableList(char **newval, void **extra, GucSource source)
{
	List	   *names = SplitQualifiedNameList(*newval);
	ListCell   *cell;
	bool		valid = true;

	foreach(cell, names)
	{
		char	   *rawName = pstrdup(lfirst(cell));
		List	   *parts = NIL;

		valid = valid && SplitIdentifierString(rawName, '.', &parts) && list_length(parts) == 2;
	}

	if (valid)
		return true;

	GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
	GUC_check_errmsg("\"%s\" is not a list of schema-qualified table names", *newval);
	GUC_check_errhint("Write the names as schema.table, separated by commas.");
	return false;
}

/*
 * CheckColumnName accepts a column name as stored in the catalog (createdAt,
 * not "createdAt"): not empty and short enough to be an identifier.  Whether
 * the column exists is checked when a job uses it.
 */
static bool
CheckColumnName(char **newval, void **extra, GucSource source)
{
	if (*newval != NULL && (*newval)[0] != '\0' && strlen(*newval) < NAMEDATALEN)
		return true;
	GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
	GUC_check_errmsg("\"%s\" is not a column name", *newval ? *newval : "");
	GUC_check_errhint("Give the column's name as stored, without quotes: createdAt, not \"createdAt\".");
	return false;
}

/*
 * CheckNotEmpty accepts any value but an empty one.
 */
static bool
CheckNotEmpty(char **newval, void **extra, GucSource source)
{
	if (*newval != NULL && (*newval)[0] != '\0')
		return true;
	GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
	GUC_check_errmsg("the value must not be empty");
	return false;
}

/*
 * CheckTimezone accepts a time zone PostgreSQL knows whose offset from UTC
 * never changed (UTC, Etc/GMT-9).  In a zone with daylight saving time the
 * wall-clock times of the spring gap and of the autumn's repeated hour do
 * not map back to the same position, and rows there could be skipped.
 */
static bool
CheckTimezone(char **newval, void **extra, GucSource source)
{
	pg_tz	   *zone = (*newval != NULL && (*newval)[0] != '\0') ? pg_tzset(*newval) : NULL;
	long		offset;

	GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
	if (zone == NULL)
	{
		GUC_check_errmsg("\"%s\" is not a time zone name", *newval ? *newval : "");
		GUC_check_errhint("Use UTC, or a fixed offset such as Etc/GMT-9.");
		return false;
	}
	if (!pg_get_timezone_offset(zone, &offset))
	{
		GUC_check_errmsg("time zone \"%s\" does not keep one offset from UTC", *newval);
		GUC_check_errdetail("Wall-clock times of a zone that changes its clocks (daylight saving time) cannot be ordered and resumed exactly.");
		GUC_check_errhint("Use UTC, or a fixed offset such as Etc/GMT-9, and have the platform write its timestamp columns in it.");
		return false;
	}
	return true;
}

/*
 * DefineColumnSetting defines one of the superuser-only settings that map a
 * role of the data contract to a platform table's column.
 */
static void
DefineColumnSetting(const char *name, const char *description, char **variable,
					const char *defaultName)
{
	DefineCustomStringVariable(name, description,
							   "The column's name as stored (createdAt, not \"createdAt\").",
							   variable, defaultName, PGC_SUSET, 0,
							   CheckColumnName, NULL, NULL);
}

/*
 * DefineSchemaMappingSettings defines the settings that fit the jobs to the
 * platform's own schema (column names, the active tenants, time zone,
 * daily summaries' value).
 */
static void
DefineSchemaMappingSettings(void)
{
	DefineColumnSetting("interactions_cron.tenant_id_column",
						"Tenants table: the tenant key.", &TenantIdColumnSetting, "id");
	DefineColumnSetting("interactions_cron.tenant_name_column",
						"Tenants table: the name reported as tenantName.",
						&TenantNameColumnSetting, "name");
	DefineCustomStringVariable("interactions_cron.active_tenants_filter",
							   "Boolean SQL expression over the tenants table's columns that selects the tenants to export.",
							   "It runs as the tenants table's owner.",
							   &ActiveTenantsFilterSetting, "status = 'active'",
							   PGC_SUSET, 0, CheckNotEmpty, NULL, NULL);
	DefineColumnSetting("interactions_cron.history_tenant_column",
						"History table: the tenant key.", &HistoryTenantColumnSetting, "tenant_id");
	DefineColumnSetting("interactions_cron.history_created_column",
						"History table: the creation instant (timestamptz, or timestamp in history_timezone).",
						&HistoryCreatedColumnSetting, "created_at");
	DefineColumnSetting("interactions_cron.history_id_column",
						"History table: the tie-breaker after the creation instant.",
						&HistoryIdColumnSetting, "id");
	DefineCustomStringVariable("interactions_cron.history_timezone",
							   "Time zone in which timestamp without time zone values were written.",
							   NULL,
							   &HistoryTimezoneSetting, "UTC",
							   PGC_SUSET, 0, CheckTimezone, NULL, NULL);
	DefineColumnSetting("interactions_cron.suppressions_expires_column",
						"Suppressions table: the expiry (timestamptz, timestamp or date).",
						&SuppressionsExpiresColumnSetting, "expires_at");
	DefineColumnSetting("interactions_cron.summaries_period_type_column",
						"Summaries table: the period type (text or enum).",
						&SummariesPeriodTypeColumnSetting, "period_type");
	DefineCustomStringVariable("interactions_cron.summaries_daily_value",
							   "Summaries table: the period type value meaning daily.",
							   NULL,
							   &SummariesDailyValueSetting, "daily",
							   PGC_SUSET, 0, CheckNotEmpty, NULL, NULL);
	DefineColumnSetting("interactions_cron.summaries_period_start_column",
						"Summaries table: the period start (date, timestamp or timestamptz).",
						&SummariesPeriodStartColumnSetting, "period_start");
}

/*
 * DefineS3RoleSettings defines the settings that stand in for the AWS_*
 * variables of the credential chain when the server's environment cannot be
 * set; empty means the environment's.  The container authorization token is
 * a secret and follows the key settings' rules (CheckCredential, never
 * shown); the others name files, endpoints and a role, as
 * s3_credentials_file does.
 */
static void
DefineS3RoleSettings(void)
{
	DefineCustomStringVariable("interactions_cron.s3_web_identity_token_file",
							   "Web identity token file exchanged at STS for the role's credentials (AWS_WEB_IDENTITY_TOKEN_FILE).",
							   "Empty means AWS_WEB_IDENTITY_TOKEN_FILE from the server's environment.",
							   &S3WebIdentityTokenFileSetting, "",
							   PGC_SUSET, 0, CheckOptionalAbsolutePath, NULL, NULL);
	DefineCustomStringVariable("interactions_cron.s3_role_arn",
							   "Role assumed with the web identity token (AWS_ROLE_ARN).",
							   "Empty means AWS_ROLE_ARN from the server's environment.",
							   &S3RoleArnSetting, "",
							   PGC_SUSET, 0, CheckHeaderValue, NULL, NULL);
	DefineCustomStringVariable("interactions_cron.s3_role_session_name",
							   "Session name of the assumed role (AWS_ROLE_SESSION_NAME).",
							   "Empty means AWS_ROLE_SESSION_NAME, else one naming the process.",
							   &S3RoleSessionNameSetting, "",
							   PGC_SUSET, 0, CheckHeaderValue, NULL, NULL);
	DefineCustomStringVariable("interactions_cron.s3_sts_endpoint",
							   "STS endpoint for web identity (AWS_ENDPOINT_URL_STS); empty means the regional one.",
							   NULL, &S3StsEndpointSetting, "",
							   PGC_SUSET, 0, CheckEndpoint, NULL, NULL);
	DefineCustomStringVariable("interactions_cron.s3_container_credentials_full_uri",
							   "Container credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI).",
							   "Over http only loopback, localhost and the ECS and EKS agents' addresses are accepted.",
							   &S3ContainerCredentialsFullUriSetting, "",
							   PGC_SUSET, 0, CheckEndpoint, NULL, NULL);
	DefineCustomStringVariable("interactions_cron.s3_container_credentials_relative_uri",
							   "Path on the ECS credentials endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI).",
							   NULL, &S3ContainerCredentialsRelativeUriSetting, "",
							   PGC_SUSET, 0, CheckHeaderValue, NULL, NULL);
	DefineCustomStringVariable("interactions_cron.s3_container_authorization_token",
							   "Authorization token for the container credentials full URI (AWS_CONTAINER_AUTHORIZATION_TOKEN).",
							   NULL, &S3ContainerAuthorizationTokenSetting, "",
							   PGC_SUSET, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   CheckCredential, NULL, ShowContainerAuthorizationToken);
	DefineCustomStringVariable("interactions_cron.s3_container_authorization_token_file",
							   "File holding the container authorization token (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE).",
							   "Read at every use; it comes before the token itself.",
							   &S3ContainerAuthorizationTokenFileSetting, "",
							   PGC_SUSET, 0, CheckOptionalAbsolutePath, NULL, NULL);
	DefineCustomStringVariable("interactions_cron.s3_ec2_metadata_endpoint",
							   "EC2 instance metadata endpoint (AWS_EC2_METADATA_SERVICE_ENDPOINT); empty means 169.254.169.254.",
							   NULL, &S3Ec2MetadataEndpointSetting, "",
							   PGC_SUSET, 0, CheckEndpoint, NULL, NULL);
	DefineCustomBoolVariable("interactions_cron.s3_ec2_metadata_disabled",
							 "Never ask EC2 instance metadata for credentials (as AWS_EC2_METADATA_DISABLED=true).",
							 NULL, &S3Ec2MetadataDisabledSetting, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);
}

/*
 * DefineS3BucketPolicySettings defines the headers that buckets' policies
 * and S3-compatible stores ask of uploads.  All are off by default: some
 * stores refuse headers they do not know.
 */
static void
DefineS3BucketPolicySettings(void)
{
	DefineCustomStringVariable("interactions_cron.s3_sse",
							   "Server-side encryption of uploaded objects: '', AES256, aws:kms or aws:kms:dsse.",
							   "Sent as x-amz-server-side-encryption on uploads and multipart starts.",
							   &S3SseSetting, "",
							   PGC_SUSET, 0, CheckServerSideEncryption, NULL, NULL);
	DefineCustomStringVariable("interactions_cron.s3_sse_kms_key_id",
							   "KMS key of aws:kms and aws:kms:dsse encryption; empty means the bucket's default key.",
							   "Sent as x-amz-server-side-encryption-aws-kms-key-id.",
							   &S3SseKmsKeyIdSetting, "",
							   PGC_SUSET, 0, CheckHeaderValue, NULL, NULL);
	DefineCustomStringVariable("interactions_cron.s3_storage_class",
							   "Storage class of uploaded objects (x-amz-storage-class); empty means the bucket's default.",
							   NULL, &S3StorageClassSetting, "",
							   PGC_SUSET, 0, CheckStorageClass, NULL, NULL);
	DefineCustomEnumVariable("interactions_cron.s3_checksum",
							 "Checksum each upload and part carries: none, crc32c (x-amz-checksum-crc32c) or md5 (Content-MD5).",
							 "Object Lock buckets require one.",
							 &S3ChecksumSetting, S3_CHECKSUM_NONE, s3_checksum_options,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("interactions_cron.s3_expected_bucket_owner",
							   "Account that must own the bucket (x-amz-expected-bucket-owner on every request); empty means any.",
							   NULL, &S3ExpectedBucketOwnerSetting, "",
							   PGC_SUSET, 0, CheckHeaderValue, NULL, NULL);
}

/*
 * CheckLakeSyncMethod refuses syncfs where syncfs() does not report the
 * write-back errors that would leave an exported file incomplete.
 */
static bool
CheckLakeSyncMethod(int *newval, void **extra, GucSource source)
{
	if (*newval == LAKE_SYNC_SYNCFS && !KernelReportsSyncfsErrors())
	{
		GUC_check_errdetail("syncfs() reports every error of making a file system durable only on Linux 5.17 and later.");
		GUC_check_errhint("Use fsync.");
		return false;
	}
	return true;
}

/*
 * DefineSettings registers every interactions_cron.* setting and reserves the
 * prefix so that a misspelt setting is an error rather than a silent no-op.
 */
void
DefineSettings(void)
{
	DefineCustomStringVariable("interactions_cron.export_dir",
							   "Directory under which the exports/ tree is written.",
							   "Empty means interactions_cron/<database> under the data directory.",
							   &ExportDirectorySetting,
							   "",
							   PGC_SUSET, 0,
							   CheckExportDirectory, NULL, NULL);

	DefineCustomStringVariable("interactions_cron.tenants_table",
							   "Schema-qualified table holding tenants (id, name, status).",
							   NULL,
							   &TenantsTableSetting,
							   "public.tenants",
							   PGC_SUSET, 0,
							   CheckQualifiedTableName, NULL, NULL);

	DefineCustomStringVariable("interactions_cron.history_table",
							   "Schema-qualified table holding interaction history rows.",
							   NULL,
							   &HistoryTableSetting,
							   "public.interaction_history",
							   PGC_SUSET, 0,
							   CheckQualifiedTableName, NULL, NULL);

	DefineCustomIntVariable("interactions_cron.batch_size",
							"Maximum rows exported per tenant per call.",
							NULL,
							&DefaultBatchSize,
							10000, 1, INT_MAX,
							PGC_USERSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("interactions_cron.watermark_margin",
							"How far behind the current time the export watermark stays at least.",
							"Covers the moment between a transaction taking its start time and advertising it.",
							&WatermarkMarginMs,
							1000, 100, 3600 * 1000,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("interactions_cron.watermark_wait",
							"How long the export waits for transactions that advertise no start time.",
							"Such a backend (track_activities = off) is waited for; past this the run fails the tenants it would export.",
							&WatermarkWaitMs,
							10000, 0, 3600 * 1000,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("interactions_cron.standby_wait",
							"How long a tenant's first batch (from a checkpoint this history has not confirmed) waits for the standbys streaming from this server to have its intent.",
							"A standby promoted without it could not undo the batch: past this the batch places nothing and is retried at the next call. 0 places it without waiting.",
							&StandbyWaitMs,
							10000, 0, 3600 * 1000,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("interactions_cron.max_workers",
							"Background workers that export tenants in parallel for one call.",
							"Each takes a max_worker_processes slot while the call runs.",
							&MaxExportWorkers,
							4, 1, 64,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("interactions_cron.max_runtime",
							"Time budget of an export call for catching up: further batches of tenants "
							"whose batch was full start until it is spent.",
							"0 means off: one batch per tenant per call. export_interactions(max_runtime => ...) "
							"overrides it for one call.",
							&MaxRuntimeMs,
							0, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("interactions_cron.debug_fault",
							 "Injects a failure or a stall at a point of a tenant's export or of the call (tests only).",
							 NULL,
							 &DebugFaultSetting,
							 DEBUG_FAULT_NONE,
							 debug_fault_options,
							 PGC_SUSET, GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("interactions_cron.debug_fault_stall",
							"How long a sleep_ fault of interactions_cron.debug_fault stalls (tests only).",
							NULL,
							&DebugFaultStallMs,
							60000, 1, 3600000,
							PGC_SUSET, GUC_NOT_IN_SAMPLE | GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("interactions_cron.compression",
							 "Compression of exported files: none (.json), gzip (.json.gz) or zstd (.json.zst).",
							 NULL,
							 &CompressionSetting,
							 COMPRESSION_NONE,
							 compression_options,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("interactions_cron.compression_level",
							"Level of gzip (1-9) or zstd (1-19) compression; 0 is the measured default (1 for both).",
							NULL,
							&CompressionLevelSetting,
							0, 0, 19,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("interactions_cron.sync_method",
							 "How placed local files are made durable: fsync (each file and each directory on its path), syncfs (the export directory's file system, once per group of batches), or auto (syncfs where the export directory is not on the data directory's file system and the kernel reports syncfs errors, fsync elsewhere).",
							 "syncfs also writes back whatever else on that file system is waiting to be written.",
							 &LakeSyncMethodSetting,
							 LAKE_SYNC_AUTO,
							 lake_sync_method_options,
							 PGC_SUSET, 0,
							 CheckLakeSyncMethod, NULL, NULL);

	DefineCustomEnumVariable("interactions_cron.storage",
							 "Where exported files go: local (export_dir) or s3.",
							 NULL,
							 &StorageSetting,
							 STORAGE_LOCAL,
							 storage_options,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("interactions_cron.s3_bucket",
							   "Bucket that exported objects are uploaded to.",
							   NULL, &S3BucketSetting, "",
							   PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("interactions_cron.s3_prefix",
							   "Key prefix put before exports/ (for example \"lake/\").",
							   NULL, &S3PrefixSetting, "",
							   PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("interactions_cron.s3_region",
							   "Region used to sign S3 requests.",
							   NULL, &S3RegionSetting, "us-east-1",
							   PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("interactions_cron.s3_endpoint",
							   "Endpoint of an S3-compatible store (http[s]://host[:port]); empty means AWS.",
							   NULL, &S3EndpointSetting, "",
							   PGC_SUSET, 0, CheckEndpoint, NULL, NULL);

	DefineCustomBoolVariable("interactions_cron.s3_path_style",
							 "Address buckets as endpoint/bucket/key instead of bucket.endpoint/key.",
							 NULL, &S3PathStyleSetting, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("interactions_cron.s3_access_key_id",
							   "S3 access key id; empty means AWS_ACCESS_KEY_ID from the server's environment.",
							   NULL, &S3AccessKeyIdSetting, "",
							   PGC_SUSET, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   CheckCredential, NULL, ShowAccessKeyId);

	DefineCustomStringVariable("interactions_cron.s3_secret_access_key",
							   "S3 secret access key; empty means AWS_SECRET_ACCESS_KEY from the server's environment.",
							   NULL, &S3SecretAccessKeySetting, "",
							   PGC_SUSET, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   CheckCredential, NULL, ShowSecretAccessKey);

	DefineCustomStringVariable("interactions_cron.s3_credentials_file",
							   "AWS shared credentials file the S3 credentials are read from, when the settings hold none.",
							   "It must be a regular file owned by the server's OS user, with permissions 0600 or stricter.",
							   &S3CredentialsFileSetting, "",
							   PGC_SUSET, 0, CheckOptionalAbsolutePath, NULL, NULL);

	DefineCustomStringVariable("interactions_cron.s3_credentials_profile",
							   "Profile (section) of interactions_cron.s3_credentials_file to use.",
							   NULL, &S3CredentialsProfileSetting, "default",
							   PGC_SUSET, 0, CheckProfileName, NULL, NULL);

	DefineCustomIntVariable("interactions_cron.s3_multipart_threshold",
							"Objects larger than this are uploaded in parts of this size.",
							"S3 requires parts of at least 5 MB.",
							&S3MultipartThresholdKb,
							16 * 1024, 5 * 1024, 1024 * 1024,
							PGC_SUSET, GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("interactions_cron.s3_request_timeout",
							"Longest time one S3 request (one attempt) may take, whatever the server sends.",
							"A stalled or endless response fails the attempt; it is retried like any transient failure.",
							&S3RequestTimeoutMs,
							300 * 1000, 1000, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("interactions_cron.s3_low_speed_limit",
							"An S3 request slower than this many bytes per second for s3_low_speed_time fails.",
							NULL,
							&S3LowSpeedLimitBytes,
							1024, 1, 1024 * 1024 * 1024,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("interactions_cron.s3_low_speed_time",
							"How long an S3 request may stay below s3_low_speed_limit before it fails.",
							NULL,
							&S3LowSpeedTimeSeconds,
							30, 1, 3600,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomStringVariable("interactions_cron.suppressions_table",
							   "Schema-qualified table of suppressions (expires_at).",
							   NULL,
							   &SuppressionsTableSetting,
							   "public.suppressions",
							   PGC_SUSET, 0,
							   CheckQualifiedTableName, NULL, NULL);

	DefineCustomStringVariable("interactions_cron.summaries_table",
							   "Schema-qualified table of interaction summaries (period_type, period_start).",
							   NULL,
							   &SummariesTableSetting,
							   "public.interaction_summaries",
							   PGC_SUSET, 0,
							   CheckQualifiedTableName, NULL, NULL);

	DefineCustomStringVariable("interactions_cron.partitioned_tables",
							   "Comma-separated tables whose monthly partitions cleanup() creates ahead.",
							   "Empty means no partition maintenance.",
							   &PartitionedTablesSetting,
							   "public.interaction_history",
							   PGC_SUSET, GUC_LIST_INPUT,
							   CheckQualifiedTableList, NULL, NULL);

	DefineCustomIntVariable("interactions_cron.summary_retention_days",
							"Daily summaries whose period_start is more than this many days old are deleted.",
							NULL,
							&SummaryRetentionDays,
							365, 1, 100000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("interactions_cron.premake_months",
							"Months after the current one whose partitions cleanup() creates.",
							NULL,
							&PremakeMonths,
							3, 0, 120,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("interactions_cron.run_history_retention_days",
							"Rows of interactions_cron.job_runs older than this many days are pruned by cleanup().",
							NULL,
							&RunHistoryRetentionDays,
							30, 1, 100000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("interactions_cron.cleanup_batch_size",
							"Rows deleted per statement by cleanup().",
							NULL,
							&CleanupBatchSize,
							10000, 1, INT_MAX,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("interactions_cron.partition_lock_timeout",
							"How long cleanup() waits for a lock to create a partition.",
							NULL,
							&PartitionLockTimeoutMs,
							2000, 1, 600 * 1000,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineS3RoleSettings();
	DefineS3BucketPolicySettings();

	DefineCustomIntVariable("interactions_cron.metrics_max_tenants",
							"Most tenants interactions_cron.metrics() reports, the most lagging first.",
							"Each reported tenant costs an index range scan of up to batch_size + 1 rows "
							"and a few samples; 0 reports none.",
							&MetricsMaxTenants,
							100, 0, 1000000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineSchemaMappingSettings();
	MarkGUCPrefixReserved("interactions_cron");
}

/*
 * ResolvedExportDirectory returns the directory the exports/ tree lives in.
 * The default is per database: tenant ids are only unique within one, and so
 * are the row claims that keep two exports of a tenant apart.
 */
char *
ResolvedExportDirectory(void)
{
	if (ExportDirectorySetting != NULL && ExportDirectorySetting[0] != '\0')
		return pstrdup(ExportDirectorySetting);

	return psprintf("%s/interactions_cron/%s", DataDir,
					HiveEscapePathSegment(get_database_name(MyDatabaseId)));
}

/*
 * FaultSubject names what a fault was injected into: a tenant, or the call.
 */
static const char *
FaultSubject(const char *tenantId)
{
	return tenantId != NULL ? psprintf("tenant \"%s\"", tenantId) : "the call";
}

/*
 * InjectFault raises an error or stalls at a point of a tenant's export (or
 * of the call, tenantId NULL) when interactions_cron.debug_fault names that
 * point, for the failure and crash tests.  The stall lasts
 * debug_fault_stall and logs first, so a test can wait for it and kill -9
 * the worker; it can be cancelled like any wait.
 */
void
InjectFault(FaultPoint point, const char *tenantId)
{
	static const char *const pointNames[] = {"before_place", "between_files", "after_place",
	"after_workers", "at_taken_name"};
	static const int errorFaults[] = {DEBUG_FAULT_ERROR_BEFORE_PLACE, DEBUG_FAULT_ERROR_BETWEEN_FILES,
	DEBUG_FAULT_ERROR_AFTER_PLACE, DEBUG_FAULT_ERROR_AFTER_WORKERS, DEBUG_FAULT_ERROR_AT_TAKEN_NAME};
	static const int sleepFaults[] = {DEBUG_FAULT_SLEEP_BEFORE_PLACE, DEBUG_FAULT_SLEEP_BETWEEN_FILES,
	DEBUG_FAULT_SLEEP_AFTER_PLACE, DEBUG_FAULT_SLEEP_AFTER_WORKERS, DEBUG_FAULT_SLEEP_AT_TAKEN_NAME};

	if (DebugFaultSetting == errorFaults[point])
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("injected fault error_%s for %s", pointNames[point], FaultSubject(tenantId)),
				 errhint("interactions_cron.debug_fault is set; reset it outside tests.")));

	if (DebugFaultSetting == sleepFaults[point])
	{
		TimestampTz end = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), DebugFaultStallMs);
		long		remainingMs;

		elog(LOG, "interactions_cron: debug_fault sleep_%s reached for %s", pointNames[point],
			 FaultSubject(tenantId));
		while ((remainingMs = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), end)) > 0)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, remainingMs,
							 PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
}

/*
 * InjectConcurrentMkdir creates a directory just before the export's own
 * mkdir of it when interactions_cron.debug_fault = concurrent_mkdir, as
 * another worker or call that won the race would: the tests then see every
 * creation of a missing directory lose that race, deterministically.
 */
void
InjectConcurrentMkdir(const char *path)
{
	if (DebugFaultSetting == DEBUG_FAULT_CONCURRENT_MKDIR)
		(void) mkdir(path, pg_dir_create_mode);
}
