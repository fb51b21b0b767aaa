# Hostile review 13 of issue 19: the lake sweep after an asynchronous
# failover, for ids longer than 64 bytes (escaped), which a file name holds
# only shortened (your-schema.md: 40 bytes, "~", 16 hex digits of a
# SHA-256).  FirstRowPastCheckpoint then compares the name's created
# instant only ("created > checkpoint's"), so a lost file whose first row
# shares the checkpoint's instant (thousands of rows of one transaction
# share now(), your-schema.md) is never taken for one past the checkpoint,
# and never judged by its rows; MarkIfBehindLake judges the same way.
#
# Three tenants, 30 rows each at one created instant; one batch of 10
# confirmed everywhere, then the standby cut off and two batches exported
# on the old primary (lost), then the standby promoted:
#   a: ids of 70 bytes, nothing else: its first batch on the new primary
#      takes the lost file's name, and fails 58P02 on every call for ever
#      (the file is judged to hold no row past the checkpoint);
#   b: ids of 70 bytes, its row 11 erased on the new primary before the
#      first export (issue 19, 3: a lost file starting with a row the new
#      primary lacks): the lost files stay and rows 12-30 are written again;
#   c: the same as b with short ids: the control, which held.
# Failed on 8e034da; passes since the first row's id is read from the
# file's first line.
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
my ($primary, $standby) = primary_with_standby('long_ids',
	"interactions_cron.export_dir = '$lake'\ninteractions_cron.max_workers = 1\n");
my $export = 'SELECT interactions_cron.export_interactions(batch_size => 10)';

node_sql($primary, q{
	ALTER TABLE interaction_history ALTER COLUMN id DROP DEFAULT, ALTER COLUMN id TYPE text;
	INSERT INTO tenants (id, name) VALUES ('a', 'A'), ('b', 'B'), ('c', 'C');
	INSERT INTO interaction_history (id, tenant_id, created_at, channel)
	SELECT CASE WHEN t = 'c' THEN t || '-' || lpad(g::text, 4, '0')
	            ELSE t || '-' || repeat('x', 64) || lpad(g::text, 4, '0') END,
	       t, date_trunc('day', now()) - interval '2 days', 'sms'
	FROM unnest(ARRAY['a', 'b', 'c']) t, generate_series(1, 30) g});
is(decode_json(node_sql($primary, $export))->{totalExported}, 30, 'a first batch of 10 rows of each tenant');
like(join(' ', @{ read_lake($lake)->{final_files} }), qr/~/, 'the files of a and b have shortened ids in their names');

# Asynchronous replication: the standby has every row and the first
# checkpoints, and none of what follows.
cut_off_standby($primary, $standby, 0);
is(decode_json(node_sql($primary, $export))->{totalExported}, 30, 'lost export 1: rows 11-20 of each tenant');
is(decode_json(node_sql($primary, $export))->{totalExported}, 30, 'lost export 2: rows 21-30 of each tenant');
$primary->stop('immediate');
$standby->promote;

# Row 11 of b and of c erased on the new primary before its first export.
node_sql($standby, q{DELETE FROM interaction_history WHERE tenant_id IN ('b', 'c') AND id LIKE '%0011'});

my %errors;
for my $call (1 .. 4)
{
	my $run = decode_json(node_sql($standby, $export));
	for my $tenant (@{ $run->{tenants} })
	{
		push @{ $errors{ $tenant->{tenantId} } }, $tenant->{error} if $tenant->{error};
	}
}
is(scalar(@{ $errors{a} // [] }), 0, 'a exports on after the failover')
  or diag "a failed on every call: $errors{a}[-1]";
is(scalar(@{ $errors{c} // [] }), 0, 'c exports on after the failover');

for my $tenant (qw(a b c))
{
	my %lines;
	read_lake($lake, under => "exports/$tenant", on_line => sub { $lines{ $_[0]{id} }++ });
	my @table = split /\n/, node_sql($standby, "SELECT id FROM interaction_history WHERE tenant_id = '$tenant'");
	my @missing = grep { !$lines{$_} } @table;
	my @twice = map { substr($_, -4) } grep { $lines{$_} > 1 } sort keys %lines;
	is(scalar(@missing), 0, "$tenant: every row of the new primary is in the lake") or diag "missing: @missing";
	is(scalar(@twice), 0, "$tenant: no row is in two files") or diag "rows twice: @twice";
}
$standby->stop;
done_testing();
