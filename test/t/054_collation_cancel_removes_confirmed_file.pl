# Hostile review 12 of issue 19 (its reproduction; failed on 8bdd9ea, passes
# since the comparison takes the id column's collation).
#
# FirstRowPastCheckpoint compares the name's first row with the checkpoint
# as two parameters, ($5, $6) > ($2, $3): text parameters take the
# database's default collation, while the export orders the id column in
# its own (ORDER BY h.id, and HistoryRowsAfter compares h.id with the
# parameter, where the column's collation wins).  With an id column of
# another collation (here ICU's, the database's default "C"), a confirmed
# file at the checkpoint's instant can compare as starting past the
# checkpoint: it is judged, and as in t/044 later rows reusing its ids
# ((id, created_at) is the key) make it look rewritten.  After an ordinary
# cancel, the sweep after the undo removes it, and its rows are never
# written again.
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
my $node = text_history_node('collation_cancel', $lake, '"und-x-icu"', extra => [ '--encoding=UTF8', '--locale=C' ]);
my $export = 'SELECT interactions_cron.export_interactions(batch_size => 100)';

node_sql($node, q{
	-- Two rows of one transaction: one instant; in the column's order b, C (in "C": C, b).
	INSERT INTO text_history (id, tenant_id, created_at, channel)
	SELECT g, 't', date_trunc('day', now()) - interval '2 days', 'sms' FROM unnest(ARRAY['b', 'C']) g;
});
my $first = decode_json(node_sql($node, $export));
is($first->{totalExported}, 2, 'the first batch: b and C at one instant');
is(node_sql($node, q{SELECT last_id FROM interactions_cron.export_checkpoints WHERE tenant_id = 't'}), 'C',
	'its checkpoint is C, its file is named after b');

# A later row reusing id b.
node_sql($node, q{INSERT INTO text_history (id, tenant_id, created_at, channel)
	VALUES ('b', 't', date_trunc('day', now()) - interval '1 day', 'email')});

# A call cancelled while its batch of the later row is placed, not confirmed (as t/044).
cancel_call_after_place($node, $export);

my $log2 = -s $node->logfile;
my $result = decode_json(node_sql($node, $export));
is($result->{ok}, JSON::PP::true, 'the retry is ok') or diag encode_json($result);
ok(!$node->log_contains(qr/removing .* which holds rows past its tenant's checkpoint/, $log2),
	'the sweep after the undo removes no file');

id_channel_lines_once_ok($lake, 'b/sms', 'C/sms', 'b/email');
$node->stop;
done_testing();
