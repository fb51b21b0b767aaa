# The export's background workers: no free slot fails the call at once,
# exporting nothing; statement_timeout stops the workers, and the run history
# still reports the tenants that committed before; a silent transaction is
# waited for only up to watermark_wait.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('workers');
$node->init;
my $export_dir = $node->basedir . '/exports';
$node->append_conf('postgresql.conf', qq{
interactions_cron.export_dir = '$export_dir'
max_worker_processes = 1
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION interactions_cron');
$node->safe_psql('postgres', slurp_file('../reference/schema.sql'));
$node->safe_psql('postgres', q{
	INSERT INTO tenants (id, name) VALUES ('t1', 'T1'), ('t2', 'T2'), ('t3', 'T3');
	INSERT INTO interaction_history (tenant_id, created_at)
	SELECT t, timestamptz '2026-03-30 10:00:00+00' + g * interval '1 minute'
	FROM unnest(ARRAY['t1', 't2', 't3']) t, generate_series(1, 10) g;
});

# The logical replication launcher holds the only worker slot.
my $err = psql_error($node, 'postgres', 'SELECT interactions_cron.export_interactions()') // '';
like($err, qr/53400: could not start any interactions_cron export worker/, 'no free slot: 53400');
like($err, qr/HINT:.*max_worker_processes/, 'the hint names max_worker_processes');
is($node->safe_psql('postgres', 'SELECT count(*) FROM interactions_cron.export_checkpoints WHERE rows_exported > 0'),
	'0', 'nothing was exported');
ok(!-e "$export_dir/exports", 'no file was written');

$node->append_conf('postgresql.conf', "max_worker_processes = 8\nmax_prepared_transactions = 2");
$node->restart;

# A superuser holds an intent row of t3 uncommitted: the worker's intent
# insert for t3 waits for it (a claim no longer waits: a checkpoint row held
# uncommitted makes the tenant skipped).  t1 and t2 commit first (one
# worker, in id order).
my $blocker = $node->background_psql('postgres');
$blocker->query_safe(q{BEGIN; INSERT INTO interactions_cron.export_intents
	(tenant_id, token, storage, local_root, files, temporary_files, row_count)
	VALUES ('t3', 'held', 'local', '/nowhere', '{}', '{}', 0)});
$err = psql_error($node, 'postgres', q{
	SET interactions_cron.max_workers = 1;
	SET statement_timeout = '3s';
	SELECT interactions_cron.export_interactions();
}) // '';
like($err, qr/canceling statement due to statement timeout/, 'statement_timeout ends the call');
ok($node->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'interactions_cron export worker'}),
	'the workers are gone');
is($node->safe_psql('postgres',
		q{SELECT string_agg(tenant_id || '=' || rows_exported, ' ' ORDER BY tenant_id)
		  FROM interactions_cron.export_checkpoints WHERE rows_exported > 0}),
	't1=10 t2=10', 'the tenants exported before the timeout stay committed');
is($node->safe_psql('postgres', q{
		SELECT ok::text || ' ' || (result->>'totalExported') || ' ' || (error LIKE '%statement timeout%')::text
		FROM interactions_cron.job_runs WHERE job = 'export' ORDER BY id DESC LIMIT 1}),
	'false 20 true', 'the run history reports the failed call with what it committed');
$blocker->query_safe('ROLLBACK');
$blocker->quit;
is($node->safe_psql('postgres', q{SELECT interactions_cron.export_interactions()->>'totalExported'}),
	'10', 'the next call exports the rest');

# A transaction that advertises no start time is waited for, up to
# watermark_wait, then the run fails its tenants instead of missing rows.
$node->safe_psql('postgres', q{INSERT INTO interaction_history (tenant_id, created_at) VALUES ('t1', now() - interval '1 hour')});
my $silent = $node->background_psql('postgres');
$silent->query_safe(q{SET track_activities = off});
$silent->query_safe(q{BEGIN; SELECT 1});
my $silent_pid = $silent->query_safe('SELECT pg_backend_pid()');
my $result = $node->safe_psql('postgres', q{
	SET interactions_cron.watermark_wait = '500ms';
	SELECT (r->>'ok') || ' ' || (r->>'totalExported') || ' ' || (r->'tenants'->0->>'error')
	FROM interactions_cron.export_interactions() r});
