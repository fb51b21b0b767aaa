-- pgTAP: every setting, its default, and who may change it.
BEGIN;
LOAD 'interactions_cron';
SELECT plan(26);

SELECT results_eq(
    $$SELECT name, boot_val, context FROM pg_settings WHERE name LIKE 'interactions_cron.%' ORDER BY name$$,
    $$VALUES ('interactions_cron.active_tenants_filter', 'status = ''active''', 'superuser'),
             ('interactions_cron.batch_size', '10000', 'user'),
             ('interactions_cron.cleanup_batch_size', '10000', 'superuser'),
             ('interactions_cron.compression', 'none', 'superuser'),
             ('interactions_cron.debug_fault', 'none', 'superuser'),
             ('interactions_cron.export_dir', '', 'superuser'),
             ('interactions_cron.history_created_column', 'created_at', 'superuser'),
             ('interactions_cron.history_id_column', 'id', 'superuser'),
             ('interactions_cron.history_table', 'public.interaction_history', 'superuser'),
             ('interactions_cron.history_tenant_column', 'tenant_id', 'superuser'),
             ('interactions_cron.history_timezone', 'UTC', 'superuser'),
             ('interactions_cron.max_workers', '2', 'superuser'),
             ('interactions_cron.partition_lock_timeout', '2000', 'superuser'),
             ('interactions_cron.partitioned_tables', 'public.interaction_history', 'superuser'),
             ('interactions_cron.premake_months', '3', 'superuser'),
             ('interactions_cron.run_history_retention_days', '30', 'superuser'),
             ('interactions_cron.s3_bucket', '', 'superuser'),
             ('interactions_cron.s3_credentials_file', '', 'superuser'),
             ('interactions_cron.s3_credentials_profile', 'default', 'superuser'),
             ('interactions_cron.s3_endpoint', '', 'superuser'),
             ('interactions_cron.s3_low_speed_limit', '1024', 'superuser'),
             ('interactions_cron.s3_low_speed_time', '30', 'superuser'),
             ('interactions_cron.s3_multipart_threshold', '16384', 'superuser'),
             ('interactions_cron.s3_path_style', 'off', 'superuser'),
             ('interactions_cron.s3_prefix', '', 'superuser'),
             ('interactions_cron.s3_region', 'us-east-1', 'superuser'),
             ('interactions_cron.s3_request_timeout', '300000', 'superuser'),
             ('interactions_cron.storage', 'local', 'superuser'),
             ('interactions_cron.summaries_daily_value', 'daily', 'superuser'),
             ('interactions_cron.summaries_period_start_column', 'period_start', 'superuser'),
             ('interactions_cron.summaries_period_type_column', 'period_type', 'superuser'),
             ('interactions_cron.summaries_table', 'public.interaction_summaries', 'superuser'),
             ('interactions_cron.summary_retention_days', '365', 'superuser'),
             ('interactions_cron.suppressions_expires_column', 'expires_at', 'superuser'),
             ('interactions_cron.suppressions_table', 'public.suppressions', 'superuser'),
             ('interactions_cron.tenant_id_column', 'id', 'superuser'),
             ('interactions_cron.tenant_name_column', 'name', 'superuser'),
             ('interactions_cron.tenants_table', 'public.tenants', 'superuser'),
             ('interactions_cron.watermark_margin', '1000', 'superuser'),
             ('interactions_cron.watermark_wait', '10000', 'superuser')$$,
    'the settings, their defaults, and that those choosing files or relations are superuser-only');
SELECT is((SELECT unit FROM pg_settings WHERE name = 'interactions_cron.watermark_margin'), 'ms',
          'watermark_margin is in milliseconds');
SELECT is((SELECT min_val::int FROM pg_settings WHERE name = 'interactions_cron.batch_size'), 1,
          'batch_size is at least 1');
SELECT throws_ok($$SET interactions_cron.export_dir = 'relative'$$, '22023', NULL, 'export_dir must be absolute');
SELECT lives_ok($$SET interactions_cron.export_dir = ''$$, 'an empty export_dir means the data directory');
SELECT throws_ok($$SET interactions_cron.tenants_table = 'tenants'$$, '22023', NULL, 'table names must be schema-qualified');
SELECT lives_ok($$SET interactions_cron.tenants_table = '"Odd Schema"."Odd.Table"'$$, 'quoted names are accepted');
SELECT throws_ok($$SET interactions_cron.watermark_margin = 99$$, '22023', NULL, 'the margin has a floor of 100 ms');
SELECT throws_ok($$SET interactions_cron.debug_fault = 'crash'$$, '22023', NULL, 'unknown fault names are refused');
SELECT throws_ok($$SET interactions_cron.typo = 1$$, '42602', NULL, 'the interactions_cron prefix is reserved');
SELECT throws_ok($$SET interactions_cron.partitioned_tables = 'public.a, b'$$, '22023', NULL,
                 'every partitioned table must be schema-qualified');
SELECT lives_ok($$SET interactions_cron.partitioned_tables = 'public.a, "X".b'$$, 'a list of qualified names is accepted');
SELECT lives_ok($$SET interactions_cron.partitioned_tables = ''$$, 'an empty list turns partition maintenance off');
SELECT throws_ok($$SET interactions_cron.history_created_column = ''$$, '22023', NULL, 'a mapped column needs a name');
SELECT throws_ok($$SET interactions_cron.history_timezone = 'Nowhere/Land'$$, '22023', NULL, 'history_timezone must be a known zone');
SELECT lives_ok($$SET interactions_cron.history_created_column = 'createdAt'$$, 'a column is named as stored, unquoted');
SELECT is((SELECT count(*)::int FROM pg_settings WHERE name LIKE 'interactions_cron.s3_%access_key%'), 0,
          'the S3 credentials are not listed in pg_settings');
SELECT throws_ok($$SET LOCAL interactions_cron.s3_secret_access_key = 'do-not-show-me'$$, '42501',
                 'S3 credentials cannot be set in a session', 'a credential cannot be set in a session');
SELECT lives_ok($$SET LOCAL interactions_cron.s3_secret_access_key = ''$$, 'but it can be cleared');
SELECT throws_ok($$SET interactions_cron.s3_credentials_file = 'aws/credentials'$$, '22023', NULL,
                 'the credentials file must be an absolute path');
SELECT throws_ok($$SET interactions_cron.s3_credentials_profile = 'a]b'$$, '22023', NULL,
                 'a profile name cannot hold a bracket');
SELECT throws_ok($$SET interactions_cron.s3_endpoint = 'ftp://x'$$, '22023', NULL, 'the endpoint must be http(s)');
SELECT throws_ok($$SET interactions_cron.s3_multipart_threshold = '1MB'$$, '22023', NULL, 'parts are at least 5 MB');
SELECT throws_ok($$SET interactions_cron.storage = 'gcs'$$, '22023', NULL, 'only local and s3 storage');
SELECT throws_ok($$SET interactions_cron.compression = 'zstd'$$, '22023', NULL, 'only none and gzip compression');
SELECT throws_ok($$SET interactions_cron.summary_retention_days = 0$$, '22023', NULL, 'retention is at least one day');

SELECT * FROM finish();
ROLLBACK;
