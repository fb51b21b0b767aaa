# Same-cluster moves (the source still in the cluster) across failovers
# that lose the source's last export (hostile review 20 of issue 19).  a (the postgres
# database) exports t, loses rows 6-10 in a failover, and moves t to b in
# the same cluster; b must judge a's lost file (3095f75: judged even from a
# database still here).  Then t moves back to a, a loses another export in
# a second failover, and moves t to b again; b must judge that lost file
# too.  Every row of t must be in the lake once, and no call fail t.
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
my ($p, $s1) = primary_with_standby('x_p', $settings);
my $export = 'SELECT interactions_cron.export_interactions(batch_size => 5)';

new_shard_database($p, 'b');
place_sql([ $p, 'b' ], 'ALTER SEQUENCE interaction_history_id_seq RESTART 100000');
$p->wait_for_catchup($s1, 'replay');
node_sql($p, q{INSERT INTO tenants (id, name) VALUES ('t', 'T')});
add_tenant_rows($p, 10, 0, 't');
is(decode_json(node_sql($p, $export))->{totalExported}, 5, 'a exports rows 1-5');
export_lost_in_failover_ok($p, $s1, $export, 5, 'a exports rows 6-10, which the standby never gets');
my $x = $s1;    # the cluster, on its second timeline
move_tenant($x, [ $x, 'b' ], 't', 'b adopts t from a (same cluster, a still here)');
add_tenant_rows([ $x, 'b' ], 3, 20, 't');
calls_without_errors_ok([ $x, 'b' ], $export, 'b exports t past a\'s lost file');
table_rows_once_in_lake_ok([ $x, 'b' ], $lake);

# Back to a, which loses its next export in a second failover, then to b again.
move_tenant([ $x, 'b' ], $x, 't', 'a adopts t back from b');
my $s2 = streaming_standby($x, 'x_s2');
add_tenant_rows($x, 5, 40, 't');
export_lost_in_failover_ok($x, $s2, $export, 5, 'a exports 5 rows, which the second standby never gets');
my $y = $s2;
move_tenant($y, [ $y, 'b' ], 't', 'b adopts t from a again');
add_tenant_rows([ $y, 'b' ], 3, 60, 't');
calls_without_errors_ok([ $y, 'b' ], $export, 'b exports t past a\'s second lost file');
table_rows_once_in_lake_ok([ $y, 'b' ], $lake);
$y->stop;
done_testing();
