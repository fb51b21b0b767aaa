# FAILS on main (second hostile review of the standby wait): a batch
# refused by standby_wait still commits, in its transaction A, the history
# (lake_epoch) of its checkpoint.  A checkpoint that already had a position
# (last_id set) but no history -- every checkpoint a 1.0 install left, since
# 1.0--1.1 adds lake_epoch NULL; by reading, also one adopted from such a
# source -- is then "confirmed here" for KeepCheckpoint (id set, lake_epoch
# this one), so the NEXT call places its batch without waiting, while the
# standby that made the first call refuse is still stuck and has neither
# that history nor the intent.  Promoted, that standby has the 1.0
# checkpoint with no history: nothing is swept, and its batch from the same
# position takes the name the lost batch placed: 58P02 on every call.
# Control (holds): quiet, a 1.0 checkpoint with no row past the watermark at
# the first call, is not visited then, and its later batch still waits.
#
# Observed on main (055c21d):
#   ok 2 - the first call refuses legacy's batch: the standby lacks it
#   not ok 4 - the second call, the standby still stopped, refuses legacy's batch too
#     got: {"ok": false, "tenants": [{"files": ["exports/legacy/.../batch-...Z-6.json"],
#           "caughtUp": true, "exported": 5, "tenantId": "legacy", ...}, {... quiet refused ...}]}
#   ok 5 - the second call, the standby still stopped, refuses quiet's batch too
#   not ok 6 - the new primary catches up without an error
#     {"ok":false,"tenants":[{"tenantId":"legacy","error":"export file
#       \"exports/legacy/.../batch-...Z-6.json\" already exists in the lake",...}, ...]}  (every call)
#   ok 7 - rows 6-10 of both are in the lake once each (the lost batch's file stays)
#
# Run: make prove_installcheck PROVE_TESTS=repro/refused_legacy_checkpoint_skips_wait.pl
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../t";
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
