# The calling backend killed with SIGKILL mid-export, while its workers hold
# files placed but not committed: after crash recovery and the next runs, every
# committed row is in exactly one exported file.
use strict;
use warnings;

use File::Find;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# exported_id_counts returns {id => number of lines holding it} over every
# final (non-hidden) file, and the number of hidden temporary files.
sub exported_id_counts
{
	my ($export_dir) = @_;
	my (%copies, $temporary_files);
	return ({}, 0) unless -d "$export_dir/exports";
	find(
		sub {
			return unless -f $_;
			if (/^\./) { $temporary_files++; return; }
			open my $fh, '<', $_ or die "cannot read $File::Find::name: $!";
			while (my $line = <$fh>)
			{
				die "line without trailing newline in $File::Find::name" unless $line =~ /\n\z/;
				$copies{ decode_json($line)->{id} }++;
			}
			close $fh;
		},
		"$export_dir/exports");
	return (\%copies, $temporary_files // 0);
}

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

my ($before_crash) = exported_id_counts($export_dir);
ok(scalar(keys %$before_crash) > 0, 'a final file exists before the crash');

kill 'KILL', $pid or die "could not kill backend $pid";
eval { $export->quit };
$node->poll_query_until('postgres', 'SELECT 1', '1')
  or die 'the server did not come back after the crash';
ok($node->log_contains(qr/terminated by signal 9/, $log_offset), 'the backend was killed by SIGKILL');

is($node->safe_psql('postgres', 'SELECT count(*) FROM interactions_cron.export_checkpoints WHERE rows_exported > 0'),
	'0', 'no checkpoint moved for the killed run');
ok($node->safe_psql('postgres', 'SELECT count(*) FROM interactions_cron.export_intents') > 0,
	'the killed batches left their intents');

# The next runs write everything, replacing what the killed run left behind.
my $runs = 0;
while ($runs++ < 10)
{
	my $exported = $node->safe_psql('postgres',
		q{SELECT (interactions_cron.export_interactions(batch_size => 1500)->>'totalExported')::int});
	last if $exported == 0;
}
ok($runs < 10, 'the exports caught up');

my ($copies, $temporary_files) = exported_id_counts($export_dir);
is(scalar(keys %$copies), $total_rows, 'every committed row is in a file');
is(scalar(grep { $_ != 1 } values %$copies), 0, 'no row is in more than one line');
is($temporary_files, 0, 'no temporary file is left behind');
is($node->safe_psql('postgres',
		q{SELECT sum(rows_exported) FROM interactions_cron.export_checkpoints WHERE status = 'ok'}),
	$total_rows, 'the checkpoints account for every row');

$node->stop;
done_testing();
