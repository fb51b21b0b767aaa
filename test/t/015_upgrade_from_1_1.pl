# Upgrade from 1.1 to the default version: a 1.1 install that has exported
# (one tenant failing) and cleaned up, run by this library on its 1.1
# objects, keeps its checkpoints, run history and files through ALTER
# EXTENSION ... UPDATE, ends with the same catalog objects as a fresh
# install, whatever the update scripts add, and goes on exporting exactly
# once.  The 1.2 totals start from the history 1.1 kept.  A release on
# 1.1's objects deletes the tenant's checkpoint, as 1.1 did.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use ExtensionCatalog;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my ($node, $export_dir) = start_upgrade_node('upgrade_1_1');

my $timeout = $PostgreSQL::Test::Utils::timeout_default;
sub fresh { return $node->safe_psql('fresh', $_[0], timeout => $timeout); }
sub upgraded { return $node->safe_psql('upgraded', $_[0], timeout => $timeout); }

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('postgres', 'CREATE DATABASE upgraded');
fresh('CREATE EXTENSION interactions_cron');
my $latest = fresh(q{SELECT default_version FROM pg_available_extensions WHERE name = 'interactions_cron'});
isnt($latest, '1.1', "the default version ($latest) is past 1.1");
is(fresh(q{SELECT extversion FROM pg_extension WHERE extname = 'interactions_cron'}), $latest,
	'fresh: CREATE EXTENSION installs the default version');

# upgraded: 1.1, used by this library: it exports, fails a tenant, cleans up.
upgraded(q{CREATE EXTENSION interactions_cron VERSION '1.1'});
upgraded(slurp_file('../reference/schema.sql'));
upgraded(q{
	INSERT INTO tenants (id, name) SELECT 'tenant_' || t, 'Tenant ' || t FROM generate_series(1, 3) t;
	INSERT INTO interaction_history (tenant_id, created_at, channel)
	SELECT 'tenant_' || t, now() - interval '2 days' + g * interval '7 minutes', 'sms'
	FROM generate_series(1, 40) g, generate_series(1, 3) t;
});
my $first = upgraded('SELECT interactions_cron.export_interactions(batch_size => 15)');
like($first, qr/"ok": true/, 'the library exports on 1.1 objects');
upgraded(q{
	SET interactions_cron.debug_fault = 'error_before_place';
	SELECT interactions_cron.export_interactions(tenant_id => 'tenant_2');
	SELECT interactions_cron.export_interactions(tenant_id => 'tenant_2');
});
like(upgraded('SELECT interactions_cron.cleanup()'), qr/"status": "ok"/, 'and cleans up on them');
is(upgraded(q{SELECT string_agg(job || ':' || ok, ' ' ORDER BY id) FROM interactions_cron.job_runs}),
	'export:true export:false export:false cleanup:true', 'each run is recorded in 1.1\'s job_runs');
is(upgraded(q{SELECT status || ' ' || attempts FROM interactions_cron.export_checkpoints WHERE tenant_id = 'tenant_2'}),
	'failed 2', 'tenant_2 failed twice in a row');
# A release with 1.1's objects, which allow no released state, deletes the
# tenant's checkpoint, as 1.1 did.
upgraded(q{
	INSERT INTO tenants (id, name, status) VALUES ('leaves', 'Leaves', 'moving');
	SELECT interactions_cron.tenant_state('leaves', release => true);
});
is(upgraded(q{SELECT count(*) FROM interactions_cron.export_checkpoints WHERE tenant_id = 'leaves'}), '0',
	'with 1.1\'s objects, a released tenant\'s checkpoint is deleted');

my $checkpoints_query = q{
	SELECT tenant_id, last_created_at, last_id, status, last_error, attempts, last_file,
	       rows_exported, files_written, last_success_at, updated_at, lake_epoch
	FROM interactions_cron.export_checkpoints ORDER BY tenant_id};
my $job_runs_query = q{SELECT * FROM interactions_cron.job_runs ORDER BY id};
my $checkpoints_1_1 = upgraded($checkpoints_query);
my $job_runs_1_1 = upgraded($job_runs_query);
my $files_1_1 = read_lake($export_dir)->{final_files};

update_extension_ok($node, 'upgraded', $latest);
is(upgraded($checkpoints_query), $checkpoints_1_1, 'the update keeps every checkpoint as it was');
is(upgraded($job_runs_query), $job_runs_1_1, 'and the run history');
is_deeply(read_lake($export_dir)->{final_files}, $files_1_1, 'and writes no file');
# The update records no history: the histories are drawn at the exports.
is(upgraded('SELECT count(*) FROM interactions_cron.export_histories'), '0',
	'the update records no history');

# The catalog of a fresh install, object by object.
my $fresh_catalog = fresh(describe_extension_sql());
like($fresh_catalog, qr/^== function interactions_cron\.metrics\(\)$/m, 'the description covers metrics()');
compare_text(upgraded(describe_extension_sql()), $fresh_catalog, 'upgraded.txt', 'fresh.txt',
	'the upgraded extension has the same objects as a fresh install');

# 1.2's totals start from the history kept, and tenant_2's failure is known.
is(upgraded(q{SELECT string_agg(job || ':' || outcome || '=' || runs, ' ' ORDER BY job, outcome)
              FROM interactions_cron.job_run_totals}),
	'cleanup:ok=1 export:failed=2 export:ok=1', 'the run totals start from the run history');
is(upgraded(q{SELECT count(*) FROM interactions_cron.cleanup_totals}), '4',
	'the cleanup totals start from the cleanup\'s run');
is(upgraded(q{SELECT last_failure_at = updated_at FROM interactions_cron.export_checkpoints
              WHERE tenant_id = 'tenant_2'}),
	't', 'a failed checkpoint knows when it failed');

# Exports go on from the 1.1 positions, exactly once; the runs are counted.
my ($caught_up, @problems) = export_until_done(
	sub { upgraded('SELECT interactions_cron.export_interactions(batch_size => 15)') }, 20);
ok($caught_up, 'the exports after the update caught up');
is(scalar(@problems), 0, 'every export after the update succeeded') or diag join("\n", @problems);
lake_rows_once_ok(read_lake($export_dir), 120);
is(upgraded(q{SELECT runs FROM interactions_cron.job_run_totals WHERE job = 'export' AND outcome = 'ok'}),
	upgraded(q{SELECT count(*) FROM interactions_cron.job_runs WHERE job = 'export' AND ok}),
	'each export after the update is counted');
is(upgraded(q{SELECT value FROM interactions_cron.metrics() WHERE metric = 'interactions_cron_tenants_active'}),
	'3', 'metrics() reports the tenants');

$node->stop;
done_testing();
