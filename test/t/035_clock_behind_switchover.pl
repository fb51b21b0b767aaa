# A switchover to a standby whose clock is 12 s behind the primary's (issue
# 19, case 5), with no export call while its clock is still behind the
# checkpoint it received (an hourly schedule, a skew of seconds): the rows
# written there until its clock passed the checkpoint lie behind it.  Before
# 1.2 the next call found nothing ahead of the checkpoint, was ok, and
# export_status said no rows were waiting: the rows were passed over in
# silence (test/repro/clock_behind_no_call_in_window.pl, which played the
# switchover by a restart).  The first claim in the new history finds them
# by the order of transactions (late_rows.c) and holds the tenant back,
# naming the first one; doc/operations.md's procedure then exports them.
# A row updated behind the checkpoint on the old primary carries a later
# transaction id too, and must not count.  The standby runs under
# libfaketime (Debian's faketime package).
use strict;
use warnings;

use File::Path;
use FindBin;
use lib $FindBin::RealBin;
use JSON::PP;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

require_libfaketime();

my $skew = 12;    # seconds the standby's clock is behind
my $lake = shared_lake();
my $primary = primary_with_exported_tenants('clock_switchover', $lake, 't1');

# After the export: an update gives the row a later transaction id.
node_sql($primary, q{UPDATE interaction_history SET metadata = '{"read": true}' WHERE id = 3});

my $standby = switch_over_to_standby($primary, 'clock_switchover_standby', "-${skew}s");

# Rows written behind the checkpoint; no call runs in the window, until the
# clock passes the checkpoint and the watermark passes the new rows' time.
rows_behind_checkpoint_ok($standby);

my $first_late = node_sql($standby, q{SELECT min(created_at) FROM interaction_history WHERE channel = 'email'});
for my $call (1, 2)
{
	my $run = decode_json(node_sql($standby, 'SELECT interactions_cron.export_interactions()'));
	ok(!$run->{ok}, "call $call: the run is not ok");
	like($run->{tenants}[0]{error} // '', qr/^not exported: 10 of the tenant's rows created within a day behind its checkpoint were written after it was set, the first at \Q$first_late\E$/,
		"call $call: the tenant is held back: exactly the 10 rows written behind (not the updated one), and the first of them");
	is($run->{totalExported}, 0, "call $call: nothing is exported for it");
}
like(node_sql($standby, q{SELECT status || ': ' || last_error FROM interactions_cron.export_status WHERE tenant_id = 't1'}),
	qr/^failed: not exported: 10 of the tenant's rows created within a day behind its checkpoint were written after it was set/, 'export_status shows it');

# doc/operations.md's procedure, with the `since` the error names: remove
# the tenant's files named from then on (here all: the rows written with the
# slow clock lie before every other) and replay.
is(node_sql($standby, "SELECT count(*) FROM interaction_history WHERE created_at < '$first_late'"), '0',
	'the rows written with the slow clock come first');
File::Path::remove_tree("$lake/exports/t1");
node_sql($standby, "SELECT interactions_cron.reset_checkpoint('t1', '$first_late')");
my ($caught_up, @problems) = export_until_done(sub { node_sql($standby, 'SELECT interactions_cron.export_interactions()') }, 10);
ok($caught_up && !@problems, 'the replay exports') or diag join("\n", @problems);
lake_rows_once_ok(read_lake($lake), node_sql($standby, 'SELECT count(*) FROM interaction_history'), ' (clock behind, switchover)');

$standby->stop;
done_testing();
