# Hostile review 17 of issue 19, finding 3: a checkpoint whose history
# export_histories did not hold was taken for one adopted from another
# cluster, past which that cluster's files were judged.  A pg_dump taken of
# 1.1's objects and restored with a 1.2 build (doc/operations.md "Dump and
# restore") has an empty export_histories, so every restored checkpoint
# looked adopted, and the files of the source cluster's other databases
# were judged and removed.  Here tenant t moved, after the dump, from a to
# b, another database of the same cluster, and the dump is restored into a
# new cluster: b's file (rows 16-20 and five of b's own) was removed and
# b's own rows lost from the lake (failed on b75d470).  Now an adoption is
# recorded on the checkpoint itself (export_checkpoints.adopted_from), so
# a restored checkpoint is never taken for an adopted one: b's file is
# refused (58P02) and stays, whether the dump is of 1.1's objects restored
# with the 1.2 build, of the objects just updated in place (the control),
# or restored onto 1.1's objects and updated there (the variant).
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
my $settings = "interactions_cron.export_dir = '$lake'\ninteractions_cron.max_workers = 1\n";
my $timeout = $PostgreSQL::Test::Utils::timeout_default;
my $src = PostgreSQL::Test::Cluster->new('cluster_s');
$src->init;
$src->append_conf('postgresql.conf', $settings);
$src->start;
sub sq { my ($node, $db, $sql) = @_; return $node->safe_psql($db, $sql, timeout => $timeout); }
my $export = 'SELECT interactions_cron.export_interactions(batch_size => 5)';

sq($src, 'postgres', q{CREATE EXTENSION interactions_cron VERSION '1.1'});
sq($src, 'postgres', slurp_file('../reference/schema.sql'));
sq($src, 'postgres', q{INSERT INTO tenants (id, name) VALUES ('t', 'T')});
add_tenant_rows($src, 20, 0, 't');
is(decode_json(sq($src, 'postgres', $export))->{totalExported}, 5, 'a exports rows 1-5 on 1.1\'s objects');
is(decode_json(sq($src, 'postgres', $export))->{totalExported}, 5, 'a exports rows 6-10 on 1.1\'s objects');
my $dump = PostgreSQL::Test::Utils::tempdir() . '/a.dump';
$src->command_ok([ 'pg_dump', '-Fc', '-d', $src->connstr('postgres'), '-f', $dump ], 'a (1.1) is dumped');
sq($src, 'postgres', 'ALTER EXTENSION interactions_cron UPDATE');
my $dump_updated = PostgreSQL::Test::Utils::tempdir() . '/a_updated.dump';
$src->command_ok([ 'pg_dump', '-Fc', '-d', $src->connstr('postgres'), '-f', $dump_updated ],
	'a, just updated to 1.2 (same checkpoints), is dumped');
is(decode_json(sq($src, 'postgres', $export))->{totalExported}, 5, 'a exports rows 11-15 on 1.2\'s objects');

# b: another database of the same cluster, 1.2.
sq($src, 'postgres', 'CREATE DATABASE b');
sq($src, 'b', 'CREATE EXTENSION interactions_cron');
sq($src, 'b', slurp_file('../reference/schema.sql'));
sq($src, 'b', 'ALTER SEQUENCE interaction_history_id_seq RESTART 100000');
# Moving a tenant to another database, a -> b.
sq($src, 'postgres', q{UPDATE tenants SET status = 'moving' WHERE id = 't'});
my $copied = sq($src, 'postgres', q{COPY (SELECT * FROM interaction_history WHERE tenant_id = 't' ORDER BY id) TO STDOUT});
my $state = sq($src, 'postgres', q{SELECT interactions_cron.tenant_state('t', release => true)});
sq($src, 'b', q{INSERT INTO tenants (id, name, status) VALUES ('t', 't', 'suspended')});
sq($src, 'b', "COPY interaction_history FROM STDIN;\n$copied\n\\.\n");
like(sq($src, 'b', "SELECT interactions_cron.adopt_tenant_state(\$state\$$state\$state\$::jsonb)"), qr/"ok": true/,
	'b adopts t');
sq($src, 'b', q{UPDATE tenants SET status = 'active' WHERE id = 't'});
sq($src, 'postgres', q{DELETE FROM interaction_history WHERE tenant_id = 't'; DELETE FROM tenants WHERE id = 't'});
sq($src, 'b', q{INSERT INTO interaction_history (tenant_id, created_at, channel)
	SELECT 't', date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '2 days'
	          + (20 + g) * interval '7 minutes 0.25 seconds', 'sms'
	FROM generate_series(1, 5) g ORDER BY g});
