# A path whose fsync failed fails every batch of the group whose file it
# leads to, and is not fsynced again: with a disk that reports a write-back
# error once (the shim's FSYNC_FAIL_ONCE), a second fsync() of the same
# directory succeeds although the entries the failed write-back held may be
# lost.  Two new tenants share <export_dir>/exports in one group (one
# worker); its first fsync fails.  Neither checkpoint may move, whether the
# group's fsyncs are in flight together (io_uring) or one at a time (io_uring
# refused, as by a container runtime's seccomp profile).  The tenth hostile
# review's reproduction: one at a time, it failed on a2e6b02 (the second
# tenant's checkpoint moved), since only the io_uring pass recorded failures.
# And together with an export_dir so long that "<export_dir>/exports" is
# MAXPGPATH (1024) bytes or more, which the record of synced paths, keyed by
# MAXPGPATH bytes, left out (also failed on a2e6b02).
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

sub shared_directory_case
{
	my ($mode) = @_;
	my ($node, $export_dir) = node_with_export_root("fail_once_$mode", qq{
	interactions_cron.sync_method = fsync
	interactions_cron.max_workers = 1
	log_min_messages = debug1
	}, export_dir_length => $mode eq 'together_long_path' ? 1020 : 0);
	start_with_failing_fsync($node, $shim, "$export_dir/exports\$",
		once => 1, no_io_uring => $mode eq 'one_at_a_time');
	$node->safe_psql('postgres', 'CREATE EXTENSION interactions_cron');
	$node->safe_psql('postgres', slurp_file('../reference/schema.sql'));
	$node->safe_psql('postgres', q{
		INSERT INTO tenants (id, name) VALUES ('tenant_a', 'A'), ('tenant_b', 'B');
		INSERT INTO interaction_history (tenant_id, created_at, channel, metadata)
		SELECT t, now() - interval '3 hours' + g * interval '1 minute', 'email', '{}'
		FROM unnest(ARRAY['tenant_a', 'tenant_b']) t, generate_series(1, 20) g;
	});

	my ($ret, $stdout, $stderr, $timed_out) = bounded_psql($node, 'postgres',
		'SELECT interactions_cron.export_interactions()', $PostgreSQL::Test::Utils::timeout_default);
	ok(!$timed_out && $ret == 0, "$mode: the call returns") or diag("stderr: $stderr");
	my $result = $ret == 0 && $stdout ne '' ? decode_json($stdout) : {};
	note("$mode: " . encode_json($result));
	my @errors = grep { ($_->{error} // '') =~ /could not fsync file ".*exports": Input\/output error/ }
	  @{ $result->{tenants} // [] };
	ok(@errors >= 1, "$mode: the fsync of the shared exports directory failed once (a tenant reports it)");
	is($node->safe_psql('postgres', q{
			SELECT count(*) FROM interactions_cron.export_checkpoints WHERE rows_exported > 0}),
		0, "$mode: no checkpoint moved in the group whose shared directory's fsync failed")
	  or diag($node->safe_psql('postgres',
			'SELECT tenant_id, status, rows_exported, last_error FROM interactions_cron.export_checkpoints'));
	my $expected = $mode eq 'one_at_a_time' ? 'one_at_a_time' : 'together';
	is($node->log_contains(qr/io_uring is unavailable/) ? 'one_at_a_time' : 'together', $expected,
		"$mode: the worker fsynced $expected");
	$node->stop('fast', fail_ok => 1);
	return;
}

each_fsync_mode(\&shared_directory_case, qw(together one_at_a_time together_long_path));
done_testing();
