# Hostile review 15 of issue 19, finding 2: a source that lost, in an
# asynchronous failover, the confirmation of its last batch of a tenant
# (its file is in the lake, past the checkpoint the promoted standby
# holds), and moved the tenant before exporting it again, left that file
# for the destination to judge, which refused it as another database's:
# the tenant was stuck.  Past an adopted checkpoint, the source's files of
# the histories other than the one it released the tenant in (here the
# lost one) are judged, removed, and their rows written again, once.
# Review 18 played it with a real failover (a streaming standby cut off,
# the primary stopped, the standby promoted), as here, rather than a
# history id drawn again.
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
my ($src, $standby) = primary_with_standby('src_a', $settings);
my $dst = new_tenant_database('dst_b', 100000, $settings);
my $export = 'SELECT interactions_cron.export_interactions(batch_size => 5)';

node_sql($src, q{INSERT INTO tenants (id, name) VALUES ('t', 'T')});
add_tenant_rows($src, 10, 0, 't');
is(decode_json(node_sql($src, $export))->{totalExported}, 5, 'a exports rows 1-5');
export_lost_in_failover_ok($src, $standby, $export, 5, 'a exports rows 6-10, which the standby never gets');
is(node_sql($standby, q{SELECT rows_exported FROM interactions_cron.export_checkpoints WHERE tenant_id = 't'}),
	'5', 'the promoted standby lost the export of rows 6-10');

move_tenant($standby, $dst, 't', 'b adopts the state from the promoted standby');
add_tenant_rows($dst, 3, 20, 't');
my $offset = -s $dst->logfile;
calls_without_errors_ok($dst, $export, 'b exports the tenant');
ok($dst->log_contains(qr/removing "[^"]*\.json"/, $offset), 'b swept the lost file');
table_rows_once_in_lake_ok($dst, $lake, 'interaction_history');
$standby->stop;
$dst->stop;
done_testing();
