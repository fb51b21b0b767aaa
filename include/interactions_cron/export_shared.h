/*
 * export_shared.h
 *	  What an export call shares with its workers: one dynamic shared memory
 *	  segment holding the run's parameters, the caller's settings and
 *	  identity, the tenants to export, and one result queue per worker.
 */
#ifndef INTERACTIONS_CRON_EXPORT_SHARED_H
#define INTERACTIONS_CRON_EXPORT_SHARED_H

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "storage/dsm.h"

#include "interactions_cron/tenant_export.h"

#define EXPORT_SHM_MAGIC 0x49435831

/* Keys of the segment's table of contents. */
#define EXPORT_KEY_RUN 1
#define EXPORT_KEY_SETTINGS 2
#define EXPORT_KEY_TENANTS 3
#define EXPORT_KEY_TENANT_QUEUE 4
#define EXPORT_KEY_FIRST_QUEUE 16	/* + the worker's number */

#define EXPORT_QUEUE_BYTES (64 * 1024)

typedef struct ExportRunShared
{
	/* who the workers run as: the caller, exactly */
	Oid			databaseId;
	Oid			authenticatedUserId;
	Oid			outerUserId;	/* SET ROLE, or InvalidOid */
	bool		roleIsSuperuser;	/* the caller's is_superuser setting */
	Oid			currentUserId;
	int			securityContext;

	/* the run */
	TimestampTz watermark;
	int64		batchSize;
	bool		dryRun;
	int			tenantCount;

	/* where worker 0 takes the run to record (run_hand_off.c), or DSM_HANDLE_INVALID */
	dsm_handle	handOffSegment;
} ExportRunShared;

/* The tenants' ids: offsets into the NUL-terminated strings that follow. */
typedef struct ExportTenantIds
{
	int			count;
	Size		offsets[FLEXIBLE_ARRAY_MEMBER];
} ExportTenantIds;

extern const char *SharedTenantId(const ExportTenantIds *tenants, int index);
extern char *TenantErrorText(char *message);
extern void SerializeOutcome(StringInfo message, const TenantOutcome *outcome);
extern void DeserializeOutcome(StringInfo message, TenantOutcome *outcome);

#endif
