# A batch's undo never removes a file it did not place (a hostile review's
# reproduction; rows 1..10 were lost before the fix).  A tenant moves to a
# database sharing the lake, and the destination's export reaches it before
# adopt_tenant_state (the tenant made active there too early).  Its first
# batch begins with the source's first row, so it takes the name of the
# source's first file.  Before the fix, its intent named that file, the
# batch failed before placing (debug_fault error_before_place, standing in
# for a store down or a full disk), and its undo removed the source's file;
# the adoption then moved the checkpoint past those rows.  Now a batch whose
# checkpoint ends no batch this history confirmed fails with 58P02 before
# its intent names a taken file: the source's files stay, the adoption
# goes on, and every row is in the lake once.
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

sub sql
{
	my ($node, $query) = @_;
	return $node->safe_psql('postgres', $query, timeout => $timeout);
}

my $settings = "interactions_cron.export_dir = '$lake'\ninteractions_cron.max_workers = 1\n";
my $source = new_tenant_database('source', 1, $settings);
my $destination = new_tenant_database('destination', 1_000_000, $settings);

sql($source, q{INSERT INTO tenants (id, name) VALUES ('mover', 'Mover')});
add_tenant_rows($source, 30, 0, 'mover');
export_all($source, 10, 'source');
my %source_files = map { $_ => slurp_file("$lake/$_") } @{ read_lake($lake)->{final_files} };
is(scalar(keys %source_files), 3, 'the source placed three files');

# Steps 1 to 3 of the move; on the destination the tenant is active too early.
sql($source, q{UPDATE tenants SET status = 'moving' WHERE id = 'mover'});
my $rows = sql($source, q{COPY (SELECT * FROM interaction_history WHERE tenant_id = 'mover' ORDER BY id) TO STDOUT});
my $state = sql($source, q{SELECT interactions_cron.tenant_state('mover', release => true)});
sql($destination, q{INSERT INTO tenants (id, name, status) VALUES ('mover', 'Mover', 'active')});
sql($destination, "COPY interaction_history FROM STDIN;\n$rows\n\\.\n");

# The destination's export gets there first, and would fail before placing.
$destination->append_conf('postgresql.conf', "interactions_cron.debug_fault = 'error_before_place'\n");
$destination->reload;
my $first = decode_json(sql($destination, q{SELECT interactions_cron.export_interactions(batch_size => 10)}));
like($first->{tenants}[0]{error} // '', qr/already exists in the lake/,
	'the destination\'s batch fails on the source\'s file name, before naming it in an intent');
$destination->append_conf('postgresql.conf', "interactions_cron.debug_fault = 'none'\n");
$destination->reload;
is_deeply({ map { $_ => slurp_file("$lake/$_") } @{ read_lake($lake)->{final_files} } }, \%source_files,
	'the source\'s three files are all there, as they were');

# Step 4, then the destination exports on.
sql($destination, "SELECT interactions_cron.adopt_tenant_state(\$state\$$state\$state\$::jsonb)");
add_tenant_rows($destination, 5, 60, 'mover');
export_all($destination, 10, 'destination after the adoption');
lake_rows_once_ok(read_lake($lake), sql($destination, 'SELECT count(*) FROM interaction_history'),
	' (moved before its state)');

$source->stop;
$destination->stop;
done_testing();