like($result, qr/^false 0 not exported: the transaction of backend PID $silent_pid does not advertise its start \(track_activities is off/,
	'past watermark_wait the run fails, naming the backend and track_activities');
$silent->query_safe('COMMIT');
$silent->quit;
is($node->safe_psql('postgres', q{SELECT interactions_cron.export_interactions()->>'totalExported'}),
	'1', 'once it ended, the row is exported');

# A prepared transaction advertises no start time and has no backend: its
# rows must not be skipped either.
$node->safe_psql('postgres', q{
	BEGIN;
	INSERT INTO interaction_history (tenant_id, created_at, channel) VALUES ('t2', now(), 'prepared');
	PREPARE TRANSACTION 'held';
});
$node->safe_psql('postgres', q{INSERT INTO interaction_history (tenant_id, created_at) VALUES ('t2', now() - interval '1 hour')});
$result = $node->safe_psql('postgres', q{
	SET interactions_cron.watermark_wait = '300ms';
	SELECT (r->>'ok') || ' ' || (r->>'totalExported') || ' ' || (r->'tenants'->1->>'error')
	FROM interactions_cron.export_interactions() r}, timeout => $PostgreSQL::Test::Utils::timeout_default);
like($result, qr/^false 0 not exported: a prepared transaction \(two-phase commit\)/,
	'an open prepared transaction fails the run instead of being skipped');
$node->safe_psql('postgres', q{COMMIT PREPARED 'held'});
$node->poll_query_until('postgres', q{SELECT pg_sleep(1.1) IS NOT NULL});
is($node->safe_psql('postgres', q{SELECT interactions_cron.export_interactions()->>'totalExported'}),
	'2', 'once committed, the prepared row is exported with the other');
is($node->safe_psql('postgres', q{SELECT count(*) FROM interaction_history h
	WHERE NOT EXISTS (SELECT 1 FROM interactions_cron.export_checkpoints c
	                  WHERE c.tenant_id = h.tenant_id AND (c.last_created_at, c.last_id::bigint) >= (h.created_at, h.id))}),
	'0', 'every row is behind its checkpoint');

# The caller holds a share lock, a DDL statement (without a lock_timeout)
# queues behind it, and a worker queues behind the DDL: after a grace that
# outlasts cleanup()'s partition_lock_timeout, the call fails instead of
# waiting for ever (nothing else sees that wait).
$node->safe_psql('postgres', q{INSERT INTO interaction_history (tenant_id, created_at) VALUES ('t1', now() - interval '1 hour')});
my $caller = $node->background_psql('postgres', on_error_stop => 0);
$caller->query_safe(q{BEGIN; SELECT count(*) FROM interaction_history});
my $ddl = $node->background_psql('postgres');
$ddl->query_until(qr/sent/, "\\echo sent\nALTER TABLE interaction_history ADD COLUMN queued int;\n");
$node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE 'ALTER TABLE interaction_history%' AND wait_event_type = 'Lock'})
  or die 'the DDL statement did not queue';
my ($stdout_lock) = $caller->query(q{SELECT interactions_cron.export_interactions()});
like($caller->{stderr}, qr/export worker \(PID \d+\) has waited \d+ s for a lock held by this transaction/,
	'a worker queued behind the caller\'s lock fails the call');
$caller->query('ROLLBACK');
$caller->quit;
$ddl->quit;
is($node->safe_psql('postgres', q{SELECT count(*) FROM information_schema.columns
	WHERE table_name = 'interaction_history' AND column_name = 'queued'}), '1', 'the DDL went through');

$node->stop;
done_testing();
