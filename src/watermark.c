/*
 * watermark.c
 *	  The safe upper bound of created_at for an export.
 *
 * A row's created_at defaults to now(), its transaction's start time, but the
 * row only becomes visible when that transaction commits, which can be long
 * after an export has moved past that time.  Exporting only rows older than
 * the start of every transaction still running in this database closes that
 * gap: a transaction that has not started yet will stamp a later time, and one
 * that already committed is in the snapshot the export query takes afterwards
 * (which is why the export insists on READ COMMITTED).  Waiting for the
 * table's current lockers would not do: a transaction can take its start time
 * long before it first touches the table.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/backend_status.h"
#include "utils/timestamp.h"

#include "interactions_cron/guc.h"
#include "interactions_cron/watermark.h"

/*
 * ExportWatermark returns min(now - margin, start of the oldest transaction
 * of this database).  Autovacuum workers never insert rows and are left out
 * so that a long vacuum does not hold exports back.  The margin covers the
 * instant between a backend taking its start time and advertising it.
 */
TimestampTz
ExportWatermark(void)
{
	TimestampTz watermark = GetCurrentTimestamp() -
		(TimestampTz) WatermarkMarginMs * INT64CONST(1000);
	int			backendCount;

	/* Read the shared status array afresh, not a copy cached earlier in this transaction. */
	pgstat_clear_backend_activity_snapshot();
	backendCount = pgstat_fetch_stat_numbackends();

	for (int backendIndex = 1; backendIndex <= backendCount; backendIndex++)
	{
		LocalPgBackendStatus *local = pgstat_fetch_stat_local_beentry(backendIndex);
		PgBackendStatus *backend;

		if (local == NULL)
			continue;
		backend = &local->backendStatus;
		if (backend->st_databaseid != MyDatabaseId ||
			backend->st_backendType == B_AUTOVAC_WORKER ||
			backend->st_xact_start_timestamp == 0)
			continue;

		if (backend->st_xact_start_timestamp < watermark)
			watermark = backend->st_xact_start_timestamp;
	}

	return watermark;
}
