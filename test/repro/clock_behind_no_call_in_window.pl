# FAILS on main (hostile review of issue 19, case 5): a clock stepped back
# on one server (here a restart under a clock 12 s behind; an NTP step does
# the same) loses the rows written meanwhile silently when no export call
# happens to run while the clock is still behind the checkpoint (an hourly
# or minutely pg_cron schedule, a skew of seconds).  The hold of item 11 is
# decided per call, from the clock at the call: once the clock has passed
# the checkpoint nothing is held, the rows written meanwhile lie behind the
# checkpoint, the run is ok, nothing warns, and export_status says no rows
# are waiting.  A switchover to a standby whose clock is behind is caught
# (the first claim in the new history looks for such rows:
# t/035_clock_behind_switchover.pl); a restart is no new history, and is not
# looked at.  A clock behind by less than watermark_margin loses nothing
# (t/018_clock_behind.pl).
#
# Run: make prove_installcheck PROVE_TESTS=repro/clock_behind_no_call_in_window.pl
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../t";
use JSON::PP;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

require_libfaketime();

my $timeout = $PostgreSQL::Test::Utils::timeout_default;
my $skew = 12;   # seconds the new primary's clock is behind
my $node = PostgreSQL::Test::Cluster->new('clock_behind_window');
$node->init;
my $lake = $node->basedir . '/lake';
$node->append_conf('postgresql.conf', "interactions_cron.export_dir = '$lake'\n");
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0], timeout => $timeout); }

sql('CREATE EXTENSION interactions_cron');
sql(slurp_file('../reference/schema.sql'));
sql(q{INSERT INTO tenants (id, name) VALUES ('t1', 'T1');
      INSERT INTO interaction_history (tenant_id, channel) SELECT 't1', 'sms' FROM generate_series(1, 10)});
# Exported as soon as the watermark passes them: the checkpoint is recent.
$node->poll_query_until('postgres', q{SELECT max(created_at) < now() - interval '1.2 seconds' FROM interaction_history})
  or die 'the rows did not pass the watermark margin';
my ($caught_up, @problems) = export_until_done(sub { sql('SELECT interactions_cron.export_interactions()') }, 10);
ok($caught_up && !@problems, 'the first rows are exported with the right clock') or diag join("\n", @problems);

# The "new primary": the same data, a clock $skew seconds behind.
$node->stop;
start_with_clock($node, "-${skew}s");
is(sql(q{SELECT last_created_at > now() FROM interactions_cron.export_checkpoints WHERE tenant_id = 't1'}), 't',
	'the checkpoint is ahead of the server\'s clock after the switchover');
sql(q{INSERT INTO interaction_history (tenant_id, channel) SELECT 't1', 'email' FROM generate_series(1, 10)});
is(sql(q{SELECT count(*) FROM interaction_history h JOIN interactions_cron.export_checkpoints c ON c.tenant_id = h.tenant_id
         WHERE h.channel = 'email' AND h.created_at < c.last_created_at}), '10',
	'the rows written now lie behind the checkpoint');

# No call runs in the window (the schedule's next call comes later); the
# clock passes the checkpoint, and the watermark passes the new rows' time.
$node->poll_query_until('postgres',
	q{SELECT (SELECT last_created_at FROM interactions_cron.export_checkpoints WHERE tenant_id = 't1')
	         < now() - interval '1.5 seconds'})
  or die 'the clock did not pass the checkpoint';

my $run = decode_json(sql('SELECT interactions_cron.export_interactions()'));
my $status = sql(q{SELECT status || ' ' || rows_waiting FROM interactions_cron.export_status WHERE tenant_id = 't1'});
ok(!$run->{ok} || $status !~ /^ok 0$/,
	'rows written behind the checkpoint are not passed over in silence (the run is not ok, or export_status shows them)')
  or diag "run: " . encode_json($run) . "; export_status: $status";
($caught_up, @problems) = export_until_done(sub { sql('SELECT interactions_cron.export_interactions()') }, 10);
is(scalar(keys %{ read_lake($lake)->{ids} }), 20, 'every row is in the lake')
  or diag 'the 10 rows written with the slow clock are never exported';

$node->stop;
done_testing();
