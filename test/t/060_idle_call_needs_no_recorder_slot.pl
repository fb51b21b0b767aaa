# Hostile review 13 of issue 19 ("Also": a run's row must not depend on a
# free worker slot; "successful calls log 'could not start a worker to
# record the export run in job_runs'").  t/019 covers calls that have rows
# to export: their worker keeps its slot and records the run.  A call with
# nothing to export starts no worker, so its run still needs a recorder
# worker of its own: with no slot free it waits RECORDER_SLOT_WAIT_MS (5 s),
# logs that very warning, and records the row in the caller's transaction.
# A scheduler that calls every minute on a busy server met this on every
# idle call.  Failed on 8e034da; a call that started no worker now records
# its run in the caller's transaction at once.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('idle_recorder_slot');
$node->init;
# The logical replication launcher takes one slot; one is left, which
# another export's worker (or any other worker of the server) may hold.
$node->append_conf('postgresql.conf', qq{
interactions_cron.export_dir = '@{[ $node->basedir ]}/lake'
interactions_cron.max_workers = 1
max_worker_processes = 2
});
$node->start;
node_sql($node, 'CREATE EXTENSION interactions_cron');
node_sql($node, slurp_file('../reference/schema.sql'));
node_sql($node, q{INSERT INTO tenants (id, name) VALUES ('t1', 'T1')});

# Another export holds the last slot: its worker, stalled after placing
# t1's batch (debug_fault sleep_after_place), stands in for any other
# worker of the server.
node_sql($node, q{INSERT INTO tenants (id, name) VALUES ('t2', 'T2');
	INSERT INTO interaction_history (tenant_id, created_at) VALUES ('t1', now() - interval '1 hour')});
my $stall_offset = -s $node->logfile;
my $holder = $node->background_psql('postgres', on_error_stop => 0);
$holder->query_safe(q{LOAD 'interactions_cron'; SET interactions_cron.debug_fault = 'sleep_after_place'});
$holder->query_until(qr/started/, "\\echo started\nSELECT interactions_cron.export_interactions(tenant_id => 't1');\n");
wait_for_stalled_group($node, 'postgres', $stall_offset, 1);

my $offset = -s $node->logfile;
node_sql($node, q{SELECT interactions_cron.export_interactions(tenant_id => 't2')});
ok(!$node->log_contains(qr/could not start a worker to record the export run/, $offset),
	'an idle call logs no "could not start a worker to record the export run"');
is(node_sql($node, q{SELECT count(*) FROM interactions_cron.job_runs WHERE job = 'export'
	AND result->>'totalExported' = '0'}), '1', 'its run is recorded');

# The stalled export ends.
cancel_exports($node);
end_session($holder);
$node->stop;
done_testing();
