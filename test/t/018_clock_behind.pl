# A switchover to a server whose clock is behind the old primary's (issue
# 19, 5), played by one cluster restarted under libfaketime (Debian's
# faketime package) two minutes in the past: its checkpoints, recorded with
# the right clock, are ahead of its own.  Rows written then get created
# values behind the checkpoints.  The export holds such a tenant back with
# an error (never an ok run that silently skips them), export_status shows
# it, and doc/operations.md's procedure exports the rows once the clock is
# right.  A clock behind by less than watermark_margin loses nothing.
use strict;
use warnings;

use File::Path ();
use FindBin;
use lib $FindBin::RealBin;
use JSON::PP;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

require_libfaketime();

my $timeout = $PostgreSQL::Test::Utils::timeout_default;
my $node = PostgreSQL::Test::Cluster->new('clock_behind');
$node->init;
my $lake = $node->basedir . '/lake';
$node->append_conf('postgresql.conf', "interactions_cron.export_dir = '$lake'\n");
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0], timeout => $timeout); }

sql('CREATE EXTENSION interactions_cron');
sql(slurp_file('../reference/schema.sql'));
sql(q{INSERT INTO tenants (id, name) VALUES ('t1', 'T1');
      INSERT INTO interaction_history (tenant_id, channel) SELECT 't1', 'sms' FROM generate_series(1, 10)});
ok($node->poll_query_until('postgres',
		q{SELECT max(created_at) < now() - interval '2 seconds' FROM interaction_history}),
	'the rows are older than the watermark margin');
my ($caught_up, @problems) = export_until_done(sub { sql('SELECT interactions_cron.export_interactions()') }, 10);
ok($caught_up && !@problems, 'the rows are exported with the right clock') or diag join("\n", @problems);

# The "new primary": the same data, a clock two minutes behind.
$node->stop;
start_with_clock($node, '-120s');
ok(sql(q{SELECT last_created_at > now() FROM interactions_cron.export_checkpoints WHERE tenant_id = 't1'}) eq 't',
	'the checkpoint is ahead of the server\'s clock now');
sql(q{INSERT INTO interaction_history (tenant_id, channel) SELECT 't1', 'email' FROM generate_series(1, 10)});
ok($node->poll_query_until('postgres',
		q{SELECT max(created_at) < now() - interval '2 seconds' FROM interaction_history WHERE channel = 'email'}),
	'the new rows are older than the watermark margin (of the slow clock)');
my $held = decode_json(sql('SELECT interactions_cron.export_interactions()'));
ok(!$held->{ok}, 'the run is not ok');
like($held->{tenants}[0]{error} // '', qr/is ahead of this server's clock/, 'the tenant is held back, and says why');
is($held->{totalExported}, 0, 'nothing is exported for it');
like(sql(q{SELECT status || ': ' || last_error FROM interactions_cron.export_status WHERE tenant_id = 't1'}),
	qr/^held: .*ahead of this server's clock/, 'export_status shows it held');

# The clock is corrected; doc/operations.md's procedure: replay the tenant from
# the first row written behind the checkpoint, having removed its files
# named from then on (here: all of them, the rows written with the slow
# clock lie before every other).
$node->stop;
$node->start;
my $since = sql(q{SELECT min(created_at) FROM interaction_history WHERE channel = 'email'});
is(sql("SELECT count(*) FROM interaction_history WHERE created_at < '$since'"), '0',
	'the rows written with the slow clock come first');
File::Path::remove_tree("$lake/exports/t1");
sql("SELECT interactions_cron.reset_checkpoint('t1', '$since')");
($caught_up, @problems) = export_until_done(sub { sql('SELECT interactions_cron.export_interactions()') }, 10);
ok($caught_up && !@problems, 'the replay exports') or diag join("\n", @problems);
lake_rows_once_ok(read_lake($lake), sql('SELECT count(*) FROM interaction_history'), ' (clock behind)');

# A clock behind by less than watermark_margin loses nothing, even when no
# call runs while it is behind (the case test/repro/clock_behind_no_call_in_window.pl
# shows for a larger error): a checkpoint stays the margin behind the clock
# of the call that set it, so rows written later, on a clock behind by less,
# come after it.
my $margin = 4;    # seconds; the clock will be 3 s behind
$node->append_conf('postgresql.conf', "interactions_cron.watermark_margin = '${margin}s'\n");
$node->reload;
sql(q{INSERT INTO interaction_history (tenant_id, channel) SELECT 't1', 'web' FROM generate_series(1, 10)});
ok($node->poll_query_until('postgres',
		qq{SELECT max(created_at) < now() - interval '$margin.2 seconds' FROM interaction_history}),
	'the rows are just older than the margin');
($caught_up, @problems) = export_until_done(sub { sql('SELECT interactions_cron.export_interactions()') }, 10);
ok($caught_up && !@problems, 'they are exported with the right clock') or diag join("\n", @problems);
$node->stop;
start_with_clock($node, '-3s');
sql(q{INSERT INTO interaction_history (tenant_id, channel) SELECT 't1', 'push' FROM generate_series(1, 10)});
is(sql(q{SELECT count(*) FROM interaction_history h JOIN interactions_cron.export_checkpoints c USING (tenant_id)
         WHERE h.channel = 'push' AND h.created_at <= c.last_created_at}), '0',
	'rows written with a clock 3 s behind come after the checkpoint');
ok($node->poll_query_until('postgres',
		qq{SELECT max(created_at) < now() - interval '$margin.2 seconds' FROM interaction_history}),
	'the new rows are older than the margin (of the slow clock)');
($caught_up, @problems) = export_until_done(sub { sql('SELECT interactions_cron.export_interactions()') }, 10);
ok($caught_up && !@problems, 'the next call exports them') or diag join("\n", @problems);
lake_rows_once_ok(read_lake($lake), sql('SELECT count(*) FROM interaction_history'), ' (clock behind by less than the margin)');

$node->stop;
done_testing();
