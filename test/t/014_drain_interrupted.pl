# A catch-up drain (export_interactions(max_runtime => ...)) interrupted in
# the middle, after some tenants' further batches committed: by a cancel, by
# statement_timeout, by a terminated worker, and by a worker's SIGKILL (a
# crash of the whole server).  Every batch of the drain keeps the intent
# protocol: the next runs leave every row in exactly one line of one final
# file, with no temporary file or intent left behind.
use strict;
use warnings;

use File::Path qw(remove_tree);
use FindBin;
use lib $FindBin::RealBin;
use JSON::PP qw(decode_json);
use LakeCheck;
use Time::HiRes qw(time usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $tenants = 3;
my $rows_per_tenant = 20000;
my $rows = $tenants * $rows_per_tenant;
my $batch = 10;                  # 2,000 batches a tenant: a drain outlasts every interruption
my $mid_drain_bound = 60;        # seconds for the drain to reach its further batches
my $call_end_bound = 60;         # seconds from an interruption to the call's end
my $worker_type = 'interactions_cron export worker';

my $node = PostgreSQL::Test::Cluster->new('drain_interrupted');
$node->init;
my $export_dir = $node->basedir . '/lake';
$node->append_conf('postgresql.conf', qq{
interactions_cron.export_dir = '$export_dir'
interactions_cron.max_workers = 2
restart_after_crash = on
});
$node->start;

# Every statement is bounded: a hung export fails the test instead of hanging it.
sub sql
{
	return $node->safe_psql('postgres', $_[0], timeout => $PostgreSQL::Test::Utils::timeout_default);
}

$node->safe_psql('postgres', 'CREATE EXTENSION interactions_cron');
$node->safe_psql('postgres', slurp_file('../reference/schema.sql'));
sql(qq{
	INSERT INTO tenants (id, name) SELECT 'tenant_' || t, 'Tenant ' || t FROM generate_series(1, $tenants) t;
	INSERT INTO interaction_history (tenant_id, created_at, channel, metadata)
	SELECT 'tenant_' || t, now() - interval '2 days' + g * interval '1 second', 'sms', jsonb_build_object('g', g)
	FROM generate_series(1, $rows_per_tenant) g, generate_series(1, $tenants) t;
});

# reset_export starts a scenario from nothing exported.
sub reset_export
{
	sql('TRUNCATE interactions_cron.export_checkpoints, interactions_cron.export_intents');
	remove_tree($export_dir);
	die "cannot remove $export_dir" if -e $export_dir;
}

# start_drain starts a drain with a budget of $budget in a background
# session, after $settings, and returns the session and its backend's pid.
sub start_drain
{
	my ($budget, $settings) = @_;
	my $session = $node->background_psql('postgres', on_error_stop => 0);
	$session->query_safe("SET interactions_cron.batch_size = $batch; $settings");
	my $pid = $session->query_safe('SELECT pg_backend_pid()');
	$session->{stderr} = '';
	$session->query_until(qr/started/,
		"\\echo started\nSELECT interactions_cron.export_interactions(max_runtime => '$budget');\n\\echo call-ended\n");
	return ($session, $pid);
}

# exported_so_far returns (rows exported in all, most rows of one tenant).
sub exported_so_far
{
	return split /\|/, sql('SELECT coalesce(sum(rows_exported), 0) || \'|\' || coalesce(max(rows_exported), 0)
	                       FROM interactions_cron.export_checkpoints');
}

# wait_mid_drain waits (bounded) until some tenant committed more than two
# batches (its further batches are being exported) and returns whether it did.
sub wait_mid_drain
{
	my $deadline = time + $mid_drain_bound;
	while (time < $deadline)
	{
		my (undef, $most) = exported_so_far();
		return 1 if $most > 2 * $batch;
		usleep(50_000);
	}
	return 0;
}

# wait_for_output pumps a background session until its stdout or stderr
# (as $stream says) matches, or $seconds passed; returns whether it matched.
sub wait_for_output
{
	my ($session, $stream, $pattern, $seconds) = @_;
	my $deadline = time + $seconds;
	while ($session->{$stream} !~ $pattern && time < $deadline)
	{
		eval { $session->{run}->pump_nb; };
		last unless $session->{run}->pumpable;
		usleep(50_000);
	}
	eval { $session->{run}->pump_nb; };
	return $session->{$stream} =~ $pattern ? 1 : 0;
}

# check_interrupted_mid_drain checks that the interruption came in the
# middle of the drain: further batches committed, rows still waiting.
sub check_interrupted_mid_drain
{
	my ($label) = @_;
	my ($total, $most) = exported_so_far();
	cmp_ok($most, '>', 2 * $batch, "$label: further batches had committed");
	cmp_ok($total, '<', $rows, "$label: rows were still waiting when it was interrupted");
}

# finish_and_check exports until caught up and checks the lake and the
# checkpoints: every row exactly once, nothing temporary left.
sub finish_and_check
{
	my ($label) = @_;
	my ($caught_up, @problems) = export_until_done(
		sub { sql(q{SELECT interactions_cron.export_interactions(batch_size => 10000, max_runtime => '10 min')}) },
		5);
	ok($caught_up, "$label: the next calls caught up");
	is(scalar(@problems), 0, "$label: every next call succeeded for every tenant") or diag join("\n", @problems);
	my $lake = read_lake($export_dir);
	lake_rows_once_ok($lake, $rows, " ($label)");
	is(scalar(@{ $lake->{empty_files} }), 0, "$label: no empty file");
	is(sql('SELECT count(*) FROM interactions_cron.export_intents'), '0', "$label: no intent is left");
	is(sql('SELECT sum(rows_exported) FROM interactions_cron.export_checkpoints'), $rows,
		"$label: rows_exported adds up to the rows");
	is(sql('SELECT sum(files_written) FROM interactions_cron.export_checkpoints'),
		scalar(@{ $lake->{final_files} }), "$label: files_written adds up to the final files");
}

# A cancel of the calling backend.
{
	reset_export();
	my ($session, $pid) = start_drain('10 min', '');
	ok(wait_mid_drain(), 'cancel: the drain reached its further batches');
	sql("SELECT pg_cancel_backend($pid)");
	ok(wait_for_output($session, 'stderr', qr/canceling statement due to user request/, $call_end_bound),
		'cancel: the call ends with the cancel');
	end_session($session);
	check_interrupted_mid_drain('cancel');
	finish_and_check('cancel');
}

# statement_timeout, shorter than the drain.
{
	reset_export();
	my ($session) = start_drain('10 min', q{SET statement_timeout = '3s'});
	ok(wait_for_output($session, 'stderr', qr/canceling statement due to statement timeout/, $call_end_bound),
		'statement_timeout: the call ends with the timeout');
	end_session($session);
	check_interrupted_mid_drain('statement_timeout');
	finish_and_check('statement_timeout');
}

# A worker terminated in the middle: the call goes on with the others until
# its budget is spent, and says which tenant's batch was cut short.
{
	reset_export();
	my ($session) = start_drain('4s', '');
	ok(wait_mid_drain(), 'worker terminated: the drain reached its further batches');
	my $worker = sql("SELECT pid FROM pg_stat_activity WHERE backend_type = '$worker_type' ORDER BY pid LIMIT 1");
	ok($worker, 'worker terminated: a worker is running');
	sql("SELECT pg_terminate_backend($worker)") if $worker;
	ok(wait_for_output($session, 'stdout', qr/call-ended/, $call_end_bound), 'worker terminated: the call ends');
	my ($result) = $session->{stdout} =~ /^(\{.*\})$/m;
	my $parsed = eval { decode_json($result // '') } // {};
	my @cut = grep { ($_->{error} // '') =~ /exited before reporting/ } @{ $parsed->{tenants} // [] };
	ok(@cut >= 1, 'worker terminated: the result names the tenant whose batch was cut short')
	  or diag $session->{stdout};
	ok(!grep({ $_->{caughtUp} } @cut), 'worker terminated: that tenant is not caught up');
	end_session($session);
	check_interrupted_mid_drain('worker terminated');
	finish_and_check('worker terminated');
}

# A worker killed with SIGKILL: the postmaster restarts the whole server.
{
	reset_export();
	my $log_offset = -s $node->logfile;
	my ($session) = start_drain('10 min', '');
	ok(wait_mid_drain(), 'crash: the drain reached its further batches');
	my $worker = sql("SELECT pid FROM pg_stat_activity WHERE backend_type = '$worker_type' ORDER BY pid LIMIT 1");
	ok($worker, 'crash: a worker is running');
	kill 'KILL', $worker or die "could not kill worker $worker" if $worker;
	wait_for_restart($node, $log_offset);
	end_session($session);
	check_interrupted_mid_drain('crash');
	finish_and_check('crash');
}

$node->stop;
done_testing();
