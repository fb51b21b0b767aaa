# An fsync() that fails with EIO on a tenant's export files fails that
# tenant alone: the server does not PANIC or restart, the other tenants are
# exported, and once the disk behaves again the next run exports every row
# exactly once.
#
# 1.0 made export files durable with fsync_fname()/durable_rename(), which
# report a failed fsync at data_sync_elevel(ERROR), that is PANIC: one bad
# export directory took the whole server down.
#
# The failure comes from test/fsync_fail/fsync_fail.c, an LD_PRELOAD shim
# that fails fsync()/fdatasync() for paths containing FSYNC_FAIL_MATCH
# (/exports/failing_tenant): failing_tenant meets it first on the fsync of its
# new directories; failing_tenant_files, whose directories exist beforehand,
# on the fsync of its file.
#
# Three times: with the group's fsyncs in flight together through io_uring
# (the shim fails their completions), and one at a time, as on a kernel
# without io_uring (the shim makes io_uring_queue_init() fail) or whose
# io_uring does not say it has fsync (the shim's probe finds nothing).
use strict;
use warnings;

use File::Path qw(make_path);
use FindBin;
use JSON::PP;
use lib $FindBin::RealBin;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $call_timeout = $PostgreSQL::Test::Utils::timeout_default;

my $shim = fsync_fail_shim();

