# A worker places nothing of its group until the synchronous standbys have
# the group's intents; a cancelled wait for them stops the worker instead
# (a hostile review's finding: SyncRepWaitForLSN only warns when its wait is
# cancelled, and returns, and the group was then placed although the
# standby that a failover would promote lacked the intents that undo it).
# The synchronous standby's WAL receiver is stopped (SIGSTOP): connected, it
# flushes nothing more, and the worker's wait is cancelled.  Once the
# standby resumes, the next call exports the rows, once.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use JSON::PP;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $timeout = $PostgreSQL::Test::Utils::timeout_default;

sub sql { my ($node, $query) = @_; return $node->safe_psql('postgres', $query, timeout => $timeout); }

my $lake = PostgreSQL::Test::Utils::tempdir() . '/lake';
my ($primary, $standby) = primary_with_standby('sync_wait', "interactions_cron.export_dir = '$lake'\n");
$primary->append_conf('postgresql.conf', "synchronous_standby_names = 'sync_wait_standby'\n");
$primary->reload;
ok($primary->poll_query_until('postgres', q{SELECT sync_state = 'sync' FROM pg_stat_replication}),
	'the standby is synchronous');

# rows_past_margin adds $count rows of tenant steady, committed without
# waiting for the standby, and waits until they pass the watermark margin.
sub rows_past_margin
{
	my ($count) = @_;
	sql($primary, qq{SET synchronous_commit = local;
	                 INSERT INTO interaction_history (tenant_id, channel) SELECT 'steady', 'sms' FROM generate_series(1, $count)});
	$primary->poll_query_until('postgres',
		q{SELECT max(created_at) < now() - interval '1.5 seconds' FROM interaction_history})
	  or die 'the rows did not pass the watermark margin';
}

sql($primary, q{SET synchronous_commit = local; INSERT INTO tenants (id, name) VALUES ('steady', 'Steady')});
rows_past_margin(5);
my $first = decode_json(sql($primary, q{SELECT interactions_cron.export_interactions(tenant_id => 'steady')}));
ok($first->{ok} && $first->{totalExported} == 5, 'with the synchronous standby streaming, a batch is placed')
  or diag explain $first;

# The standby's WAL receiver stops: the next group's wait for it never ends.
my $receiver = sql($standby, 'SELECT pid FROM pg_stat_wal_receiver');
ok($receiver =~ /^\d+$/, "the standby's WAL receiver runs (PID $receiver)");
kill 'STOP', $receiver or die "cannot stop $receiver";
rows_past_margin(5);

my $log_offset = -s $primary->logfile;
my $session = $primary->background_psql('postgres', on_error_stop => 0);
$session->query_until(qr/started/,
	"\\echo started\nSELECT interactions_cron.export_interactions(tenant_id => 'steady');\n");
$primary->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM pg_stat_activity
	  WHERE backend_type = 'interactions_cron export worker' AND wait_event = 'SyncRep'})
  or die 'the export worker did not wait for the synchronous standby';
my $worker = sql($primary, q{SELECT pid FROM pg_stat_activity
                             WHERE backend_type = 'interactions_cron export worker' AND wait_event = 'SyncRep'});
sql($primary, "SELECT pg_cancel_backend($worker)");
$primary->wait_for_log(qr/canceling wait for synchronous replication due to user request/, $log_offset);

# The cancelled worker ends, or places its group (as it did before): wait
# for either.
my $files_after_cancel;
for (my $waited = 0; $waited < $timeout * 10; $waited++)
{
	$files_after_cancel = scalar(@{ read_lake($lake, under => 'exports/steady')->{final_files} });
	last if $files_after_cancel > 1
	  || sql($primary, "SELECT count(*) FROM pg_stat_activity WHERE pid = $worker") == 0;
	usleep(100_000);
}
is($files_after_cancel, 1, 'a cancelled wait for the synchronous standby places nothing of the group');
ok($primary->log_contains(qr/canceling the export while the synchronous standbys lack its intents/, $log_offset),
	'the worker says why it stopped');

# The standby resumes; the call ends, and the next one exports the rows once.
kill 'CONT', $receiver;
end_session($session);
my ($caught_up, @problems) = export_until_done(sub { sql($primary, 'SELECT interactions_cron.export_interactions()') }, 5);
ok($caught_up, 'the next calls catch up');
is(scalar(@problems), 0, 'and succeed for every tenant') or diag join("\n", @problems);
lake_rows_once_ok(read_lake($lake), sql($primary, 'SELECT count(*) FROM interaction_history'), ' (after the cancelled wait)');

$standby->stop;
$primary->stop;
done_testing();
