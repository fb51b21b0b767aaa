# A batch refused by standby_wait leaves its checkpoint's history as it
# found it (a hostile review's reproduction).  It used to keep the history
# (lake_epoch) its transaction A recorded, so a checkpoint that had a
# position but no history (every checkpoint a 1.0 install left) counted as
# confirmed here at the next call, whose batch was placed without waiting
# while the standby still lacked both; promoted, that standby swept nothing
# and failed the tenant 58P02 on every call.  Control: a 1.0 checkpoint with
# no row past the watermark at the first call is not visited then, and its
# later batch waits too.
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
my $primary = PostgreSQL::Test::Cluster->new('legacy_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
interactions_cron.export_dir = '$lake'
interactions_cron.standby_wait = '1s'
});
$primary->start;

# A 1.0 install that exported rows 1-5 of tenants legacy and quiet, then
# updated.  Quiet's rows 6-10 are written a few seconds ahead (they pass the
# watermark only after the first call below): its first call exports 0 rows.
sql($primary, q{CREATE EXTENSION interactions_cron VERSION '1.0'});
sql($primary, slurp_file('../reference/schema.sql'));
sql($primary, q{INSERT INTO tenants (id, name) VALUES ('legacy', 'Legacy'), ('quiet', 'Quiet')});
sql($primary, q{INSERT INTO interaction_history (tenant_id, created_at, channel)
                SELECT 'legacy', now() - interval '1 day' + g * interval '7 minutes', 'sms'
                FROM generate_series(1, 10) g ORDER BY g});
sql($primary, q{INSERT INTO interaction_history (tenant_id, created_at, channel)
                SELECT 'quiet', CASE WHEN g <= 5 THEN now() - interval '1 day' + g * interval '7 minutes'
                                     ELSE now() + interval '4 seconds' + g * interval '1 millisecond' END, 'sms'
                FROM generate_series(1, 10) g ORDER BY g});
sql($primary, q{INSERT INTO interactions_cron.export_checkpoints
                  (tenant_id, last_created_at, last_id, rows_exported, files_written, last_success_at)
                SELECT DISTINCT ON (tenant_id) tenant_id, created_at, id, 5, 1, now() - interval '1 hour'
                FROM (SELECT *, row_number() OVER (PARTITION BY tenant_id ORDER BY created_at, id) AS n
                      FROM interaction_history) h
                WHERE n = 5 ORDER BY tenant_id});
sql($primary, 'ALTER EXTENSION interactions_cron UPDATE');
is(sql($primary, q{SELECT count(*) FILTER (WHERE last_id IS NOT NULL AND lake_epoch IS NULL)
                   FROM interactions_cron.export_checkpoints}),
	'2', 'the 1.0 checkpoints have a position and no history');

$primary->backup('for_standby');
my $standby = PostgreSQL::Test::Cluster->new('legacy_standby');
$standby->init_from_backup($primary, 'for_standby', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby, 'replay');

# The standby's WAL receiver stops: connected, it flushes nothing more.
my $receiver = sql($standby, 'SELECT pid FROM pg_stat_wal_receiver');
kill 'STOP', $receiver or die "cannot stop $receiver";

my %first = map { $_->{tenantId} => $_ }
  @{ decode_json(sql($primary, q{SELECT interactions_cron.export_interactions()}))->{tenants} };
like($first{legacy}{error} // '', qr/waits for the standbys/,
	'the first call refuses legacy\'s batch: the standby lacks it') or diag explain \%first;
is($first{quiet}{exported}, 0, 'the first call finds no row of quiet past the watermark');

$primary->poll_query_until('postgres',
	q{SELECT max(created_at) < now() - interval '1.5 seconds' FROM interaction_history})
  or die 'the rows did not pass the watermark margin';
my $second = sql($primary, q{SELECT interactions_cron.export_interactions()});
my %second = map { $_->{tenantId} => $_ } @{ decode_json($second)->{tenants} };
for my $tenant ('legacy', 'quiet')
{
	like($second{$tenant}{error} // '', qr/waits for the standbys/,
		"the second call, the standby still stopped, refuses ${tenant}'s batch too") or diag "got: $second";
}

# The primary crashes; the standby, promoted, exports on.
# SIGKILL, not SIGCONT: a receiver let go on reads the WAL its socket still
# holds; killed, the standby (restart_after_crash is off) is started again
# from its own pg_wal, which lacks both calls, as a standby cut off by the
# crash does.
$primary->stop('immediate');
kill 'KILL', $receiver;
for (1 .. 10 * $timeout) { last unless -e $standby->data_dir . '/postmaster.pid'; select(undef, undef, undef, 0.1); }
$standby->{_pid} = undef;    # it died: Cluster does not know
$standby->start;
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die 'not promoted';
my ($caught_up, @problems) = export_until_done(sub { sql($standby, 'SELECT interactions_cron.export_interactions()') }, 5);
ok($caught_up && !@problems, 'the new primary catches up without an error') or diag join("\n", @problems);
my $lake_ids = read_lake($lake)->{ids};
my @ids_past_5 = split /\n/, sql($standby, q{SELECT id FROM (SELECT id, row_number() OVER
                                                 (PARTITION BY tenant_id ORDER BY created_at, id) AS n
                                               FROM interaction_history) h WHERE n > 5});
is(scalar(grep { ($lake_ids->{$_} // 0) == 1 } @ids_past_5), 10, 'rows 6-10 of both are in the lake once each');

$standby->stop;
done_testing();
