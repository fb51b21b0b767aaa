# The late-rows check on a history whose tables' pg_class rows were written
# more than 2^31 transactions ago (any history table, or a partition made
# ahead, on a busy server: 2^31 is 25 days at 1000 transactions a second).
# late_rows.c counts a row only when it is newer than the last change of its
# table's definition; in b25d081 it compared them with age(), a 32-bit
# difference that is negative for so old a pg_class row, so no row was ever
# counted and the check was off for good (hostile review of b25d081).  A
# frozen pg_class row is older than any row the check reads.  Here the
# transaction counter is moved on by pg_resetwal (after freezing
# everything) instead of 2^31 transactions; the late row is a backfill
# behind the checkpoint on the new primary, which the check takes like a
# row a clock behind stamped (t/035, t/036).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $timeout = $PostgreSQL::Test::Utils::timeout_default;
my $lake = shared_lake();
my $primary = extension_node('late_xid_wrap', "interactions_cron.export_dir = '$lake'\n", allows_streaming => 1);

sub sql { my ($node, $query) = @_; return $node->safe_psql('postgres', $query, timeout => $timeout); }

# jump_xids freezes every database and moves the next transaction id to $xid.
sub jump_xids
{
	my ($node, $xid) = @_;
	$node->safe_psql($_, 'VACUUM FREEZE', timeout => $timeout) for qw(template0 template1 postgres);
	$node->stop;
	command_ok([ 'pg_resetwal', '-x', $xid, '-D', $node->data_dir ], "pg_resetwal -x $xid");
	my $segment = sprintf('%s/pg_xact/%04X', $node->data_dir, int($xid / 1048576));
	open my $file, '>', $segment or die "$segment: $!";
	print $file "\0" x 262144;
	close $file;
	$node->start;
	return;
}

sql($primary, q{UPDATE pg_database SET datallowconn = true WHERE datname = 'template0'});
jump_xids($primary, 0x60000000);
jump_xids($primary, 0x80200000);
$primary->safe_psql($_, 'VACUUM FREEZE', timeout => $timeout) for qw(template0 template1 postgres);

sql($primary, q{INSERT INTO tenants (id, name) VALUES ('t1', 't1');
	INSERT INTO interaction_history (tenant_id, channel) SELECT 't1', 'sms' FROM generate_series(1, 10)});
wait_rows_past_margin($primary);
my ($caught_up, @problems) = export_until_done(sub { sql($primary, 'SELECT interactions_cron.export_interactions()') }, 10);
ok($caught_up && !@problems, 'the rows are exported') or diag join("\n", @problems);
is(sql($primary, q{SELECT bool_and(pg_catalog.age(c.xmin) < 0) FROM interaction_history h JOIN pg_class c ON c.oid = h.tableoid}),
	't', "the member's pg_class row is more than 2^31 transactions old (its age() is negative)");

my $standby = switch_over_to_standby($primary, 'late_xid_wrap_standby', undef);
# A row written behind the checkpoint after it was set, on the new primary.
backfill_held_ok($standby);

$standby->stop;
done_testing();
