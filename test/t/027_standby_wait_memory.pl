# A worker waiting for a standby keeps its memory bounded (a hostile
# review's reproduction: a description of the lagging standby was built at
# every 10 ms poll, in the tenant group's memory, kept until the group
# ended: about 1.5 MB a minute).  The sizes are read twice, 10 s apart, from
# pg_log_backend_memory_contexts of the waiting worker; the check is that
# the group's context stays within 64 kB over the second reading, not how
# long anything takes.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $timeout = $PostgreSQL::Test::Utils::timeout_default;

sub sql { my ($node, $query) = @_; return $node->safe_psql('postgres', $query, timeout => $timeout); }

my $lake = PostgreSQL::Test::Utils::tempdir() . '/lake';
my ($primary, $standby) = primary_with_standby('memory',
	"interactions_cron.export_dir = '$lake'\ninteractions_cron.standby_wait = '1h'\n");
sql($primary, q{INSERT INTO tenants (id, name) VALUES ('t', 'T')});
sql($primary, q{INSERT INTO interaction_history (tenant_id, created_at, channel)
                SELECT 't', now() - interval '1 day' + g * interval '1 minute', 'sms' FROM generate_series(1, 10) g});
$primary->wait_for_catchup($standby, 'replay');
my $receiver = sql($standby, 'SELECT pid FROM pg_stat_wal_receiver');
kill 'STOP', $receiver or die "cannot stop $receiver";

my $session = export_waiting_for_standby($primary, q{SELECT interactions_cron.export_interactions()});
my $worker = sql($primary, q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'interactions_cron export worker'});

# group_bytes logs the worker's memory contexts and returns the group's total.
sub group_bytes
{
	my $offset = -s $primary->logfile;
	sql($primary, "SELECT pg_log_backend_memory_contexts($worker)");
	my $bytes;
	for (1 .. 10 * $timeout)
	{
		last if defined $bytes;
		my $log = substr(slurp_file($primary->logfile), $offset);
		($bytes) = $log =~ /interactions_cron tenant group: (\d+) total/;
		select(undef, undef, undef, 0.1) unless defined $bytes;
	}
	return $bytes // die 'no memory context logged';
}

my $before = group_bytes();
# Let polls run: the worker is still waiting afterwards (the standby is stopped).
sql($primary, 'SELECT pg_sleep(10)');
my $after = group_bytes();
ok($after - $before <= 65536, 'the tenant group\'s memory stays bounded while the worker waits')
  or diag "group context: $before bytes at the first reading, $after at the second";

sql($primary, "SELECT pg_terminate_backend($worker)");
end_session($session);
kill 'CONT', $receiver;
$standby->stop;
$primary->stop;
done_testing();
