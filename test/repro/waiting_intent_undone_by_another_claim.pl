# FAILS on main (second hostile review of the standby wait; a documented
# limit: two databases exporting one tenant at once).  t/024 showed a
# refused batch's undo remove another database's file placed at one of its
# names while it waited, and the refusal now forgets its intent instead.
# But the intent stays outstanding for the whole wait (standby_wait, 10 s by
# default, up to 1 h), and every other claim of the tenant undoes it the
# ordinary way (IntentClear), removing every file it names -- one it never
# placed included:
#   m1: a second, overlapping export call (pg_cron and a manual call, say)
#       claims the tenant while the first waits: its claim removes the
#       source's file, then its own look-up (RequireFreeNames) finds the
#       name free again.
#   m2: the refusal's ForgetRefusedIntent cannot reclaim the tenant (its
#       row locked at that instant: here by a session's FOR UPDATE; a
#       reset_checkpoint or another claim does the same), so the intent
#       stays, and the next call's claim removes the source's file.
#   m3: the waiting call is cancelled (statement_timeout, a cancelled
#       pg_cron job): its intent stays, and the next call's claim removes
#       the source's file.
# Either way the source's checkpoint says rows 1-10 are exported, and no
# file holds them.
#
# Observed on main (055c21d):
#   ok 1 - the source exported m1's rows 1-10
#   not ok 2 - m1: the source's file is still in the lake after an overlapping call
#   ok 3 - the source exported m2's rows 1-10
#   not ok 4 - m2: the source's file is still in the lake after the next call
#     (refused call: "not exported yet: the batch waits for the standbys ...";
#      intents left: 1; by reading, its RecordFailure is skipped too, the row
#      being locked: m2 is not marked failed)
#   ok 5 - the source exported m3's rows 1-10
#   not ok 6 - m3: the source's file is still in the lake after a cancelled wait and the next call
#
# Run: make prove_installcheck PROVE_TESTS=repro/waiting_intent_undone_by_another_claim.pl
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
my $lake = shared_lake();

sub sql { my ($node, $query) = @_; return $node->safe_psql('postgres', $query, timeout => $timeout); }

my $settings = "interactions_cron.export_dir = '$lake'\ninteractions_cron.max_workers = 1\n";
my $source = new_tenant_database('source', 1, $settings);
sql($source, q{INSERT INTO tenants (id, name) VALUES ('m1', 'M1'), ('m2', 'M2'), ('m3', 'M3')});
add_tenant_rows($source, 10, 0, 'm1', 'm2', 'm3');

my ($destination, $standby) = primary_with_standby('destination',
	$settings . "interactions_cron.standby_wait = '4s'\n");

# The tenants are active on the destination too early (t/022, t/024).
my $rows = sql($source, q{COPY (SELECT * FROM interaction_history ORDER BY id) TO STDOUT});
sql($destination, q{INSERT INTO tenants (id, name) VALUES ('m1', 'M1'), ('m2', 'M2'), ('m3', 'M3')});
sql($destination, "COPY interaction_history FROM STDIN;\n$rows\n\\.\n");
$destination->wait_for_catchup($standby, 'flush');

my $receiver = sql($standby, 'SELECT pid FROM pg_stat_wal_receiver');
kill 'STOP', $receiver or die "cannot stop $receiver";

sub export_one { my ($tenant) = @_;
	return "SELECT interactions_cron.export_interactions(batch_size => 10, tenant_id => '$tenant')"; }
sub files_of { my ($tenant) = @_; return @{ read_lake($lake, under => "exports/$tenant")->{final_files} }; }

# m1: the destination's first call waits; the source places the same name;
# a second call on the destination claims m1 meanwhile.
my $first = export_waiting_for_standby($destination, export_one('m1'));
is(decode_json(sql($source, export_one('m1')))->{totalExported}, 10, "the source exported m1's rows 1-10");
my @m1_files = files_of('m1');
my $second = $destination->background_psql('postgres', on_error_stop => 0);
$second->query_until(qr/started/, "\\echo started\n" . export_one('m1') . ";\n\\echo finished\n");
$first->query_until(qr/finished/, "\\echo finished\n");
$second->query_until(qr/finished/, '');
end_session($_) for $first, $second;
is(scalar(grep { -e "$lake/$_" } @m1_files), 1,
	"m1: the source's file is still in the lake after an overlapping call") or diag "source's file: @m1_files";

# m2: the destination's call waits; the source places the same name; the
# checkpoint row is locked when the wait times out.
my $waiting = export_waiting_for_standby($destination, export_one('m2'));
is(decode_json(sql($source, export_one('m2')))->{totalExported}, 10, "the source exported m2's rows 1-10");
my @m2_files = files_of('m2');
my $locker = $destination->background_psql('postgres');
$locker->query_safe(q{BEGIN; SELECT 1 FROM interactions_cron.export_checkpoints WHERE tenant_id = 'm2' FOR UPDATE});
my $out = $waiting->query_until(qr/finished/, "\\echo finished\n");
note "refused call: $out";
$locker->query_safe('COMMIT');
end_session($_) for $waiting, $locker;
note 'intents left: ' . sql($destination, 'SELECT count(*) FROM interactions_cron.export_intents');
note 'next call: ' . sql($destination, export_one('m2'));
is(scalar(grep { -e "$lake/$_" } @m2_files), 1,
	"m2: the source's file is still in the lake after the next call") or diag "source's file: @m2_files";

# m3: the destination's call waits (standby_wait 1h for it); the source
# places the same name; the call is cancelled (a statement_timeout, say),
# which leaves its intent, and the next call's claim undoes it.
my $cancelled = export_waiting_for_standby($destination,
	"SET interactions_cron.standby_wait = '1h';\n" . export_one('m3'));
is(decode_json(sql($source, export_one('m3')))->{totalExported}, 10, "the source exported m3's rows 1-10");
my @m3_files = files_of('m3');
sql($destination, q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity
                    WHERE query LIKE '%export_interactions(%' AND pid <> pg_backend_pid()});
$destination->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'interactions_cron export worker'})
  or die 'the waiting worker did not end';
end_session($cancelled);
note 'next call: ' . sql($destination, export_one('m3'));
is(scalar(grep { -e "$lake/$_" } @m3_files), 1,
	"m3: the source's file is still in the lake after a cancelled wait and the next call") or diag "source's file: @m3_files";

kill 'CONT', $receiver;
$standby->stop;
$destination->stop;
$source->stop;
done_testing();
