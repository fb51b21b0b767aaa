# Ordinary failovers, every clock right, after maintenance that writes the
# exported rows again with new transaction ids: no row lies behind the
# checkpoint, and the first claim in the new history must not hold the
# tenant back.  The hostile review of 1bd74a5 found both held with 55000 on
# every call; only rows written after their table's last change of
# definition count now (late_rows.c):
#  1. an ALTER TABLE that rewrites the history, then one exported row
#     updated (the update was taken as proof that ids still told order);
#  2. one partition rewritten (SET UNLOGGED, SET LOGGED, as a repack of one
#     partition does) while the tenant's rows of the day lie in two, the
#     other still older than the checkpoint's transaction.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use JSON::PP;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# failover_exports_on_ok exports tenant t1's rows on a primary $name (its
# rows written by $rows, a statement, or ten new ones), runs $maintenance
# there, fails over to a standby with the right clock, and checks that the
# new primary exports t1's next row, then nothing, and the lake holds each
# row once.
sub failover_exports_on_ok
{
	my ($name, $rows, $maintenance) = @_;
	my $lake = shared_lake();
	my $primary = extension_node($name, "interactions_cron.export_dir = '$lake'\n", allows_streaming => 1);
	$primary->safe_psql('postgres', "INSERT INTO tenants (id, name) VALUES ('t1', 't1'); $rows");
	wait_rows_past_margin($primary);
	my ($caught_up, @problems) =
	  export_until_done(sub { $primary->safe_psql('postgres', 'SELECT interactions_cron.export_interactions()') }, 10);
	ok($caught_up && !@problems, "$name: the rows are exported") or diag join("\n", @problems);
	$primary->safe_psql('postgres', $maintenance);
	my $standby = switch_over_to_standby($primary, "${name}_standby", undef);
	$standby->safe_psql('postgres', q{INSERT INTO interaction_history (tenant_id, channel) VALUES ('t1', 'email')});
	wait_rows_past_margin($standby);
	for my $call (1, 2)
	{
		my $run = decode_json($standby->safe_psql('postgres', 'SELECT interactions_cron.export_interactions()'));
		is($run->{tenants}[0]{error} // 'exported ' . $run->{tenants}[0]{exported}, $call == 1 ? 'exported 1' : 'exported 0',
			"$name: call $call after the failover exports on");
	}
	lake_rows_once_ok(read_lake($lake), $standby->safe_psql('postgres', 'SELECT count(*) FROM interaction_history'),
		" ($name)");
	$standby->stop;
	return;
}

failover_exports_on_ok('late_rewrite',
	q{INSERT INTO interaction_history (tenant_id, channel) SELECT 't1', 'sms' FROM generate_series(1, 10)},
	q{ALTER TABLE interaction_history ALTER COLUMN score TYPE numeric;
	  UPDATE interaction_history SET metadata = '{"read": true}'
	  WHERE id = (SELECT min(id) FROM interaction_history WHERE tenant_id = 't1')});

# Rows 20 minutes apart around the start of last month: the ones before it
# in the default partition, the others in last month's.
failover_exports_on_ok('late_partition',
	q{INSERT INTO interaction_history (tenant_id, created_at, channel)
	  SELECT 't1', (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month') AT TIME ZONE 'UTC'
	               + g * interval '20 minutes', 'sms'
	  FROM generate_series(-5, 5) g WHERE g <> 0},
	q{ALTER TABLE interaction_history_default SET UNLOGGED;
	  ALTER TABLE interaction_history_default SET LOGGED});

done_testing();
