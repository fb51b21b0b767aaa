# Rows a backfill (as t/041; a clock behind gives the same) writes behind
# the checkpoint on the new primary after a switchover hold the tenant
# back, whatever happened to the tables they lie in (hostile review of
# 01a2685, which passed over both in silence):
#  1. a GRANT after the late row on a partition where the tenant had no
#     other row (a row stamped behind a partition boundary, here into the
#     default partition): a table that still has the storage it was created
#     with was never rewritten, whatever its pg_class row says;
#  2. the history rewritten (ALTER TABLE ... TYPE) on the old primary after
#     the export, before the switchover: no row of the window is older than
#     the checkpoint's transaction or updated, but the rewrite's copies show
#     that ids still tell the order.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# Case 1.
{
	my $lake = shared_lake();
	my $primary = extension_node('late_boundary', "interactions_cron.export_dir = '$lake'\n", allows_streaming => 1);
	$primary->safe_psql('postgres', q{INSERT INTO tenants (id, name) VALUES ('t1', 't1');
		INSERT INTO interaction_history (tenant_id, created_at, channel)
		SELECT 't1', (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month') AT TIME ZONE 'UTC'
		             + g * interval '5 minutes', 'sms'
		FROM generate_series(1, 10) g});
	my ($caught_up, @problems) =
	  export_until_done(sub { $primary->safe_psql('postgres', 'SELECT interactions_cron.export_interactions()') }, 10);
	ok($caught_up && !@problems, 'late_boundary: the rows are exported') or diag join("\n", @problems);
	my $standby = switch_over_to_standby($primary, 'late_boundary_standby', undef);
	# Ten minutes before last month's partition starts: the default
	# partition, where t1 has no other row; 60 minutes behind the checkpoint.
	$standby->safe_psql('postgres', q{INSERT INTO interaction_history (tenant_id, created_at, channel)
		SELECT 't1', (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month') AT TIME ZONE 'UTC'
		             - interval '10 minutes', 'email'});
	is($standby->safe_psql('postgres', q{SELECT tableoid::regclass FROM interaction_history WHERE channel = 'email'}),
		'interaction_history_default', 'late_boundary: the late row lies in the default partition');
	like(first_tenant_outcome($standby), $ONE_LATE_ROW_HELD, 'late_boundary: held before the GRANT (control)');
	$standby->safe_psql('postgres', q{CREATE ROLE analytics; GRANT SELECT ON ALL TABLES IN SCHEMA public TO analytics});
	like(first_tenant_outcome($standby), $ONE_LATE_ROW_HELD, 'late_boundary: still held after a GRANT, which rewrites nothing');
	$standby->stop;
}

# Case 2.
{
	my $lake = shared_lake();
	my $primary = primary_with_exported_tenants('late_old_rewrite', $lake, 't1');
	$primary->safe_psql('postgres', q{ALTER TABLE interaction_history ALTER COLUMN score TYPE numeric});
	my $standby = switch_over_to_standby($primary, 'late_old_rewrite_standby', undef);
	backfill_held_ok($standby);
	$standby->stop;
}

done_testing();
