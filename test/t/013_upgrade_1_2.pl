# Upgrade from 1.1: the new library serves a database still on the 1.1 SQL
# objects (export_interactions() without max_runtime, the setting's budget
# still applying), and ALTER EXTENSION ... UPDATE keeps the checkpoints, the
# run history and the grants given on the old signature, ends with the same
# catalog objects as a fresh 1.2 install, and the export goes on exactly once.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use JSON::PP qw(decode_json);
use LakeCheck;
use ExtensionCatalog;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my ($node, $export_dir) = start_upgrade_node('upgrade_1_2');

# Every statement is bounded: a hung call fails the test instead of hanging it.
my $timeout = $PostgreSQL::Test::Utils::timeout_default;
sub fresh { return $node->safe_psql('fresh', $_[0], timeout => $timeout); }
sub upgraded { return $node->safe_psql('upgraded', $_[0], timeout => $timeout); }

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('postgres', 'CREATE DATABASE upgraded');

fresh('CREATE EXTENSION interactions_cron');
is(fresh(q{SELECT extversion FROM pg_extension WHERE extname = 'interactions_cron'}), '1.2',
	'fresh: CREATE EXTENSION installs 1.2');

upgraded(q{CREATE EXTENSION interactions_cron VERSION '1.1'});
upgraded(slurp_file('../reference/schema.sql'));
# 3 tenants of 50 rows each.
upgraded(q{
	INSERT INTO tenants (id, name) SELECT 'tenant_' || t, 'Tenant ' || t FROM generate_series(1, 3) t;
	INSERT INTO interaction_history (tenant_id, created_at, channel, metadata)
	SELECT 'tenant_' || t, now() - interval '2 days' + g * interval '1 minute', 'email', jsonb_build_object('g', g)
	FROM generate_series(1, 50) g, generate_series(1, 3) t;
	CREATE ROLE exporter_1_1;
	GRANT USAGE ON SCHEMA interactions_cron TO exporter_1_1;
	GRANT EXECUTE ON FUNCTION interactions_cron.export_interactions(integer, text, boolean) TO exporter_1_1;
	GRANT SELECT ON public.tenants, public.interaction_history TO exporter_1_1;
});

# The new library with the 1.1 objects: the three-argument function works,
# one batch per tenant, or as many as interactions_cron.max_runtime allows.
my $one_batch = decode_json(upgraded(
	q{SET ROLE exporter_1_1; SELECT interactions_cron.export_interactions(batch_size => 10)}));
ok($one_batch->{ok}, 'on 1.1 objects: export_interactions(batch_size, tenant_id, dry_run) runs');
is_deeply([ map { [ $_->{exported}, $_->{batches}, $_->{caughtUp} ? 1 : 0 ] } @{ $one_batch->{tenants} } ],
	[ [ 10, 1, 0 ], [ 10, 1, 0 ], [ 10, 1, 0 ] ], 'on 1.1 objects: one batch per tenant without a budget');
my $drained = decode_json(upgraded(q{SET interactions_cron.max_runtime = '1h';
	SELECT interactions_cron.export_interactions(batch_size => 10, tenant_id => 'tenant_1')}));
is_deeply([ map { [ $_->{exported}, $_->{batches}, $_->{caughtUp} ? 1 : 0 ] } @{ $drained->{tenants} } ],
	[ [ 40, 4, 1 ] ], 'on 1.1 objects: the setting\'s budget drains the tenant');

my $checkpoints_query = q{
	SELECT tenant_id, last_created_at, last_id, status, last_error, attempts, last_file,
	       rows_exported, files_written, last_success_at, updated_at, lake_epoch
	FROM interactions_cron.export_checkpoints ORDER BY tenant_id};
my $job_runs_query = q{SELECT id, job, started_at, finished_at, ok, result, error, run_by
	FROM interactions_cron.job_runs ORDER BY id};
my $checkpoints_1_1 = upgraded($checkpoints_query);
is(scalar(split /\n/, $checkpoints_1_1), 3, 'three checkpoints before the update');
my $job_runs_1_1 = upgraded($job_runs_query);

update_extension_ok($node, 'upgraded', '1.2');
is(upgraded($checkpoints_query), $checkpoints_1_1, 'the update keeps every checkpoint as it was');
is(upgraded($job_runs_query), $job_runs_1_1, 'the update keeps the run history');
is(upgraded(q{SELECT string_agg(p.oid::regprocedure::text, ' ') FROM pg_proc p
              WHERE p.pronamespace = 'interactions_cron'::regnamespace AND p.proname = 'export_interactions'}),
	'interactions_cron.export_interactions(integer,text,boolean,interval)',
	'export_interactions has its 1.2 signature only');
is(upgraded(q{SELECT has_function_privilege('exporter_1_1',
                'interactions_cron.export_interactions(integer, text, boolean, interval)', 'EXECUTE')}),
	't', 'a grant on the 1.1 signature is carried over to the 1.2 one');
is(upgraded(q{SELECT has_function_privilege('public',
                'interactions_cron.export_interactions(integer, text, boolean, interval)', 'EXECUTE')}),
	'f', 'PUBLIC still cannot run the export');

# The same catalog as a fresh 1.2 install, once the test's own role is gone
# (DROP OWNED BY: the update's grants are the extension's initial
# privileges, which from 17 on keep the role from being dropped otherwise).
upgraded(q{
	DROP OWNED BY exporter_1_1;
	DROP ROLE exporter_1_1;
});
my $fresh_catalog = fresh(describe_extension_sql());
like($fresh_catalog, qr/^== function interactions_cron\.export_interactions\(integer,pg_catalog\.text,boolean,interval\)$/m,
	'the description covers the 1.2 export_interactions()');
compare_text(upgraded(describe_extension_sql()), $fresh_catalog, 'upgraded.txt', 'fresh.txt',
	'the upgraded extension has the same objects as a fresh 1.2 install');

# After the update the export goes on from the 1.1 checkpoints, exactly once.
my $after = decode_json(upgraded(
	q{SELECT interactions_cron.export_interactions(batch_size => 10, max_runtime => '1 hour')}));
ok($after->{ok}, 'after the update: export_interactions(max_runtime => ...) runs');
is_deeply([ map { [ $_->{tenantId}, $_->{exported}, $_->{caughtUp} ? 1 : 0 ] } @{ $after->{tenants} } ],
	[ [ 'tenant_1', 0, 1 ], [ 'tenant_2', 40, 1 ], [ 'tenant_3', 40, 1 ] ],
	'after the update: every tenant is caught up from its checkpoint');
lake_rows_once_ok(read_lake($export_dir), 150);

$node->stop;
done_testing();
