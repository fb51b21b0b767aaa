# interactions_cron.sync_method = syncfs makes a group of batches durable with
# one syncfs() of the export directory's file system instead of an fsync() of
# each file and directory (issue 22), and a failure of that syncfs() fails
# every batch of the group, losing nothing; auto, the default, chooses it for
# a lake on a file system of its own.
#
# The shim of t/005 (test/fsync_fail) fails fsync() and syncfs() of the paths
# that contain FSYNC_FAIL_MATCH:
#  1. fsync() failing below the lake's exports/ directory: with syncfs every
#     row is exported exactly once, so nothing there was fsynced; with fsync
#     every tenant fails, so the shim does bite.
#  2. syncfs() of the export root failing: every tenant fails with it, no
#     checkpoint moves, the server stays up, and once the disk behaves the
#     next call exports every row exactly once.
#  3. An export root that does not exist when a worker starts: it fsyncs each
#     path, since a descriptor opened after the files were written could miss
#     a write-back error that another process saw first.
#  4. export_dir a symbolic link moved to another file system during a call:
#     the files placed through it are fsynced, not left to a syncfs() of the
#     file system the worker opened.
#  5. The parents of a root the call creates are fsynced, by every batch.
#  6. auto, the default, fsyncs beside the data directory and uses syncfs on
#     a file system of the lake's own.
#  7. Neither uses syncfs on a file system whose syncfs() is not known to
#     make files durable (FUSE).
use strict;
use warnings;

use File::Temp ();
use FindBin;
use JSON::PP;
use lib $FindBin::RealBin;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $shim = fsync_fail_shim();
my ($node, $export_dir) = node_with_export_root('sync_method', '');

# restart_failing restarts the server with syncs of paths containing $match
# failing (none if undef), and, with $fuse, statfs() saying that paths
# containing it are on FUSE.
sub restart_failing
{
	my ($match, $fuse) = @_;
	$node->stop('fast', fail_ok => 1) if $node->{_pid};
	local $ENV{LD_PRELOAD} = defined $match ? $shim : '';
	local $ENV{FSYNC_FAIL_MATCH} = $match // '';
	local $ENV{FSYNC_FAIL_FUSE_MATCH} = $fuse // '';
	$node->start;
}

my @tenants = ('tenant_a', 'tenant_b', 'tenant_c');
my $rows_added = 0;

# add_rows gives each tenant 36 rows more, 5 minutes apart from $hours_ago
# hours before now, and returns the total.  Each call's rows are newer than
# the last's.
sub add_rows
{
	my ($hours_ago) = @_;
	$node->safe_psql('postgres', qq{
		INSERT INTO interaction_history (tenant_id, created_at, channel, metadata)
		SELECT t, now() - interval '$hours_ago hours' + g * interval '5 minutes',
		       'email', jsonb_build_object('g', g)
		FROM unnest(ARRAY['tenant_a', 'tenant_b', 'tenant_c']) t, generate_series(1, 36) g});
	$rows_added += 3 * 36;
	return $rows_added;
}

