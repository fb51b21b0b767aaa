# Hostile review 15 of issue 19, finding 2: a checkpoint adopted from
# another cluster keeps the source's history (lake_epoch), and the
# destination's first claim sweeps the files the source placed past it
# (operations.md, "Moving a tenant to another database").  The source here
# lost the confirmation of its last batch of the tenant (an asynchronous
# failover: its checkpoint row stands where it stood before that batch, the
# batch's file is in the lake; played by putting the row back), and the
# tenant moved before the source exported it again.  The file is another
# database's, in a history the destination has never had: refusing it, as
# past a checkpoint the destination recorded itself, stuck the tenant for
# ever.  Past an adopted checkpoint, it is judged, removed, and its rows
# written again, once: it names the source's origin, in a history other
# than the one the source released the tenant in.
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
my $src = extension_node('src_a', $settings);
my $dst = new_tenant_database('dst_b', 100000, $settings);
my $export = 'SELECT interactions_cron.export_interactions(batch_size => 5)';

node_sql($src, q{INSERT INTO tenants (id, name) VALUES ('t', 'T')});
add_tenant_rows($src, 10, 0, 't');
is(decode_json(node_sql($src, $export))->{totalExported}, 5, 'a exports rows 1-5');
node_sql($src, q{CREATE TABLE saved AS SELECT * FROM interactions_cron.export_checkpoints WHERE tenant_id = 't'});
is(decode_json(node_sql($src, $export))->{totalExported}, 5, 'a exports rows 6-10');
node_sql($src, q{DELETE FROM interactions_cron.export_checkpoints WHERE tenant_id = 't';
                 INSERT INTO interactions_cron.export_checkpoints SELECT * FROM saved});
# The promoted standby exports in a history of its own: played by drawing
# the history's id again.  The file of the lost history is the one the
# destination judges (PositionAdoptedFrom); the source's files of the
# history it releases the tenant in are not.
node_sql($src, q{UPDATE interactions_cron.export_histories SET history_id = gen_random_uuid()});

move_tenant($src, $dst, 't', 'b adopts the state');
add_tenant_rows($dst, 3, 20, 't');
for my $call (1 .. 2)
{
	my $result = decode_json(node_sql($dst, $export));
	is($result->{tenants}[0]{error} // '', '', "call $call at b: the tenant exports");
}
table_rows_once_in_lake_ok($dst, $lake, 'interaction_history');
$src->stop;
$dst->stop;
done_testing();
