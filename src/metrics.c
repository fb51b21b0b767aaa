/*
 * metrics.c
 *	  interactions_cron.metrics(): one row per sample, named and typed as
 *	  Prometheus expects, which the HTTP shim's /metrics turns into the text
 *	  exposition format and a DBA's postgres_exporter or sql_exporter reads
 *	  as it is.
 *
 * Per tenant it reports the checkpoint's totals and position, the backlog
 * export_status shows, and the last success and failure; per job, the
 * counters of job_run_totals and cleanup_totals.  A scrape must stay cheap
 * whatever the number of tenants: every active tenant costs one index probe
 * (its oldest waiting row), and only the most lagging
 * interactions_cron.metrics_max_tenants of them are counted and reported.
 * Nothing is written.
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "interactions_cron/export_status.h"
#include "interactions_cron/guc.h"
#include "interactions_cron/relations.h"
#include "interactions_cron/spi_plans.h"
#include "interactions_cron/tenants.h"

/*
 * The columns of a sample: metric, type, help, the four labels (tenant_id,
 * job_name, outcome, kind), value.  job_name, not job: a scraper sets job
 * and instance itself.
 */
#define SAMPLE_COLUMNS 8
#define LABEL_COLUMNS 4

/* A metric family: its name, Prometheus type and help text. */
typedef struct MetricFamily
{
	const char *name;
	const char *type;
	const char *help;
} MetricFamily;

/*
 * The per-tenant families, in the order of the columns of ReadTenantTotals
 * and then the backlog's.
 */
typedef enum TenantMetric
{
	TENANT_ROWS_EXPORTED,
	TENANT_FILES_WRITTEN,
	TENANT_CHECKPOINT,
	TENANT_LAST_SUCCESS,
	TENANT_LAST_FAILURE,
	TENANT_CONSECUTIVE_FAILURES,
	TENANT_ROWS_WAITING,
	TENANT_BACKLOG_EXCEEDS_BATCH,
	TENANT_OLDEST_WAITING_AGE,
	TENANT_METRIC_COUNT
} TenantMetric;

/* How many TenantMetrics come from ReadTenantTotals. */
#define CHECKPOINT_METRICS (TENANT_CONSECUTIVE_FAILURES + 1)

static const MetricFamily tenantFamilies[TENANT_METRIC_COUNT] = {
	{"interactions_cron_tenant_rows_exported_total", "counter",
	"Rows exported for the tenant since its checkpoint was created."},
	{"interactions_cron_tenant_files_written_total", "counter",
	"Files written for the tenant since its checkpoint was created."},
	{"interactions_cron_tenant_checkpoint_timestamp_seconds", "gauge",
	"Created time of the last exported row of the tenant (the checkpoint), as a Unix time."},
	{"interactions_cron_tenant_last_success_timestamp_seconds", "gauge",
	"When the tenant's export last succeeded, as a Unix time."},
	{"interactions_cron_tenant_last_failure_timestamp_seconds", "gauge",
	"When the tenant's export last failed, as a Unix time."},
	{"interactions_cron_tenant_consecutive_failures", "gauge",
	"Failed exports of the tenant since its last success."},
	{"interactions_cron_tenant_rows_waiting", "gauge",
	"Rows past the tenant's checkpoint, counted up to batch_size + 1."},
	{"interactions_cron_tenant_backlog_exceeds_batch", "gauge",
	"1 when more than one batch of the tenant's rows is waiting."},
	{"interactions_cron_tenant_oldest_waiting_age_seconds", "gauge",
	"Age of the tenant's oldest row still to export; 0 when none waits."},
};

static const MetricFamily activeTenantsFamily = {
	"interactions_cron_tenants_active", "gauge", "Active tenants of the export."
};
static const MetricFamily reportedTenantsFamily = {
	"interactions_cron_tenants_reported", "gauge",
	"Tenants reported here, the most lagging first (interactions_cron.metrics_max_tenants)."
};

/* An active tenant and the created time of its oldest waiting row. */
typedef struct RankedTenant
{
	TenantToExport *tenant;
	bool		waiting;
	TimestampTz oldest;
	int			position;		/* in id order, to break ties */
} RankedTenant;

static SPIPlanPtr tenantTotalsPlan = NULL;
static SPIPlanPtr jobSamplesPlan = NULL;

