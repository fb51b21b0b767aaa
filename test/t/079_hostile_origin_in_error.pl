# A file's origin tag holding bytes this extension never writes (any bytes
# anyone who can write to the lake sets): the sweep refuses the file rather
# than removing it, and the tenant's error names the origin with those bytes
# escaped; so it does a file name whose id is such bytes.  Raw, they made export_checkpoints.last_error text that is not
# valid UTF-8: a LATIN1 client could not read export_status, and pg_restore
# of a dump lost the whole export_checkpoints table (hostile review 22 of
# issue 19).
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
my $node = tenant_t_node('hostile_origin', $lake);
my $export = 'SELECT interactions_cron.export_interactions(batch_size => 5)';
add_tenant_rows($node, 10, 0, 't');
node_sql($node, $export) for 1 .. 2;
my @files = sort split /\n/, `find '$lake/exports/t' -name 'batch-*' -type f`;
is(scalar(@files), 2, 'two files of five rows');

# tag_second_file sets the second file's origin tag to the Python bytes literal $bytes.
sub tag_second_file
{
	my ($bytes) = @_;
	system('python3', '-c', "import os, sys; os.setxattr(sys.argv[1], 'user.interactions_cron.origin', $bytes)",
		$files[1]) == 0
	  or die 'could not set the origin tag';
	return;
}

# As a restore would leave it: the checkpoint back at the end of the first
# file, in a history to sweep, so that the second file is a duplicate.
node_sql($node, q{UPDATE interactions_cron.export_checkpoints SET (last_created_at, last_id, lake_epoch) =
	(SELECT created_at, id::text, 'restored' FROM interaction_history ORDER BY created_at, id OFFSET 4 LIMIT 1)});
tag_second_file(q{b'\xff\xfe "\\\\ hostile'});
my $error = decode_json(node_sql($node, $export))->{tenants}[0]{error} // '';
like($error, qr/an origin of a form this extension never writes: "\\xff\\xfe "\\x5c hostile"/,
	'the file is refused, its origin escaped');
ok(-f $files[1], 'the file stays');
my ($rc, $out, $err) = $node->psql('postgres',
	q{SET client_encoding = 'LATIN1'; SELECT status FROM interactions_cron.export_status});
is($rc, 0, 'a LATIN1 client reads export_status') or diag $err;
my $dump = $node->basedir . '/hostile.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('postgres'), '-f', $dump ], 'pg_dump');
node_sql($node, 'CREATE DATABASE copy');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('copy'), $dump ], 'pg_restore');
is($node->safe_psql('copy', 'SELECT count(*) FROM interactions_cron.export_checkpoints'), '1',
	'the restored database has the checkpoint');

tag_second_file(q{b'99999999999999999999/5/16384/00000000-0000-4000-8000-000000000000'});
like(decode_json(node_sql($node, $export))->{tenants}[0]{error} // '', qr/never writes/,
	'an origin whose system identifier overflows is refused too');
ok(-f $files[1], 'the file stays');

# A name whose escaped id is a byte that is not UTF-8: the id cannot be
# read as the column's type, and the error quoting it is escaped too.
unlink $files[1] or die "unlink: $!";
my $hostile = "$lake/exports/t/interaction_history/year=2099/month=01/day=01";
system('mkdir', '-p', $hostile) == 0 or die 'mkdir';
open my $junk, '>', "$hostile/batch-2099-01-01T00-00-00-000000Z-%ff.json" or die "open: $!";
print $junk "junk\n";
close $junk;
like(decode_json(node_sql($node, $export))->{tenants}[0]{error} // '', qr/"\\xff"/,
	'a name whose id is not UTF-8 fails the sweep, escaped');
($rc, $out, $err) = $node->psql('postgres',
	q{SET client_encoding = 'LATIN1'; SELECT last_error FROM interactions_cron.export_checkpoints});
is($rc, 0, 'a LATIN1 client reads that error') or diag $err;
$node->stop;
done_testing();
