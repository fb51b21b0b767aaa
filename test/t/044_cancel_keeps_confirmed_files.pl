# A cancel mid-batch never removes a confirmed file.  The unique key of the
# history table is (created, id), not the id alone (the reference schema's
# key is PRIMARY KEY (id, created_at)), and the lake sweep judges a file by
# the ids it holds past the checkpoint.  The ninth hostile review of issue
# 19 (its reproduction) showed fccd64f sweeping after every undone batch:
# after an ordinary cancel, a confirmed file whose rows share the
# checkpoint's instant was removed because later rows reused its ids, and
# its rows were never written again.  Failed on 70e9d0d; the sweep runs
# only at a change of history or a taken name again.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use JSON::PP;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $timeout = $PostgreSQL::Test::Utils::timeout_default;
my $lake = shared_lake();
my $node = tenant_t_node('sweep_after_cancel', $lake);
sub sql { my ($q) = @_; return $node->safe_psql('postgres', $q, timeout => $timeout); }
my $export = 'SELECT interactions_cron.export_interactions(batch_size => 100)';

# Three rows written by one transaction: one created instant, ids 1001-1003.
sql(q{INSERT INTO interaction_history (id, tenant_id, created_at, channel)
	SELECT 1000 + g, 't', date_trunc('day', now()) - interval '2 days', 'sms' FROM generate_series(1, 3) g});
is(decode_json(sql($export))->{totalExported}, 3, 'the first batch: ids 1001-1003 at one instant');

# Later rows reusing ids 1001 and 1002 at a later instant ((id, created_at) unique).
sql(q{INSERT INTO interaction_history (id, tenant_id, created_at, channel)
	SELECT 1000 + g, 't', date_trunc('day', now()) - interval '1 day', 'email' FROM generate_series(1, 2) g});

# A call cancelled while its batch of the later rows is placed, not confirmed.
cancel_call_after_place($node, $export);

# The next call undoes it, and (fccd64f) sweeps.
my $log2 = -s $node->logfile;
my $result = decode_json(sql($export));
is($result->{ok}, JSON::PP::true, 'the retry is ok') or diag encode_json($result);
my $removed = $node->log_contains(qr/removing .* which holds rows past its tenant's checkpoint/, $log2);
diag 'the sweep logged a removal' if $removed;

id_channel_lines_once_ok($lake, '1001/sms', '1002/sms', '1003/sms', '1001/email', '1002/email');
$node->stop;
done_testing();
