-- pgTAP: every setting, its default, and who may change it.
BEGIN;
LOAD 'interactions_cron';
SELECT plan(36);

-- (The list of settings and their defaults is sql/00_setup.sql's.)
SELECT is((SELECT count(*)::int FROM pg_settings
           WHERE name LIKE 'interactions_cron.%' AND name <> 'interactions_cron.batch_size' AND context <> 'superuser'), 0,
          'every setting but batch_size is superuser-only');
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
SELECT throws_ok($$SET LOCAL interactions_cron.s3_container_authorization_token = 'do-not-show-me'$$, '42501',
                 'S3 credentials cannot be set in a session', 'the container authorization token is a credential too');
SELECT is((SELECT count(*)::int FROM pg_settings WHERE name = 'interactions_cron.s3_container_authorization_token'), 0,
          'the container authorization token is not listed in pg_settings');
SELECT throws_ok($$SET interactions_cron.s3_web_identity_token_file = 'token'$$, '22023', NULL,
                 'the web identity token file must be an absolute path');
SELECT throws_ok($$SET interactions_cron.s3_sts_endpoint = 'sts.example'$$, '22023', NULL, 'the STS endpoint must be http(s)');
SELECT throws_ok($$SET interactions_cron.s3_role_arn = E'arn:aws:iam::1:role/x\r\nX-Forged: 1'$$, '22023', NULL,
                 'a role cannot add a header of its own');
SELECT throws_ok($$SET interactions_cron.s3_sse = 'aes256'$$, '22023', NULL, 's3_sse is one of S3''s values, as spelt');
SELECT lives_ok($$SET interactions_cron.s3_sse = 'aws:kms:dsse'$$, 'aws:kms:dsse is one');
SELECT throws_ok($$SET interactions_cron.s3_storage_class = 'standard ia'$$, '22023', NULL, 'a storage class is a name');
SELECT throws_ok($$SET interactions_cron.s3_checksum = 'crc32'$$, '22023', NULL, 'only none, crc32c and md5 checksums');
SELECT is((SELECT setting FROM pg_settings WHERE name = 'interactions_cron.s3_checksum'), 'none',
          'no checksum header by default (stores refuse unknown ones)');
SELECT throws_ok($$SET interactions_cron.storage = 'gcs'$$, '22023', NULL, 'only local and s3 storage');
SELECT throws_ok($$SET interactions_cron.compression = 'brotli'$$, '22023', NULL, 'only none, gzip and zstd compression');
SELECT throws_ok($$SET interactions_cron.summary_retention_days = 0$$, '22023', NULL, 'retention is at least one day');

SELECT * FROM finish();
ROLLBACK;
