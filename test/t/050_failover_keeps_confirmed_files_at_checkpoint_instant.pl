# A failover's lake sweep never removes a confirmed file.  The sweep judges
# the files named at or past the checkpoint's instant by their rows, and the
# history table's unique key is (created, id), not the id alone: a
# confirmed batch whose rows share the checkpoint's instant is named at that
# instant, and later rows reusing its ids (at a later instant) made it look
# like a file a lost history had placed past the checkpoint.  After a
# switchover the sweep removed it, and its rows were never written again.
# The case of t/044, reached through a change of history instead of an undo.
# Failed on 43c956e; a file is now judged only when its first row (its
# name) lies past the checkpoint.
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
my $primary = tenant_t_node('sweep_at_checkpoint_instant', $lake, allows_streaming => 1);
my $export = 'SELECT interactions_cron.export_interactions(batch_size => 100)';

# Three rows written by one transaction: one created instant, ids 1001-1003.
node_sql($primary, q{INSERT INTO interaction_history (id, tenant_id, created_at, channel)
	SELECT 1000 + g, 't', date_trunc('day', now()) - interval '2 days', 'sms' FROM generate_series(1, 3) g});
is(decode_json(node_sql($primary, $export))->{totalExported}, 3, 'the first batch: ids 1001-1003 at one instant');

# Later rows reusing ids 1001 and 1002 at a later instant ((id, created_at) unique).
node_sql($primary, q{INSERT INTO interaction_history (id, tenant_id, created_at, channel)
	SELECT 1000 + g, 't', date_trunc('day', now()) - interval '1 day', 'email' FROM generate_series(1, 2) g});

# A switchover (the standby has everything): a new history, whose first claim sweeps.
my $standby = switch_over_to_standby($primary, 'sweep_at_checkpoint_instant_standby', undef);
my $offset = -s $standby->logfile;
my $result = decode_json(node_sql($standby, $export));
is($result->{ok}, JSON::PP::true, 'the first call after the switchover is ok') or diag encode_json($result);
is($result->{totalExported}, 2, 'it exports the two later rows');
ok(!$standby->log_contains(qr/removing .* which holds rows past its tenant's checkpoint/, $offset),
	'the sweep removes no file');

id_channel_lines_once_ok($lake, '1001/sms', '1002/sms', '1003/sms', '1001/email', '1002/email');
$standby->stop;
done_testing();
