# interactions_cron.sync_method = syncfs makes a group of batches durable with
# one syncfs() of the export directory's file system instead of an fsync() of
# each file and directory (issue 22), and a failure of that syncfs() fails
# every batch of the group, losing nothing.
#
# The shim of t/005 (test/fsync_fail) fails fsync() and syncfs() of the paths
# that contain FSYNC_FAIL_MATCH:
#  1. fsync() failing below the lake's exports/ directory: with syncfs every
#     row is exported exactly once, so nothing there was fsynced; with fsync
#     every tenant fails, so the shim does bite.
#  2. syncfs() of the export root failing: every tenant fails with it, no
#     checkpoint moves, the server stays up, and once the disk behaves the
#     next call exports every row exactly once.
#  3. An export root that does not exist when the call starts: its workers
#     fsync each path, since a descriptor opened after the files were written
#     could miss a write-back error that another process saw first.
use strict;
use warnings;

use FindBin;
use JSON::PP;
use lib $FindBin::RealBin;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $shim = fsync_fail_shim();
my $node = PostgreSQL::Test::Cluster->new('sync_method');
$node->init;
my $export_dir = $node->basedir . '/export_root';
mkdir $export_dir or die "mkdir $export_dir: $!";
$node->append_conf('postgresql.conf', qq{
fsync = on
interactions_cron.export_dir = '$export_dir'
});

# restart_failing restarts the server with syncs of paths containing $match
# failing (none if undef).
sub restart_failing
{
	my ($match) = @_;
	$node->stop('fast', fail_ok => 1) if $node->{_pid};
	local $ENV{LD_PRELOAD} = defined $match ? $shim : '';
	local $ENV{FSYNC_FAIL_MATCH} = $match // '';
	$node->start;
}

my @tenants = ('tenant_a', 'tenant_b', 'tenant_c');
my $rows_added = 0;

# add_rows gives each tenant 36 rows more, 20 minutes apart from
# $hours_ago hours before now (so that a batch often spans two days and two
# files), and returns the total.  Each call's rows are newer than the last's.
sub add_rows
{
	my ($hours_ago) = @_;
	$node->safe_psql('postgres', qq{
		INSERT INTO interaction_history (tenant_id, created_at, channel, metadata)
		SELECT t, now() - interval '$hours_ago hours' + g * interval '20 minutes',
		       'email', jsonb_build_object('g', g)
		FROM unnest(ARRAY['tenant_a', 'tenant_b', 'tenant_c']) t, generate_series(1, 36) g});
	$rows_added += 3 * 36;
	return $rows_added;
}

# export_with runs a call with sync_method set to $method and returns its result.
sub export_with
{
	my ($method, $label) = @_;
	my ($ret, $stdout, $stderr, $timed_out) = bounded_psql($node, 'postgres',
		"SET interactions_cron.sync_method = '$method'; SELECT interactions_cron.export_interactions()",
		$PostgreSQL::Test::Utils::timeout_default);
	ok(!$timed_out && $ret == 0, "$label: the call returns") or diag("stderr: $stderr");
	return $ret == 0 && $stdout ne '' ? decode_json($stdout) : {};
}

# every_tenant_failed_ok checks that every tenant of $result failed with an
# error matching $error and exported nothing, and that no checkpoint moved.
sub every_tenant_failed_ok
{
	my ($result, $error, $label) = @_;
	my %outcomes = map { $_->{tenantId} => $_ } @{ $result->{tenants} // [] };
	for my $tenant (@tenants)
	{
		like($outcomes{$tenant}{error} // '', $error, "$label: $tenant fails with the error");
		is($outcomes{$tenant}{exported} // -1, 0, "$label: $tenant exported nothing");
	}
	is($node->safe_psql('postgres', q{
			SELECT count(*) FROM interactions_cron.export_checkpoints
			WHERE status = 'failed' AND last_error IS NOT NULL}),
		scalar(@tenants), "$label: every checkpoint is marked failed and stayed");
}

# exported_once_ok checks that a call succeeded and that the lake holds
# every row added so far exactly once.
sub exported_once_ok
{
	my ($result, $label) = @_;
	is($result->{ok}, JSON::PP::true, "$label: the call is ok")
	  or diag(encode_json($result));
	lake_rows_once_ok(read_lake($export_dir), $rows_added, " ($label)");
}

restart_failing('/export_root/exports/');
$node->safe_psql('postgres', 'CREATE EXTENSION interactions_cron');
$node->safe_psql('postgres', slurp_file('../reference/schema.sql'));
$node->safe_psql('postgres', q{
	INSERT INTO tenants (id, name) SELECT t, t FROM unnest(ARRAY['tenant_a', 'tenant_b', 'tenant_c']) t});

# 1. No fsync below exports/ with syncfs; every one fails with fsync.
add_rows(120);
exported_once_ok(export_with('syncfs', 'syncfs with fsync failing'), 'syncfs with fsync failing');
add_rows(96);
every_tenant_failed_ok(export_with('fsync', 'fsync failing'), qr/could not fsync .*Input\/output error/,
	'fsync failing');

restart_failing(undef);
exported_once_ok(export_with('fsync', 'the disk behaves'), 'the disk behaves');

# 2. syncfs() of the export root failing.
restart_failing('/export_root');
my $start_time = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
my $log_offset = -s $node->logfile;
add_rows(72);
every_tenant_failed_ok(export_with('syncfs', 'syncfs failing'),
	qr/could not sync the file system of export directory .*Input\/output error/, 'syncfs failing');
ok(!$node->log_contains(qr/PANIC|terminated by signal/, $log_offset), 'syncfs failing: no PANIC, no crash');
is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'), $start_time,
	'syncfs failing: the server was not restarted');

restart_failing(undef);
exported_once_ok(export_with('syncfs', 'syncfs again'), 'syncfs again');

# 3. A root made by the call itself is fsynced, path by path.
my $new_root = $node->basedir . '/new_root';
restart_failing('/new_root/exports/');
$node->safe_psql('postgres', "ALTER SYSTEM SET interactions_cron.export_dir = '$new_root'");
$node->reload;
add_rows(48);
every_tenant_failed_ok(export_with('syncfs', 'a new root'), qr/could not fsync .*Input\/output error/,
	'a new root');

$node->stop('fast', fail_ok => 1);
done_testing();
