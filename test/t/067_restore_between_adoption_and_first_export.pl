# Hostile review 16 of issue 19, finding 3: past a checkpoint adopted from
# another cluster, the source's files are judged (t/064), but only the
# source's: the exemption once covered every database's files.  Tenant t
# moves from cluster Y (shard a) to cluster X (shard b); a backup of X lands
# after the adoption and before b's first export of t, so it holds t's
# checkpoint with a's lake_epoch.  t then moves on from b to cluster Z
# (shard c), which exports rows of its own.  b is restored from that backup,
# keeping its identity and onto a timeline of its own: c's files, another
# database's in a history b never had, fail the tenant (58P02) and stay,
# where they were removed and c's own rows, past c's checkpoint, lost.
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
my ($a, $b) = tenant_adopted_across_clusters($lake);
my $c = new_tenant_database('cluster_z_c', 200000, $settings);
my $export = 'SELECT interactions_cron.export_interactions(batch_size => 5)';

move_tenant($b, $c, 't', 'c adopts t from b');
my @c_rows = destination_exports_on($c, 'c exports rows 16-20 and five rows of its own');
$b->stop;
my $lake_copy = copy_lake($lake);

my $restored = PostgreSQL::Test::Cluster->new('cluster_x_b_restored');
$restored->init_from_backup($b, 'after_adoption');
$restored->start;
my $offset = -s $restored->logfile;
my $error = decode_json(node_sql($restored, $export))->{tenants}[0]{error} // '';
like($error, qr/another database placed it/, 'the restored b fails t on c\'s file') or diag $error;
ok(!$restored->log_contains(qr/removing "[^"]*-16\.json"/, $offset), 'the restored b does not remove c\'s file');
my %lines;
read_lake($lake, on_line => sub { $lines{ $_[0]{id} }++ });
my @missing = grep { !$lines{$_} } @c_rows;
is(scalar(@missing), 0, 'every row of c is in the lake') or diag "missing: @missing";
$restored->stop;

# The same backup restored onto a timeline of its own (a point-in-time
# restore: operations.md says its claims sweep by themselves, no statement
# needed), on a copy of the lake.
my $pitr = PostgreSQL::Test::Cluster->new('cluster_x_b_pitr');
$pitr->init_from_backup($b, 'after_adoption');
$pitr->append_conf('postgresql.conf', "interactions_cron.export_dir = '$lake_copy'\n"
	. "restore_command = 'false'\nrecovery_target = 'immediate'\nrecovery_target_action = 'promote'\n");
$pitr->set_recovery_mode;
$pitr->start;
$pitr->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die 'not promoted';
$error = decode_json(node_sql($pitr, $export))->{tenants}[0]{error} // '';
like($error, qr/another database placed it/, 'PITR: the restored b fails t on c\'s file') or diag $error;
%lines = ();
read_lake($lake_copy, on_line => sub { $lines{ $_[0]{id} }++ });
@missing = grep { !$lines{$_} } @c_rows;
is(scalar(@missing), 0, 'PITR: every row of c is in the lake') or diag "missing: @missing";
$pitr->stop;
$a->stop;
$c->stop;
done_testing();
