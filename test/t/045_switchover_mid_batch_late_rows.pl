# A switchover to a standby whose clock is behind (t/035's case) that
# interrupts an export: the tenant reaches the new primary with an
# outstanding intent, so its first claim there undoes a batch, and must
# still look for the rows the slow clock stamped behind the checkpoint.
# The ninth hostile review of issue 19 (its reproduction) showed fccd64f
# marking the checkpoint behind its lake at the undo, which handed the
# late-rows check an epoch of no history and cleared position_xid: the rows
# were passed over in silence and the call was ok.  Failed on 70e9d0d.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use JSON::PP;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

require_libfaketime();

my $skew = 30;    # seconds the standby's clock is behind
my $lake = shared_lake();
my $primary = primary_with_exported_tenants('switch_intent', $lake, 't1');

# An export running at the switchover: its batch of t1's next rows is
# placed, not confirmed, when the call is cancelled.
node_sql($primary, q{INSERT INTO interaction_history (tenant_id, channel) SELECT 't1', 'sms' FROM generate_series(1, 5)});
wait_rows_past_margin($primary);
my $offset = -s $primary->logfile;
my $session = $primary->background_psql('postgres', on_error_stop => 0);
$session->query_safe(q{LOAD 'interactions_cron'; SET interactions_cron.debug_fault = 'sleep_after_place'});
$session->query_until(qr/started/, "\\echo started\nSELECT interactions_cron.export_interactions();\n");
ok(wait_for_stalled_group($primary, 'postgres', $offset, 1) >= 1, 'a batch of t1 is placed, not confirmed');
node_sql($primary, q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%export_interactions()%'
	AND backend_type = 'client backend' AND pid <> pg_backend_pid()});
$primary->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'interactions_cron export worker'})
  or die 'the worker did not stop';
end_session($session);
is(node_sql($primary, 'SELECT count(*) FROM interactions_cron.export_intents'), '1', 't1 has an outstanding intent');

my $standby = switch_over_to_standby($primary, 'switch_intent_standby', "-${skew}s");
rows_behind_checkpoint_ok($standby);

my $run = decode_json(node_sql($standby, 'SELECT interactions_cron.export_interactions()'));
like($run->{tenants}[0]{error} // 'no error, exported ' . ($run->{tenants}[0]{exported} // 0),
	qr/^not exported: 10 of the tenant's rows created within a day behind its checkpoint were written after it was set/,
	'the first claim in the new history holds t1 back for the rows behind its checkpoint');
wait_rows_past_margin($standby);
export_until_done(sub { node_sql($standby, 'SELECT interactions_cron.export_interactions()') }, 5);
my %lines;
read_lake($lake, on_line => sub { my ($row) = @_; $lines{ $row->{channel} }++ });
my $status = node_sql($standby, q{SELECT status || ': ' || coalesce(last_error, '') FROM interactions_cron.export_status WHERE tenant_id = 't1'});
ok(($lines{email} // 0) == 10 || $status =~ /written after it was set/,
	'the rows the slow clock stamped are in the lake, or t1 is still held for them')
  or diag "status: $status; lake: " . join(', ', map { "$_ => $lines{$_}" } sort keys %lines);
$standby->stop;
done_testing();
