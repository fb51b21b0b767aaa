# Hostile review 16 of issue 19, finding 1: the other-database refusal
# (RefuseAnotherDatabasesFile) told "this database's" files by the history
# id alone, and two databases of one cluster that descend from one database
# (CREATE DATABASE ... TEMPLATE, or a dump restored into the same cluster)
# held the same export_histories row for the cluster's epoch, so both
# placed files under one id, and each took the other's for its own.  Now
# each row records the origin prefix (system identifier, database and
# extension OIDs) its id was drawn under, a database of another prefix
# draws an id of its own, and a file is this database's only if its
# (prefix, id) pair is a row's, and never while the database that placed it
# is still in the cluster.
#
# Scenario 1 (the review's): shard b is cloned from shard a with TEMPLATE
# (operations.md: release in the clone the tenants it must not export
# before its first call), tenant t later moves from a to b ("Moving a
# tenant to another database"), and a is then restored from a dump taken
# before the move into the same cluster.  The restored a has t active at
# its old checkpoint; its sweep meets b's files, which name b's own history
# id, not one the restored a holds: they are refused (58P02, as t/063
# expects), and nothing is removed.  Before, b's files named a's id, were
# judged, and removed: b's own rows, past b's checkpoint, left the lake.
#
# Scenario 2, the other way round: shard d is cloned from shard c, tenant v
# moves from d to c, and d is restored from a dump taken before the move.
# The restored d holds c's history row (d inherited it from its template),
# so c's files name a (prefix, id) pair it holds; but c is still in the
# cluster, exporting in that history: its files are left alone too.
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
my $node = started_node('one_cluster', "interactions_cron.export_dir = '$lake'\ninteractions_cron.max_workers = 1\n");
sub sq { my ($db, $sql) = @_; return place_sql([ $node, $db ], $sql); }

my $export = 'SELECT interactions_cron.export_interactions(batch_size => 5)';

# restored_leaves_alone_ok restores $dump into the new database $db, runs
# its first export, and checks that it fails $tenant on the other
# databases' files and removes none of them, and that every row of @rows
# (the destination's) is still in the lake.
sub restored_leaves_alone_ok
{
	my ($db, $dump, $tenant, @rows) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->command_ok([ 'pg_restore', '-d', $node->connstr($db), $dump ], "the dump is restored into $db");
	my $offset = -s $node->logfile;
	my $result = decode_json(sq($db, $export));
	my ($outcome) = grep { $_->{tenantId} eq $tenant } @{ $result->{tenants} };
	like($outcome->{error} // '', qr/another database placed it|already exists/,
		"$db leaves the other databases' files alone and fails $tenant (as t/063)")
	  or diag explain $result;
	ok(!$node->log_contains(qr/removing "[^"]*\/$tenant\/interaction_history/, $offset),
		"$db removes none of $tenant\'s files")
	  or diag 'it removed another database\'s file';
	my %lines;
	read_lake($lake, on_line => sub { $lines{ $_[0]{id} }++ if $_[1] =~ m{^exports/\Q$tenant\E/} });
	my @missing = grep { !$lines{$_} } @rows;
	is(scalar(@missing), 0, "every row of $tenant\'s destination is in the lake") or diag "missing: @missing";
}

my $histories = q{SELECT count(*) || ' ' || count(DISTINCT history_id) FROM interactions_cron.export_histories};
my $own_id = q{SELECT history_id FROM interactions_cron.export_histories
	WHERE origin_prefix = (SELECT s.system_identifier || '/' || d.oid || '/' || e.oid
	                       FROM pg_control_system() s, pg_database d, pg_extension e
	                       WHERE d.datname = current_database() AND e.extname = 'interactions_cron')};

# Scenario 1.
new_shard_database($node, 'a', 't', 'u');
add_tenant_rows([ $node, 'a' ], 20, 0, 't');
is(decode_json(sq('a', $export))->{totalExported}, 5, 'a exports rows 1-5');
clone_shard_database($node, 'a', 'b', 't', 100000);
is(sq('b', $histories), '2 2', 'b holds a\'s history row, and the id of its own it drew to release t');

is(decode_json(sq('a', $export))->{totalExported}, 5, 'a exports rows 6-10');
my $dump_a = PostgreSQL::Test::Utils::tempdir() . '/a.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('a'), '-f', $dump_a ], 'a is dumped');
is(decode_json(sq('a', $export))->{totalExported}, 5, 'a exports rows 11-15 after the dump');
move_tenant([ $node, 'a' ], [ $node, 'b' ], 't', 'b adopts t');
add_tenant_rows([ $node, 'b' ], 5, 20, 't');
is(decode_json(sq('b', 'SELECT interactions_cron.export_interactions()'))->{totalExported}, 10,
	'b exports rows 16-20 and five rows of its own');
is(sq('b', $histories), '2 2', 'and draws no other at its first export');
isnt(sq('b', $own_id), sq('a', $own_id), 'b\'s id is not a\'s');
my @b_rows = split /\n/, sq('b', q{SELECT id FROM interaction_history WHERE tenant_id = 't' ORDER BY id});
# a is restored from its dump into the same cluster (a replaces the old a).
restored_leaves_alone_ok('a_restored', $dump_a, 't', @b_rows);
isnt(sq('a_restored', $own_id), sq('a', $own_id), 'the restored a drew a history id of its own');

# Scenario 2: the restored database descends from the destination.
new_shard_database($node, 'c', 'w');
add_tenant_rows([ $node, 'c' ], 5, 0, 'w');
is(decode_json(sq('c', $export))->{totalExported}, 5, 'c exports w');
clone_shard_database($node, 'c', 'd', 'w', 200000);
sq('d', q{INSERT INTO tenants (id, name) VALUES ('v', 'V')});
add_tenant_rows([ $node, 'd' ], 20, 0, 'v');
is(decode_json(sq('d', $export))->{totalExported}, 5, 'd exports rows 1-5 of v');
is(decode_json(sq('d', $export))->{totalExported}, 5, 'd exports rows 6-10 of v');
my $dump_d = PostgreSQL::Test::Utils::tempdir() . '/d.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('d'), '-f', $dump_d ], 'd is dumped');
is(decode_json(sq('d', $export))->{totalExported}, 5, 'd exports rows 11-15 of v after the dump');
move_tenant([ $node, 'd' ], [ $node, 'c' ], 'v', 'c adopts v');
add_tenant_rows([ $node, 'c' ], 5, 20, 'v');
is(decode_json(sq('c', 'SELECT interactions_cron.export_interactions()'))->{totalExported}, 10,
	'c exports rows 16-20 of v and five rows of its own');
my @c_rows = split /\n/, sq('c', q{SELECT id FROM interaction_history WHERE tenant_id = 'v' ORDER BY id});
restored_leaves_alone_ok('d_restored', $dump_d, 'v', @c_rows);

$node->stop;
done_testing();
