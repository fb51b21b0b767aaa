# FAILS on main (a known gap, hostile review 18 of issue 19, finding 1).
# Hostile review 18 of issue 19, finding 1: t/069 with a planned
# switchover of the source between the move away and the move back.  With
# 196b723 the destination recorded the history the source released the
# tenant in (adopted_from), and judged the source's files of its other
# histories past the adopted checkpoint, as its lost ones; the promoted
# standby places its files in a history of its own, so once the tenant
# moved back, a restore of the destination from a backup taken while the
# adopted checkpoint stood removed them, and the rows the source wrote
# after the move back left the lake.  Now the destination leaves every
# other database's files alone (the source swept its lost ones before it
# released the tenant): the restored b fails t (58P02), and removes none.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../t";
use JSON::PP;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $lake = shared_lake();
my ($a, $b) = tenant_adopted_across_clusters($lake, allows_streaming => 1);
my $export = 'SELECT interactions_cron.export_interactions(batch_size => 5)';


# A planned switchover of cluster Y: its standby, promoted, is a from now on.
my $a2 = switch_over_to_standby($a, 'cluster_y_a_promoted', undef);
move_tenant($b, $a2, 't', 't moves back to a (now the promoted standby)');
my @a_rows = destination_exports_on($a2, 'a exports rows 16-20 and five rows of its own');
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
$a2->stop;
done_testing();