/*
 * CompareLag orders tenants by lag: those with rows waiting first, the
 * oldest waiting row first, then in id order.
 */
static int
CompareLag(const void *left, const void *right)
{
	const RankedTenant *a = left;
	const RankedTenant *b = right;

	if (a->waiting != b->waiting)
		return a->waiting ? -1 : 1;
	if (a->waiting && a->oldest != b->oldest)
		return a->oldest < b->oldest ? -1 : 1;
	return a->position - b->position;
}

/*
 * MostLaggingTenants returns the at most maxTenants tenants of the list
 * whose oldest waiting row is oldest, most lagging first, probing each
 * tenant's backlog for its oldest row only.
 */
static List *
MostLaggingTenants(const ConfiguredTable *history, List *tenantList, int maxTenants)
{
	int			tenantCount = list_length(tenantList);
	RankedTenant *ranked;
	SPITupleTable *probes;
	List	   *chosen = NIL;
	ListCell   *cell;

	if (tenantCount == 0 || maxTenants == 0)
		return NIL;
	ranked = palloc(sizeof(RankedTenant) * tenantCount);
	probes = ReadBacklogs(history, tenantList, 0);
	foreach(cell, tenantList)
	{
		int			i = foreach_current_index(cell);
		bool		isNull;
		Datum		oldest = SPI_getbinval(probes->vals[i], probes->tupdesc,
										   BACKLOG_OLDEST_COLUMN, &isNull);

		ranked[i].tenant = lfirst(cell);
		ranked[i].waiting = !isNull;
		ranked[i].oldest = isNull ? 0 : DatumGetTimestampTz(oldest);
		ranked[i].position = i;
	}
	SPI_freetuptable(probes);
	qsort(ranked, tenantCount, sizeof(RankedTenant), CompareLag);
	for (int i = 0; i < Min(tenantCount, maxTenants); i++)
		chosen = lappend(chosen, ranked[i].tenant);
	return chosen;
}

/*
 * ReadTenantTotals returns, as the extension's owner, one row per tenant (in
 * list order) with the first CHECKPOINT_METRICS tenant metrics from its
 * checkpoint, as double precision; NULL where there is nothing to report
 * (no success yet, a checkpoint at the beginning).
 */
static SPITupleTable *
ReadTenantTotals(List *tenantList)
{
	return ReadTenantCheckpoints(&tenantTotalsPlan,
								 "COALESCE(c.rows_exported, 0)::float8,"
								 " COALESCE(c.files_written, 0)::float8,"
								 " CASE WHEN pg_catalog.isfinite(c.last_created_at)"
								 "      THEN pg_catalog.date_part('epoch', c.last_created_at) END,"
								 " pg_catalog.date_part('epoch', c.last_success_at),"
								 " pg_catalog.date_part('epoch', c.last_failure_at),"
								 " COALESCE(c.attempts, 0)::float8",
								 tenantList);
}

/*
 * PutSample appends one sample; labels are tenant, job name, outcome and kind,
 * each NULL when the family has no such label.
 */
static void
PutSample(ReturnSetInfo *resultInfo, const MetricFamily *family, const char *const *labels,
		  double value)
{
	Datum		values[SAMPLE_COLUMNS];
	bool		nulls[SAMPLE_COLUMNS] = {false};

	values[0] = CStringGetTextDatum(family->name);
	values[1] = CStringGetTextDatum(family->type);
	values[2] = CStringGetTextDatum(family->help);
	for (int i = 0; i < LABEL_COLUMNS; i++)
	{
		nulls[3 + i] = labels[i] == NULL;
		values[3 + i] = labels[i] ? CStringGetTextDatum(labels[i]) : (Datum) 0;
	}
	values[7] = Float8GetDatum(value);
	tuplestore_putvalues(resultInfo->setResult, resultInfo->setDesc, values, nulls);
}

/*
 * TenantValues fills one tenant's values of every tenant metric, present[]
 * saying which it has: its checkpoint's, then its backlog's.  The age of the
 * oldest waiting row is taken at the transaction's start, as export_status's
 * lag, and never below 0 (a row created ahead of this server's clock).
 */