# fsync_error_case MODE: the whole test with fsyncs submitted MODE
# ('together' or 'one_at_a_time').
sub fsync_error_case
{
	my ($mode) = @_;
	# fsync on (node_with_export_root): the extension only makes files durable
	# when the cluster does.
	# restart_after_crash on: after a PANIC (1.0) the checks below still run.
	# sync_method fsync: each path is fsynced (t/043 covers syncfs).
	my ($node, $export_dir) = node_with_export_root("fsync_error_$mode", qq{
	restart_after_crash = on
	interactions_cron.sync_method = fsync
	log_min_messages = debug1
	});
	start_with_failing_fsync($node, $shim, '/exports/failing_tenant',
		no_io_uring => $mode eq 'one_at_a_time', no_probe => $mode eq 'without_the_fsync_probe');

	$node->safe_psql('postgres', 'CREATE EXTENSION interactions_cron');
	$node->safe_psql('postgres', slurp_file('../reference/schema.sql'));
	# Two days of rows for each tenant, so that a batch has more than one file.
	$node->safe_psql('postgres', q{
		INSERT INTO tenants (id, name)
		VALUES ('failing_tenant', 'Failing'), ('failing_tenant_files', 'Failing files'), ('ok_tenant', 'OK');
		INSERT INTO interaction_history (tenant_id, created_at, channel, metadata)
		SELECT t, (date_trunc('day', now() AT TIME ZONE 'UTC') - d * interval '1 day') AT TIME ZONE 'UTC'
		          + g * interval '1 minute',
		       'email', jsonb_build_object('d', d, 'g', g)
		FROM unnest(ARRAY['failing_tenant', 'failing_tenant_files', 'ok_tenant']) t,
		     generate_series(1, 2) d, generate_series(1, 50) g;
	});
	# failing_tenant_files's day directories exist already: no directory is
	# created (and fsynced) for it, the first fsync is its file's.
	for my $day (split /\n/, $node->safe_psql('postgres', q{
		SELECT DISTINCT to_char(created_at AT TIME ZONE 'UTC', '"year="YYYY"/month="MM"/day="DD')
		FROM interaction_history WHERE tenant_id = 'failing_tenant_files'}))
	{
		make_path("$export_dir/exports/failing_tenant_files/interaction_history/$day");
	}
	my @failing_tenants = ('failing_tenant', 'failing_tenant_files');
	my %tenant_rows = map { split /\|/ } split /\n/,
	  $node->safe_psql('postgres', 'SELECT tenant_id, count(*) FROM interaction_history GROUP BY 1');
	my $total_rows = 0;
	$total_rows += $_ for values %tenant_rows;

	is($node->safe_psql('postgres', 'SHOW fsync'), 'on', 'fsync is on');
	my $start_time = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
	# A crash restart keeps the postmaster (and its start time) but replaces
	# every other process, the checkpointer included.
	my $checkpointer_query = q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'};
	my $checkpointer_pid = $node->safe_psql('postgres', $checkpointer_query);
	my $log_offset = -s $node->logfile;

	# The export, with fsync failing for the failing tenants' files and directories.
	my ($ret, $stdout, $stderr, $timed_out) = bounded_psql($node, 'postgres',
		'SELECT interactions_cron.export_interactions()', $call_timeout);
	ok(!$timed_out, 'the export returns');
	is($ret, 0, 'the export call itself succeeds') or diag("stderr: $stderr");

	# The server stayed up: no PANIC, no crash and restart of the backends.
	$node->poll_query_until('postgres', 'SELECT 1', '1')
	  or die 'the server does not answer after the export';
	ok(!$node->log_contains(qr/PANIC/, $log_offset), 'the server log has no PANIC');
	ok(!$node->log_contains(qr/terminated by signal|was terminated|all server processes terminated/, $log_offset),
		'no server process was terminated');
	is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'), $start_time,
		'the postmaster was not restarted');
	is($node->safe_psql('postgres', $checkpointer_query), $checkpointer_pid,
		'the server processes were not reinitialized (same checkpointer)');

	my $result = $ret == 0 && $stdout ne '' ? decode_json($stdout) : {};
	my %tenants = map { $_->{tenantId} => $_ } @{ $result->{tenants} // [] };
	is($result->{ok}, JSON::PP::false, 'the result is not ok: a tenant failed')
	  if $ret == 0;
	for my $tenant (@failing_tenants)
	{
		ok(defined $tenants{$tenant}{error}, "$tenant is reported with an error");
		like($tenants{$tenant}{error} // '', qr/Input\/output error|fsync|EIO/i,
			"${tenant}'s error is the failed fsync");
		is($tenants{$tenant}{exported} // -1, 0, "$tenant exported nothing");
		note("$tenant: " . encode_json($tenants{$tenant} // {}));
	}
	ok(defined $tenants{ok_tenant} && !defined $tenants{ok_tenant}{error}, 'ok_tenant is reported without error')
	  or diag('ok_tenant: ' . encode_json($tenants{ok_tenant} // {}));
	is($tenants{ok_tenant}{exported} // -1, $tenant_rows{ok_tenant}, 'ok_tenant exported its rows');
	is($result->{totalExported} // -1, $tenant_rows{ok_tenant}, 'totalExported counts ok_tenant only');

	lake_rows_once_ok(read_lake($export_dir, under => 'exports/ok_tenant'), $tenant_rows{ok_tenant}, ' of ok_tenant');

	for my $tenant (@failing_tenants)
	{
		is($node->safe_psql('postgres', qq{
				SELECT status, last_error IS NOT NULL, rows_exported
				FROM interactions_cron.export_checkpoints WHERE tenant_id = '$tenant'}),
			'failed|t|0', "${tenant}'s checkpoint is marked failed, with its error, and did not move");
	}
	is($node->safe_psql('postgres', q{
			SELECT status, rows_exported FROM interactions_cron.export_checkpoints WHERE tenant_id = 'ok_tenant'}),
		"ok|$tenant_rows{ok_tenant}", 'ok_tenant\'s checkpoint moved past its rows');

	# Without the shim, the next run exports the failing tenants too: every row in
	# exactly one final file, whatever the failed attempt left behind.
	$node->restart;
	($ret, $stdout, $stderr, $timed_out) = bounded_psql($node, 'postgres',
		'SELECT interactions_cron.export_interactions()', $call_timeout);
	ok(!$timed_out, 'the export without fsync failures returns');
	is($ret, 0, 'the export without fsync failures succeeds') or diag("stderr: $stderr");
	$result = $ret == 0 && $stdout ne '' ? decode_json($stdout) : {};
	is($result->{ok}, JSON::PP::true, 'the export without fsync failures is ok')
	  or diag("result: $stdout");

	lake_rows_once_ok(read_lake($export_dir), $total_rows);
	is($node->safe_psql('postgres',
			q{SELECT sum(rows_exported) FROM interactions_cron.export_checkpoints WHERE status = 'ok'}),
		$total_rows, 'the checkpoints account for every row');

	my %fallback = (
		together => undef,
		one_at_a_time => qr/io_uring is unavailable: Function not implemented/,
		without_the_fsync_probe => qr/io_uring is unavailable: it has no fsync/);
	if (defined $fallback{$mode})
	{
		ok($node->log_contains($fallback{$mode}), "$mode: the workers fsynced one path at a time, and said why");
	}
	else
	{
		ok(!$node->log_contains(qr/io_uring is unavailable/), "$mode: the workers fsynced through io_uring");
	}
	$node->stop('fast', fail_ok => 1);
	return;
}

each_fsync_mode(\&fsync_error_case, qw(together one_at_a_time without_the_fsync_probe));
done_testing();
