# Hostile review 12 of issue 19 (its reproduction; failed on 8bdd9ea, passes
# since the first row's id is read from the file's first line).
#
# A file name holds a shortened id when the row's id is long (FileNameId:
# more than 64 bytes once escaped keeps 40 and a hash).  FirstRowPastCheckpoint
# then judges the name's first row past the checkpoint only by a later
# instant.  A lost export whose first row shares the checkpoint's instant
# (rows of one transaction share now(); a batch boundary falls inside it) is
# never judged: after a failover with asynchronous replication the sweep
# leaves it, the export's next batch starts at the same row, takes its name,
# and the tenant fails with 58P02 on every call (RequireFreeNames, and once
# the history is recorded MarkIfBehindLake, which uses the same test).
# 43c956e judged every file named at or past the checkpoint's instant and
# removed it.
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
my $primary = text_history_node('long_ids_failover', $lake, undef, allows_streaming => 1);
my $export = 'SELECT interactions_cron.export_interactions(batch_size => 3)';

node_sql($primary, q{
	-- Six rows of one transaction: one created instant, long ids.
	INSERT INTO text_history (id, tenant_id, created_at, channel)
	SELECT repeat('x', 70) || lpad(g::text, 2, '0'), 't', date_trunc('day', now()) - interval '2 days', 'sms'
	FROM generate_series(1, 6) g;
});
my $standby = streaming_standby($primary, 'long_ids_failover_standby');

is(decode_json(node_sql($primary, $export))->{totalExported}, 3, 'the first batch: rows 01-03');
cut_off_standby($primary, $standby, 0);
# Exported on the primary only: the standby lacks this checkpoint.
my $lost = decode_json(node_sql($primary, $export));
is($lost->{totalExported}, 3, 'a second batch on the primary: rows 04-06');
diag "the lost export: @{ $lost->{tenants}[0]{files} }";
promoted_calls_ok($primary, $standby, $export);

table_rows_once_in_lake_ok($standby, $lake, 'text_history');
$standby->stop;
done_testing();