static void
TenantValues(SPITupleTable *totals, SPITupleTable *backlogs, int row,
			 double *values, bool *present)
{
	bool		isNull;
	Datum		oldest;

	for (int metric = 0; metric < CHECKPOINT_METRICS; metric++)
	{
		Datum		value = SPI_getbinval(totals->vals[row], totals->tupdesc, metric + 1, &isNull);

		present[metric] = !isNull;
		values[metric] = isNull ? 0 : DatumGetFloat8(value);
	}
	values[TENANT_ROWS_WAITING] =
		(double) DatumGetInt64(SPI_getbinval(backlogs->vals[row], backlogs->tupdesc,
											 BACKLOG_WAITING_COLUMN, &isNull));
	values[TENANT_BACKLOG_EXCEEDS_BATCH] =
		DatumGetBool(SPI_getbinval(backlogs->vals[row], backlogs->tupdesc,
								   BACKLOG_EXCEEDS_COLUMN, &isNull)) ? 1 : 0;
	oldest = SPI_getbinval(backlogs->vals[row], backlogs->tupdesc, BACKLOG_OLDEST_COLUMN, &isNull);
	values[TENANT_OLDEST_WAITING_AGE] = isNull ? 0 :
		Max(0, GetCurrentTransactionStartTimestamp() - DatumGetTimestampTz(oldest)) /
		(double) USECS_PER_SEC;
	present[TENANT_ROWS_WAITING] = true;
	present[TENANT_BACKLOG_EXCEEDS_BATCH] = true;
	present[TENANT_OLDEST_WAITING_AGE] = true;
}

/*
 * PutTenantSamples appends the samples of the reported tenants, family by
 * family, so that each family's samples are together.
 */
static void
PutTenantSamples(ReturnSetInfo *resultInfo, const ConfiguredTable *history, List *reported)
{
	int			tenantCount = list_length(reported);
	double	   *values;
	bool	   *present;
	SPITupleTable *totals;
	SPITupleTable *backlogs;

	if (tenantCount == 0)
		return;
	values = palloc(sizeof(double) * tenantCount * TENANT_METRIC_COUNT);
	present = palloc(sizeof(bool) * tenantCount * TENANT_METRIC_COUNT);
	totals = ReadTenantTotals(reported);
	backlogs = ReadBacklogs(history, reported, DefaultBatchSize);
	for (int row = 0; row < tenantCount; row++)
		TenantValues(totals, backlogs, row, values + row * TENANT_METRIC_COUNT,
					 present + row * TENANT_METRIC_COUNT);
	SPI_freetuptable(backlogs);
	SPI_freetuptable(totals);

	for (int metric = 0; metric < TENANT_METRIC_COUNT; metric++)
	{
		for (int row = 0; row < tenantCount; row++)
		{
			const char *labels[LABEL_COLUMNS] = {((TenantToExport *) list_nth(reported, row))->id};
			int			at = row * TENANT_METRIC_COUNT + metric;

			if (present[at])
				PutSample(resultInfo, &tenantFamilies[metric], labels, values[at]);
		}
	}
}

/*
 * PutJobSamples appends the per-job samples, read as the extension's owner
 * from job_run_totals, cleanup_totals and (the failures since the last
 * success) job_runs, family by family: runs by outcome, when each outcome
 * last ran, how long the last run took, the failures in a row, and what the
 * cleanups did.
 */
