# The calling backend killed with SIGKILL mid-export, while its workers hold
# files placed but not committed: after crash recovery and the next runs, every
# committed row is in exactly one exported file.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
my $export_dir = $node->basedir . '/exports';
$node->append_conf('postgresql.conf', qq{
interactions_cron.export_dir = '$export_dir'
restart_after_crash = on
});
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION interactions_cron');
$node->safe_psql('postgres', slurp_file('../reference/schema.sql'));
$node->safe_psql('postgres', q{
	INSERT INTO tenants (id, name) SELECT 'tenant_' || t, 'Tenant ' || t FROM generate_series(1, 3) t;
	INSERT INTO interaction_history (tenant_id, created_at, channel, metadata)
	SELECT 'tenant_' || t, timestamptz '2026-03-29 12:00:00+00' + g * interval '1 minute',
	       'email', jsonb_build_object('g', g)
	FROM generate_series(1, 3) t, generate_series(1, 2000) g;
});
my $total_rows = $node->safe_psql('postgres', 'SELECT count(*) FROM interaction_history');

# Start an export that stalls right after its first file is renamed into place.
my $export = $node->background_psql('postgres', on_error_stop => 0);
$export->query_safe(q{SET interactions_cron.debug_fault = 'sleep_after_place'});
my $pid = $export->query_safe('SELECT pg_backend_pid()');
my $log_offset = -s $node->logfile;
$export->query_until(qr/started/, "\\echo started\nSELECT interactions_cron.export_interactions();\n");
$node->wait_for_log(qr/debug_fault sleep_after_place reached/, $log_offset);

my $before_crash = read_lake($export_dir);
ok(scalar(keys %{ $before_crash->{ids} }) > 0, 'a final file exists before the crash');

kill 'KILL', $pid or die "could not kill backend $pid";
end_session($export);
wait_for_restart($node, $log_offset);
ok($node->log_contains(qr/terminated by signal 9/, $log_offset), 'the backend was killed by SIGKILL');

is($node->safe_psql('postgres', 'SELECT count(*) FROM interactions_cron.export_checkpoints WHERE rows_exported > 0'),
	'0', 'no checkpoint moved for the killed run');
ok($node->safe_psql('postgres', 'SELECT count(*) FROM interactions_cron.export_intents') > 0,
	'the killed batches left their intents');

# The next runs write everything, replacing what the killed run left behind.
# (At most 9 calls: the one that exports nothing among them.)
my ($caught_up) = export_until_done(
	sub {
		$node->safe_psql('postgres', 'SELECT interactions_cron.export_interactions(batch_size => 1500)');
	},
	9);
ok($caught_up, 'the exports caught up');

# Every committed row in exactly one line.
lake_rows_once_ok(read_lake($export_dir), $total_rows);
is($node->safe_psql('postgres',
		q{SELECT sum(rows_exported) FROM interactions_cron.export_checkpoints WHERE status = 'ok'}),
	$total_rows, 'the checkpoints account for every row');

$node->stop;
done_testing();
