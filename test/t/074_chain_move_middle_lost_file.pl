# Code review 19 of issue 19, finding 1: the mirror of t/072.  Tenant t
# moves from c to a (two clusters); a exports it (rows 6-10) while its
# standby does not stream, and a failover to that standby loses the export
# (a's file is in the lake, past the checkpoint a' holds, which still names
# c as its source, since the confirmation that would have cleared it is
# lost too); a' then moves t on to b.  A state that named only the origin
# the checkpoint was adopted from (c) left a's lost file for b to refuse
# (58P02) on every call: a state names this database's origin too, and b
# judges a's lost file, removes it, and exports every row once.
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
my $c = extension_node('cluster_c', $settings);
my ($a, $standby) = primary_with_standby('cluster_a', $settings);
my $b = new_tenant_database('cluster_b', 200000, $settings);
my $export = 'SELECT interactions_cron.export_interactions(batch_size => 5)';

node_sql($c, q{INSERT INTO tenants (id, name) VALUES ('t', 'T')});
add_tenant_rows($c, 10, 0, 't');
is(decode_json(node_sql($c, $export))->{totalExported}, 5, 'c exports rows 1-5');
move_tenant($c, $a, 't', 'a adopts t from c');
export_lost_in_failover_ok($a, $standby, $export, 5, 'a exports rows 6-10, which its standby never gets');
is(node_sql($standby, q{SELECT rows_exported FROM interactions_cron.export_checkpoints WHERE tenant_id = 't'}),
	'5', 'the promoted standby lost a\'s export of rows 6-10');

move_tenant($standby, $b, 't', 'b adopts t from the promoted standby of a');
add_tenant_rows($b, 3, 20, 't');
calls_without_errors_ok($b, $export, 'b exports t');
table_rows_once_in_lake_ok($b, $lake, 'interaction_history');
$_->stop for ($c, $standby, $b);
done_testing();
