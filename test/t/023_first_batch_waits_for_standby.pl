# A tenant's first batch is placed only once the standbys streaming from the
# primary have its intent (issue 19; a hostile review's finding: an
# asynchronous failover that lost a tenant's first export, its checkpoint
# row with it, left the new primary nothing to sweep from, so its rows were
# written a second time or its batch failed 58P02 on every call).  The
# standby's WAL receiver is stopped (SIGSTOP): it stays connected, and
# flushes nothing more.  The first batch waits interactions_cron.standby_wait,
# then fails without placing anything; a wait can be cancelled.  The primary
# crashes, the standby is promoted, and every row is in the lake once.
# A tenant's later batches do not wait: after a failover the checkpoint row
# they find is swept (010_failover.pl).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use JSON::PP;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $timeout = $PostgreSQL::Test::Utils::timeout_default;

sub sql { my ($node, $query) = @_; return $node->safe_psql('postgres', $query, timeout => $timeout); }

my $lake = PostgreSQL::Test::Utils::tempdir() . '/lake';
my ($primary, $standby) = primary_with_standby('first_batch',
	"interactions_cron.export_dir = '$lake'\ninteractions_cron.standby_wait = '2s'\n");
sql($primary, q{INSERT INTO tenants (id, name) VALUES ('early', 'Early'), ('late', 'Late')});
sql($primary, q{INSERT INTO interaction_history (tenant_id, channel)
                SELECT t, 'sms' FROM unnest(ARRAY['early', 'late']) t, generate_series(1, 10) ORDER BY 1});
$primary->wait_for_catchup($standby, 'replay');
$primary->poll_query_until('postgres', q{SELECT max(created_at) < now() - interval '1.5 seconds' FROM interaction_history})
  or die 'the rows did not pass the watermark margin';

# With the standby streaming, a first batch waits only for it to flush.
my $early = decode_json(sql($primary, q{SELECT interactions_cron.export_interactions(tenant_id => 'early')}));
ok($early->{ok} && $early->{totalExported} == 10, 'a first batch is placed once the streaming standby has it')
  or diag explain $early;

# The standby's WAL receiver stops: connected, it flushes nothing more.
my $receiver = sql($standby, 'SELECT pid FROM pg_stat_wal_receiver');
ok($receiver =~ /^\d+$/, "the standby's WAL receiver runs (PID $receiver)");
kill 'STOP', $receiver or die "cannot stop $receiver";

# A wait can be cancelled: the call ends at once, having placed nothing.
$primary->append_conf('postgresql.conf', "interactions_cron.standby_wait = '1h'\n");
$primary->reload;
my $session = export_waiting_for_standby($primary, q{SELECT interactions_cron.export_interactions(tenant_id => 'late')});
sql($primary, q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity
                WHERE query LIKE 'SELECT interactions_cron.export_interactions(%' AND pid <> pg_backend_pid()});
ok($primary->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'interactions_cron export worker'}),
	'a cancel ends the wait and the worker');
end_session($session);
is(scalar(@{ read_lake($lake, under => 'exports/late')->{final_files} }), 0, 'the cancelled batch placed nothing');

# Past standby_wait, the first batch fails and places nothing.
$primary->append_conf('postgresql.conf', "interactions_cron.standby_wait = '2s'\n");
$primary->reload;
my $late = decode_json(sql($primary, q{SELECT interactions_cron.export_interactions(tenant_id => 'late')}));
like($late->{tenants}[0]{error} // '', qr/the batch waits for the standbys to have it, and the standby of walsender PID \d+ has flushed/,
	'past standby_wait the first batch fails, naming the standby');
is(scalar(@{ read_lake($lake, under => 'exports/late')->{final_files} }), 0, 'it placed nothing');

# The primary crashes; the standby, promoted, exports on.
$primary->stop('immediate');
kill 'CONT', $receiver;
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die 'not promoted';
my ($caught_up, @problems) = export_until_done(sub { sql($standby, 'SELECT interactions_cron.export_interactions()') }, 10);
ok($caught_up, 'the new primary catches up');
is(scalar(@problems), 0, 'every call on the new primary succeeds for every tenant') or diag join("\n", @problems);
lake_rows_once_ok(read_lake($lake), sql($standby, 'SELECT count(*) FROM interaction_history'), ' (after the failover)');

$standby->stop;
done_testing();
