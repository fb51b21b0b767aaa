# Hostile review 17 of issue 19, finding 1: past a checkpoint adopted from
# another cluster, every file whose origin named that cluster's system
# identifier was judged, so the files the source placed after the adoption
# (the tenant moving back to it, which operations.md allows) were taken for
# the source's lost history.  Here t moves from a (cluster Y) to b (cluster
# X), X is backed up, b exports, t moves back to a, a exports rows of its
# own, and b is restored from the backup: the restored b removed a's file,
# and a's rows past a's checkpoint left the lake (failed on b75d470).  Now
# the state names the source's origin and the history it released the
# tenant in (tenant_state), the adoption records it on the checkpoint
# (export_checkpoints.adopted_from), and past it only the files the source
# placed in its other histories are judged: a's files of the history it
# released t in stay a's, and the restored b fails t (58P02) instead.
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
my ($a, $b) = tenant_adopted_across_clusters($lake);
my $export = 'SELECT interactions_cron.export_interactions(batch_size => 5)';

move_tenant($b, $a, 't', 't moves back to a');
my @a_rows = destination_exports_on($a, 'a exports rows 16-20 and five rows of its own');
$b->stop;

my $restored = PostgreSQL::Test::Cluster->new('cluster_x_b_restored');
$restored->init_from_backup($b, 'after_adoption');
$restored->start;
my $offset = -s $restored->logfile;
my $result = node_sql($restored, $export);
like($result, qr/another database placed it|already exists/, 'the restored b fails t on a\'s file');
ok(!$restored->log_contains(qr/removing "[^"]*-16\.json"/, $offset), 'the restored b does not remove a\'s file')
  or diag 'it removed the file a placed after t moved back';
my %lines;
read_lake($lake, on_line => sub { $lines{ $_[0]{id} }++ });
my @missing = grep { !$lines{$_} } @a_rows;
is(scalar(@missing), 0, 'every row of a is in the lake') or diag "missing: @missing";
$restored->stop;
$a->stop;
done_testing();