is(decode_json(sq($src, 'b', 'SELECT interactions_cron.export_interactions()'))->{totalExported}, 10,
	'b exports rows 16-20 and five rows of its own');
my @b_rows = split /\n/, sq($src, 'b', q{SELECT id FROM interaction_history WHERE tenant_id = 't' ORDER BY id});

# The 1.1 dump restored into another cluster, with the 1.2 build.
my $dst = PostgreSQL::Test::Cluster->new('cluster_t');
$dst->init;
$dst->append_conf('postgresql.conf', $settings);
$dst->start;
my $lake_copy = copy_lake($lake);
my $lake_copy2 = copy_lake($lake);
sq($dst, 'postgres', 'CREATE DATABASE a2');
$dst->command_ok([ 'pg_restore', '-d', $dst->connstr('a2'), $dump ], 'the 1.1 dump is restored');
is(sq($dst, 'a2', q{SELECT extversion FROM pg_extension WHERE extname = 'interactions_cron'}), '1.2',
	'the restore created the extension at 1.2');
note 'export_histories rows: ' . sq($dst, 'a2', 'SELECT count(*) FROM interactions_cron.export_histories');
my $offset = -s $dst->logfile;
my $result = sq($dst, 'a2', $export);
note $result;
ok(!$dst->log_contains(qr/removing "[^"]*-100000\.json"|removing "[^"]*-16\.json"/, $offset),
	'a2 does not remove b\'s file') or diag 'it removed b\'s file';
my %lines;
read_lake($lake, on_line => sub { $lines{ $_[0]{id} }++ });
my @missing = grep { !$lines{$_} } @b_rows;
is(scalar(@missing), 0, 'every row of b is in the lake') or diag "missing: @missing";

# Control: the same checkpoints, dumped once updated in place, restored the
# same way on a copy of the lake: b's file is refused (58P02) and stays.
sq($dst, 'postgres', 'CREATE DATABASE a3');
sq($dst, 'postgres', "ALTER DATABASE a3 SET interactions_cron.export_dir = '$lake_copy'");
$dst->command_ok([ 'pg_restore', '-d', $dst->connstr('a3'), $dump_updated ], 'the updated dump is restored');
$result = decode_json(sq($dst, 'a3', $export));
like($result->{tenants}[0]{error} // '', qr/another database placed it/, 'control: a3 fails t on b\'s file')
  or diag explain $result;
%lines = ();
read_lake($lake_copy, on_line => sub { $lines{ $_[0]{id} }++ });
@missing = grep { !$lines{$_} } @b_rows;
is(scalar(@missing), 0, 'control: every row of b is in the lake') or diag "missing: @missing";

# Variant: the 1.1 dump restored onto 1.1's objects, then updated in place
# (ALTER EXTENSION UPDATE): its checkpoints were not adopted here either,
# on another copy of the lake.
sq($dst, 'postgres', 'CREATE DATABASE a4');
sq($dst, 'postgres', "ALTER DATABASE a4 SET interactions_cron.export_dir = '$lake_copy2'");
sq($dst, 'a4', q{CREATE EXTENSION interactions_cron VERSION '1.1'});
# pg_restore reports the CREATE EXTENSION it cannot run, and restores the rest.
$dst->command_checks_all([ 'pg_restore', '-d', $dst->connstr('a4'), $dump ], 1, [qr/^$/],
	[qr/extension "interactions_cron" already exists|errors ignored on restore/], 'the 1.1 dump is restored onto 1.1\'s objects');
sq($dst, 'a4', 'ALTER EXTENSION interactions_cron UPDATE');
note 'a4 export_histories rows after the update: ' . sq($dst, 'a4', 'SELECT count(*) FROM interactions_cron.export_histories');
$result = decode_json(sq($dst, 'a4', $export));
like($result->{tenants}[0]{error} // '', qr/another database placed it/, 'updated: a4 fails t on b\'s file')
  or diag explain $result;
%lines = ();
read_lake($lake_copy2, on_line => sub { $lines{ $_[0]{id} }++ });
@missing = grep { !$lines{$_} } @b_rows;
is(scalar(@missing), 0, 'updated: every row of b is in the lake') or diag "missing: @missing";
$dst->stop;
$src->stop;
done_testing();
