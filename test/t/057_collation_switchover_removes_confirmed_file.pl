# Hostile review 12 of issue 19 (its reproduction; failed on 8bdd9ea, passes
# since the comparison takes the id column's collation).
#
# t/054's collation mismatch (FirstRowPastCheckpoint compares two text
# parameters, in the database's default collation, not the id column's),
# reached through a plain switchover instead of a cancel, as t/050: the
# first claim in the new history sweeps, judges the confirmed file at the
# checkpoint's instant as starting past it, and removes it, since a later
# row reuses one of its ids.  Its rows are never written again.
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
my $primary = text_history_node('collation_switchover', $lake, '"und-x-icu"',
	allows_streaming => 1, extra => [ '--encoding=UTF8', '--locale=C' ]);
my $export = 'SELECT interactions_cron.export_interactions(batch_size => 100)';

node_sql($primary, q{
	INSERT INTO text_history (id, tenant_id, created_at, channel)
	SELECT g, 't', date_trunc('day', now()) - interval '2 days', 'sms' FROM unnest(ARRAY['b', 'C']) g;
});
is(decode_json(node_sql($primary, $export))->{totalExported}, 2, 'the first batch: b and C at one instant');
node_sql($primary, q{INSERT INTO text_history (id, tenant_id, created_at, channel)
	VALUES ('b', 't', date_trunc('day', now()) - interval '1 day', 'email')});

my $standby = switch_over_to_standby($primary, 'collation_switchover_standby', undef);
my $result = decode_json(node_sql($standby, $export));
is($result->{ok}, JSON::PP::true, 'the first call after the switchover is ok') or diag encode_json($result);

id_channel_lines_once_ok($lake, 'b/sms', 'C/sms', 'b/email');
$standby->stop;
done_testing();