# export_with runs a call with sync_method set to $method, after the SET
# statements in $settings, and returns its result.
sub export_with
{
	my ($method, $label, $settings) = @_;
	$settings //= '';
	my ($ret, $stdout, $stderr, $timed_out) = bounded_psql($node, 'postgres',
		"SET interactions_cron.sync_method = '$method'; $settings SELECT interactions_cron.export_interactions()",
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

# 3. A root made by the call itself is fsynced, path by path (by its one
#    worker here; a worker that starts once another made it uses syncfs).
my $new_root = $node->basedir . '/new_root';
restart_failing('/new_root/exports/');
$node->safe_psql('postgres', "ALTER SYSTEM SET interactions_cron.export_dir = '$new_root'");
$node->reload;
add_rows(48);
every_tenant_failed_ok(export_with('syncfs', 'a new root', 'SET interactions_cron.max_workers = 1;'),
	qr/could not fsync .*Input\/output error/, 'a new root');

# 4. export_dir a symbolic link pointed at another file system (a tmpfs) while
#    a worker runs, after it opened the root: a syncfs() of the root it opened
#    does not cover the files placed through the link, so they are fsynced,
#    and fail here.  The worker is held at tenant_a's intent, which a session
#    is inserting, until the link has moved; tenant_b's and tenant_c's batches
#    are written after it.
restart_failing(undef);
is(export_with('fsync', 'before the link')->{ok}, JSON::PP::true, 'before the link: the call is ok');
my $other_file_system = File::Temp::tempdir('sync_method_XXXX', DIR => '/dev/shm', CLEANUP => 1);
isnt((stat $other_file_system)[0], (stat $new_root)[0], 'the link\'s new target is on another file system');
my $link = $node->basedir . '/lake_link';
symlink($new_root, $link) or die "symlink: $!";
restart_failing($other_file_system);
$node->safe_psql('postgres', "ALTER SYSTEM SET interactions_cron.export_dir = '$link'");
$node->reload;
add_rows(24);
my $holder = $node->background_psql('postgres');
$holder->query_safe(q{BEGIN;
	INSERT INTO interactions_cron.export_intents
	  (tenant_id, token, storage, local_root, files, temporary_files, row_count)
	VALUES ('tenant_a', 'held', 'local', '/nowhere', '{}', '{}', 0)});
my $call = $node->background_psql('postgres', on_error_stop => 0);
$call->query_until(qr/started/, q{
	\echo started
	SET interactions_cron.sync_method = syncfs;
	SET interactions_cron.max_workers = 1;
	SELECT interactions_cron.export_interactions();
	\echo finished
});
$node->poll_query_until('postgres', q{
	SELECT count(*) > 0 FROM pg_stat_activity
	WHERE backend_type = 'interactions_cron export worker' AND wait_event_type = 'Lock'})
  or die 'the worker does not wait for tenant_a\'s intent';
symlink($other_file_system, "$link.new") or die "symlink: $!";
rename("$link.new", $link) or die "rename: $!";
$holder->query_safe('ROLLBACK');
$holder->quit;
$call->query_until(qr/finished/, '');
$call->quit;
ok(-d "$other_file_system/exports/tenant_b", 'tenant_b\'s batch was placed through the moved link');
is($node->safe_psql('postgres', q{
		SELECT string_agg(tenant_id || ' ' || status, ', ' ORDER BY tenant_id)
		FROM interactions_cron.export_checkpoints WHERE tenant_id IN ('tenant_b', 'tenant_c')}),
	'tenant_b failed, tenant_c failed',
	'no checkpoint moved past rows placed where the syncfs() did not reach');

# 5. (either method) The directories a call makes to create the export root
#    are made durable in their parents: a failing fsync of the parent of a
#    root the call creates fails its tenants.
my $made_parent = $node->basedir . '/made_parent';
restart_failing("/made_parent\$");
$node->safe_psql('postgres', "ALTER SYSTEM SET interactions_cron.export_dir = '$made_parent/root'");
$node->reload;
add_rows(18);
every_tenant_failed_ok(export_with('fsync', 'a new root\'s parent failing'),
	qr/could not fsync file ".*made_parent": Input\/output error/, 'a new root\'s parent failing');

# And a parent made on the way: every batch fsyncs every directory up to
# "/", so not only the tenant whose worker made it fails, but every one, in
# every call, while that fsync fails (the ninth review of issue 19 found the
# later batches moving their checkpoints: they found the parent there).
restart_failing("/made_parent_2\$");
$node->safe_psql('postgres',
	"ALTER SYSTEM SET interactions_cron.export_dir = '" . $node->basedir . "/made_parent_2/middle/root'");
$node->reload;
add_rows(14);
for my $call (1, 2)
{
	every_tenant_failed_ok(export_with('fsync', "a new parent failing, call $call", 'SET interactions_cron.max_workers = 1;'),
		qr/could not fsync file ".*made_parent_2": Input\/output error/, "a new parent failing, call $call");
}

# 6. auto, the default: fsync with export_dir on the data directory's file
#    system (a syncfs() would wait for the server's own writes there too),
#    syncfs on a file system of its own (a tmpfs here).
my $lake_of_its_own = File::Temp::tempdir('sync_method_auto_XXXX', DIR => '/dev/shm', CLEANUP => 1);
for my $case ([ $node->basedir . '/auto_root', qr/could not fsync .*Input\/output error/ ],
	[ $lake_of_its_own, undef ])
{
	my ($root, $error) = @$case;
	my $label = defined $error ? 'auto beside the data directory' : 'auto on a file system of its own';
	mkdir $root unless -d $root;
	restart_failing("$root/exports/");
	$node->safe_psql('postgres', "ALTER SYSTEM SET interactions_cron.export_dir = '$root'");
	$node->reload;
	add_rows(defined $error ? 10 : 6);
	my $result = export_with('auto', $label);
	if (defined $error)
	{
		every_tenant_failed_ok($result, $error, $label);
	}
	else
	{
		is($result->{ok}, JSON::PP::true, "$label: every tenant is exported, fsyncing nothing below the root")
		  or diag(encode_json($result));
	}
}

# 7. A file system whose syncfs() is not known to make files durable (FUSE,
#    as the shim makes statfs() say of part 6's lake): auto fsyncs each
#    path, and so does syncfs, with a warning, so the failing fsyncs below
#    exports/ fail every tenant; the syncfs() that would succeed is not used.
restart_failing("$lake_of_its_own/exports/", $lake_of_its_own);
$log_offset = -s $node->logfile;
add_rows(4);
every_tenant_failed_ok(export_with('auto', 'auto on FUSE'), qr/could not fsync .*Input\/output error/,
	'auto on FUSE');
ok(!$node->log_contains(qr/sync_method = syncfs is not used/, $log_offset), 'auto on FUSE: no warning');
every_tenant_failed_ok(export_with('syncfs', 'syncfs on FUSE'), qr/could not fsync .*Input\/output error/,
	'syncfs on FUSE');
ok($node->log_contains(qr/sync_method = syncfs is not used for export directory .*\n.*type 0x65735546/, $log_offset),
	'syncfs on FUSE: a warning says it is not used, naming the file system type');

$node->stop('fast', fail_ok => 1);
done_testing();
