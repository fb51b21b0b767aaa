# A source's lost file whose rows the destination does not hold (the
# failover lost them too) is kept by the destination's first sweep past the
# adoption.  That export clears adopted_from, so every later judgement of
# the file (the sweep before an undo, the sweep after a switchover, the
# first sweep of the next database the tenant moves to) no longer knows the
# file's history as the source's lost one.  Each refused it (58P02) on
# every call (hostile review 20 of issue 19); a file the verdict keeps is
# kept, whoever placed it, unless the sweep has files to remove (t/077).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use JSON::PP;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $lake = shared_lake();
my $settings = "interactions_cron.export_dir = '$lake'\ninteractions_cron.max_workers = 1\n";
my ($a, $a_standby) = primary_with_standby('src_a', $settings);
my ($b, $b_standby) = primary_with_standby('dst_b', $settings);
$b->safe_psql('postgres', 'ALTER SEQUENCE interaction_history_id_seq RESTART 200000');
my $c = new_tenant_database('next_c', 300000, $settings);
my $export = 'SELECT interactions_cron.export_interactions(batch_size => 5)';

node_sql($a, q{INSERT INTO tenants (id, name) VALUES ('t', 'T')});
add_tenant_rows($a, 5, 0, 't');
is(decode_json(node_sql($a, $export))->{totalExported}, 5, 'a exports rows 1-5');
cut_off_standby($a, $a_standby, 0);
add_tenant_rows($a, 5, 100, 't');
is(decode_json(node_sql($a, $export))->{totalExported}, 5, 'a exports 5 rows its standby never gets');
$a->stop('immediate');
$a_standby->promote;
$a_standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die 'not promoted';

$b->wait_for_catchup($b_standby, 'replay');
move_tenant($a_standby, $b, 't', 'b adopts t from the promoted standby of a');
add_tenant_rows($b, 3, 20, 't');
calls_without_errors_ok($b, $export, 'b exports t, keeping a\'s lost file, none of whose rows b holds');
is(node_sql($b, q{SELECT adopted_from IS NULL FROM interactions_cron.export_checkpoints WHERE tenant_id = 't'}),
	't', 'b\'s export cleared adopted_from');

add_tenant_rows($b, 2, 30, 't');
cancel_call_after_place($b, $export);
calls_without_errors_ok($b, $export, 'b exports t after a cancelled batch (the sweep before the undo)');

$b->wait_for_catchup($b_standby, 'replay');
$b->stop;
$b_standby->promote;
$b_standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die 'not promoted';
add_tenant_rows($b_standby, 2, 40, 't');
calls_without_errors_ok($b_standby, $export, 'b exports t after a switchover of its own cluster');

# b then loses an export in a failover: its sweep has b's lost file to
# remove, and a's file, kept beside it, says another database may export
# t now (t/077), so the sweep removes nothing and fails t, until the DBA
# records a's lost history as b's (doc/troubleshooting.md).
my $b_next = streaming_standby($b_standby, 'dst_b_next');
add_tenant_rows($b_standby, 5, 60, 't');
export_lost_in_failover_ok($b_standby, $b_next, $export, 5, 'b exports 5 rows its next standby never gets');
my ($error) = map { $_->{error} // () } @{ decode_json(node_sql($b_next, $export))->{tenants} };
like($error // '', qr/another database placed it, in history ([0-9a-f-]{36}), which this database has never had/,
	'b, promoted, refuses a\'s file beside its own lost file');
my ($lost) = ($error // '') =~ /in history ([0-9a-f-]{36})/;
node_sql($b_next, qq{INSERT INTO interactions_cron.export_histories (lake_epoch, history_id)
	VALUES ('replaced a', '$lost') ON CONFLICT (history_id) DO UPDATE SET origin_prefix = NULL});
calls_without_errors_ok($b_next, $export, 'b exports t once a\'s lost history is recorded as b\'s');

move_tenant($b_next, $c, 't', 'c adopts t from b');
add_tenant_rows($c, 2, 70, 't');
calls_without_errors_ok($c, $export, 'c exports t (its first sweep meets a\'s lost file)');
table_rows_once_in_lake_ok($c, $lake);
$_->stop for ($a_standby, $b_next, $c);
done_testing();
