# A source's lost file whose rows the destination does not hold (the
# failover lost them too) is kept by the destination's first sweep past the
# adoption.  That export clears adopted_from, so every later judgement of
# the file (the sweep before an undo, the sweep after a switchover, the
# first sweep of the next database the tenant moves to) no longer knows the
# file's history as the source's lost one.  Each refused it (58P02) on
# every call (hostile review 20 of issue 19); a file the verdict keeps is
# kept, whoever placed it, and only a duplicate of another database is
# refused.
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

move_tenant($b_standby, $c, 't', 'c adopts t from b');
add_tenant_rows($c, 2, 50, 't');
calls_without_errors_ok($c, $export, 'c exports t (its first sweep meets a\'s lost file)');
table_rows_once_in_lake_ok($c, $lake);
$_->stop for ($a_standby, $b_standby, $c);
done_testing();
