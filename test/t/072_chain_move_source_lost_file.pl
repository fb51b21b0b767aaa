# Hostile review 18 of issue 19, finding 3: a tenant moved twice (c -> a
# -> b, three clusters) before it is exported again, where c lost its last
# export of the tenant in a real failover (c's file of rows 6-10 is in the
# lake, past the checkpoint the promoted standby hands over), and a moves
# it on before exporting it.  With 196b723, a's state named a's origin
# only, and b refused c's lost file (58P02) on every call.  A state taken
# from a checkpoint not exported since its adoption names the origin it
# was adopted from: b judges c's lost file, and exports every row once.
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
my ($c, $standby) = primary_with_standby('cluster_c', $settings);
my $a = new_tenant_database('cluster_a', 100000, $settings);
my $b = new_tenant_database('cluster_b', 200000, $settings);
my $export = 'SELECT interactions_cron.export_interactions(batch_size => 5)';

node_sql($c, q{INSERT INTO tenants (id, name) VALUES ('t', 'T')});
add_tenant_rows($c, 10, 0, 't');
is(decode_json(node_sql($c, $export))->{totalExported}, 5, 'c exports rows 1-5');
export_lost_in_failover_ok($c, $standby, $export, 5, 'c exports rows 6-10, which its standby never gets');

move_tenant($standby, $a, 't', 'a adopts t from the promoted standby of c');
move_tenant($a, $b, 't', 'b adopts t from a, which never exported it');
add_tenant_rows($b, 3, 20, 't');
calls_without_errors_ok($b, $export, 'b exports t');
table_rows_once_in_lake_ok($b, $lake, 'interaction_history');
$standby->stop;
$a->stop;
$b->stop;
done_testing();
