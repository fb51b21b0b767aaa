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
#     other still older than the checkpoint's transaction;
#  3. case 1 followed by a VACUUM FREEZE, which freezes the rewritten
#     table's pg_class row: b5171ac took a frozen pg_class row for one
#     older than the checkpoint, and so the rewrite's copies for late rows
#     (hostile review of b5171ac).
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
# rows written by $rows, a statement), runs $maintenance there (a statement,
# or code given the primary), fails over to a standby with the right clock,
# and checks that the new primary exports t1's next row, then nothing, and
# the lake holds each row once.
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
	ref $maintenance ? $maintenance->($primary) : $primary->safe_psql('postgres', $maintenance);
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

my $ten_rows = q{INSERT INTO interaction_history (tenant_id, channel) SELECT 't1', 'sms' FROM generate_series(1, 10)};
my $rewrite_then_update = q{ALTER TABLE interaction_history ALTER COLUMN score TYPE numeric;
	UPDATE interaction_history SET metadata = '{"read": true}'
	WHERE id = (SELECT min(id) FROM interaction_history WHERE tenant_id = 't1')};
failover_exports_on_ok('late_rewrite', $ten_rows, $rewrite_then_update);

# Rows 20 minutes apart around the start of last month: the ones before it
# in the default partition, the others in last month's.
failover_exports_on_ok('late_partition',
	q{INSERT INTO interaction_history (tenant_id, created_at, channel)
	  SELECT 't1', (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month') AT TIME ZONE 'UTC'
	               + g * interval '20 minutes', 'sms'
	  FROM generate_series(-5, 5) g WHERE g <> 0},
	q{ALTER TABLE interaction_history_default SET UNLOGGED;
	  ALTER TABLE interaction_history_default SET LOGGED});

failover_exports_on_ok('late_frozen', $ten_rows, sub {
	my ($primary) = @_;
	$primary->safe_psql('postgres', "$rewrite_then_update; VACUUM FREEZE; CREATE EXTENSION pageinspect;");
	is($primary->safe_psql('postgres', q{SELECT bool_and('HEAP_XMIN_FROZEN' = ANY (f.combined_flags))
		FROM (SELECT DISTINCT tableoid FROM interaction_history WHERE tenant_id = 't1') h
		JOIN pg_class c ON c.oid = h.tableoid,
		LATERAL heap_page_items(get_raw_page('pg_class', (c.ctid::text::point)[0]::int)) i,
		LATERAL heap_tuple_infomask_flags(i.t_infomask, i.t_infomask2) f
		WHERE i.lp = (c.ctid::text::point)[1]::int}),
		't', "late_frozen: the rewritten member's pg_class row is frozen");
});

done_testing();