static void
PutJobSamples(ReturnSetInfo *resultInfo)
{
	SPITupleTable *samples;

	(void) RunStatementAsOwner(&jobSamplesPlan,
							   "SELECT s.metric, s.type, s.help, s.job_name, s.outcome, s.kind, s.value"
							   " FROM ("
							   "  SELECT 1 AS family, 'interactions_cron_job_runs_total' AS metric,"
							   "    'counter' AS type, 'Runs of the job by outcome (ok, failed, skipped).' AS help,"
							   "    t.job AS job_name, t.outcome, NULL::text AS kind, t.runs::float8 AS value"
							   "  FROM interactions_cron.job_run_totals t"
							   "  UNION ALL"
							   "  SELECT 2, 'interactions_cron_job_last_run_timestamp_seconds', 'gauge',"
							   "    'When the job last finished with the outcome, as a Unix time.',"
							   "    t.job, t.outcome, NULL, pg_catalog.date_part('epoch', t.last_finished_at)"
							   "  FROM interactions_cron.job_run_totals t"
							   "  UNION ALL"
							   "  SELECT 3, 'interactions_cron_job_last_run_duration_seconds', 'gauge',"
							   "    'How long the job''s last run took.',"
							   "    l.job, NULL, NULL,"
							   "    pg_catalog.date_part('epoch', l.last_finished_at - l.last_started_at)"
							   "  FROM (SELECT DISTINCT ON (t.job) t.*"
							   "        FROM interactions_cron.job_run_totals t"
							   "        ORDER BY t.job, t.last_finished_at DESC) l"
							   "  UNION ALL"
							   /* Read back to the last success only (job_runs' index). */
							   "  SELECT 4, 'interactions_cron_job_consecutive_failures', 'gauge',"
							   "    'Failed runs of the job since its last successful one.',"
							   "    j.job, NULL, NULL, f.failures::float8"
							   "  FROM (SELECT DISTINCT t.job FROM interactions_cron.job_run_totals t) j"
							   "  CROSS JOIN LATERAL ("
							   "    SELECT pg_catalog.count(*) FROM interactions_cron.job_runs r"
							   "    WHERE r.job = j.job AND NOT r.ok AND r.started_at >"
							   "      COALESCE((SELECT pg_catalog.max(o.started_at) FROM interactions_cron.job_runs o"
							   "                WHERE o.job = j.job AND o.ok), '-infinity')) AS f(failures)"
							   "  UNION ALL"
							   "  SELECT 5, 'interactions_cron_cleanup_rows_deleted_total', 'counter',"
							   "    'Rows deleted by cleanup() by kind.',"
							   "    NULL, NULL, c.kind, c.total::float8"
							   "  FROM interactions_cron.cleanup_totals c WHERE c.kind <> 'partitions_ensured'"
							   "  UNION ALL"
							   "  SELECT 6, 'interactions_cron_cleanup_partitions_ensured_total', 'counter',"
							   "    'Partitions cleanup() ensured exist, summed over its runs.',"
							   "    NULL, NULL, NULL, c.total::float8"
							   "  FROM interactions_cron.cleanup_totals c WHERE c.kind = 'partitions_ensured'"
							   " ) s"
							   " ORDER BY s.family, s.job_name, s.outcome, s.kind",
							   0, NULL, NULL, NULL, SPI_OK_SELECT, "read the job totals");
	samples = SPI_tuptable;
	for (uint64 row = 0; row < SPI_processed; row++)
	{
		MetricFamily family;
		const char *labels[LABEL_COLUMNS] = {NULL};
		bool		isNull;

		family.name = SPI_getvalue(samples->vals[row], samples->tupdesc, 1);
		family.type = SPI_getvalue(samples->vals[row], samples->tupdesc, 2);
		family.help = SPI_getvalue(samples->vals[row], samples->tupdesc, 3);
		for (int label = 1; label < LABEL_COLUMNS; label++)
			labels[label] = SPI_getvalue(samples->vals[row], samples->tupdesc, 3 + label);
		PutSample(resultInfo, &family, labels,
				  DatumGetFloat8(SPI_getbinval(samples->vals[row], samples->tupdesc, 7, &isNull)));
	}
	SPI_freetuptable(samples);
}

/* PostgreSQL 15's PG_FUNCTION_INFO_V1 exports only the info function. */
PGDLLEXPORT Datum metrics(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(metrics);

/*
 * metrics() returns the samples: how many tenants are active and reported,
 * each reported tenant's, then each job's.  The caller must be able to read
 * the platform's tenants and history itself, as for export_status.
 */
Datum
metrics(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *resultInfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const char *noLabels[LABEL_COLUMNS] = {NULL};
	ConfiguredTable historyTable;
	List	   *tenantList = StartStatusRead(fcinfo, &historyTable);
	List	   *reported;

	reported = MostLaggingTenants(&historyTable, tenantList, MetricsMaxTenants);
	PutSample(resultInfo, &activeTenantsFamily, noLabels, list_length(tenantList));
	PutSample(resultInfo, &reportedTenantsFamily, noLabels, list_length(reported));
	PutTenantSamples(resultInfo, &historyTable, reported);
	PutJobSamples(resultInfo);
	FinishSpi();
	return (Datum) 0;
}
