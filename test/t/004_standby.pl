# On a hot standby, export_interactions() and cleanup() fail at once with
# SQLSTATE 25006 (read_only_sql_transaction) and write nothing.  On the
# primary, a failed call whose failure record is blocked by a lock on
# interactions_cron.job_runs still ends (statement_timeout), rather than
# waiting with interrupts held.
#
# 1.0 hung in both cases: the failure recorder is a background worker that
# never starts during recovery (and waits for the lock on the primary) while
# the caller waits for it with interrupts held.  Every call below therefore
# runs under a client-side timeout, so that such a hang fails the test, and a
# node with a hung backend is stopped in immediate mode.
use strict;
use warnings;

use File::Find;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

# Failing "at once" leaves plenty of slack within this; a hang runs into it.
my $call_timeout = 60;

# directory_entries lists every file or directory below $directory.
sub directory_entries
{
	my ($directory) = @_;
	my @entries;
	find({ no_chdir => 1, wanted => sub { push @entries, $File::Find::name unless $File::Find::name eq $directory } },
		$directory);
	return @entries;
}

# timed_psql runs $sql with verbose error reports (so that stderr shows the
# SQLSTATE), going on after errors, and returns (timed out?, stdout, stderr).
sub timed_psql
{
	my ($node, $sql) = @_;
	my $timed_out = 0;
	my $started = time;
	my ($ret, $stdout, $stderr) = $node->psql('postgres', "\\set VERBOSITY verbose\n$sql",
		on_error_stop => 0,
		timeout => $call_timeout,
		timed_out => \$timed_out);
	note(sprintf('%s: %.1f s%s', $sql =~ s/\s+/ /gr, time - $started, $timed_out ? ' (timed out)' : ''));
	return ($timed_out, $stdout // '', $stderr // '');
}

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
my $primary_export_dir = $primary->basedir . '/exports';
$primary->append_conf('postgresql.conf', qq{
interactions_cron.export_dir = '$primary_export_dir'
});
$primary->start;

$primary->safe_psql('postgres', 'CREATE EXTENSION interactions_cron');
$primary->safe_psql('postgres', slurp_file('../reference/schema.sql'));
# Rows waiting for export, so that the standby's call has work it must refuse.
$primary->safe_psql('postgres', q{
	INSERT INTO tenants (id, name) SELECT 'tenant_' || t, 'Tenant ' || t FROM generate_series(1, 3) t;
	INSERT INTO interaction_history (tenant_id, created_at, channel, metadata)
	SELECT 'tenant_' || t, now() - interval '1 hour' + g * interval '1 second',
	       'email', jsonb_build_object('g', g)
	FROM generate_series(1, 3) t, generate_series(1, 100) g;
});

$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
my $standby_export_dir = $standby->basedir . '/standby_exports';
mkdir $standby_export_dir or die "cannot create $standby_export_dir: $!";
$standby->append_conf('postgresql.conf', qq{
interactions_cron.export_dir = '$standby_export_dir'
});
$standby->start;
$primary->wait_for_catchup($standby, 'replay');

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');
is($standby->safe_psql('postgres', 'SHOW interactions_cron.export_dir'), $standby_export_dir,
	'the standby exports into its own directory');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM interaction_history'), '300',
	'the rows reached the standby');

# export_interactions() on the standby.
my $standby_hung = 0;
my ($timed_out, $stdout, $stderr) =
  timed_psql($standby, 'SELECT interactions_cron.export_interactions();');
$standby_hung ||= $timed_out;
ok(!$timed_out, 'export_interactions() on the standby returns');
like($stderr, qr/ERROR:\s+25006:/, 'export_interactions() on the standby fails with SQLSTATE 25006')
  or diag("stdout: $stdout\nstderr: $stderr");
is($stdout, '', 'export_interactions() on the standby returns no result');
is(join("\n", directory_entries($standby_export_dir)), '',
	'export_interactions() on the standby writes nothing into the export directory');

# The same with explicit arguments (one tenant, a small batch).
($timed_out, $stdout, $stderr) = timed_psql($standby,
	q{SELECT interactions_cron.export_interactions(batch_size => 10, tenant_id => 'tenant_1');});
$standby_hung ||= $timed_out;
ok(!$timed_out, 'export_interactions() of one tenant on the standby returns');
like($stderr, qr/ERROR:\s+25006:/, 'export_interactions() of one tenant on the standby fails with SQLSTATE 25006')
  or diag("stdout: $stdout\nstderr: $stderr");
is(join("\n", directory_entries($standby_export_dir)), '',
	'export_interactions() of one tenant on the standby writes nothing');

# cleanup() on the standby.
($timed_out, $stdout, $stderr) = timed_psql($standby, 'SELECT interactions_cron.cleanup();');
$standby_hung ||= $timed_out;
ok(!$timed_out, 'cleanup() on the standby returns');
like($stderr, qr/ERROR:\s+25006:/, 'cleanup() on the standby fails with SQLSTATE 25006')
  or diag("stdout: $stdout\nstderr: $stderr");
is(join("\n", directory_entries($standby_export_dir)), '',
	'cleanup() on the standby writes nothing into the export directory');

is($standby->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity
		  WHERE pid <> pg_backend_pid() AND state = 'active'
		    AND query ~ 'interactions_cron\.(export_interactions|cleanup)'}),
	'0', 'no call is left running on the standby')
  unless $standby_hung;

# A backend hung with interrupts held ignores pg_terminate_backend(); only an
# immediate shutdown ends it.
$standby->stop($standby_hung ? 'immediate' : 'fast', fail_ok => 1);

# On the primary: a call that fails as a whole records its failure.  First
# without any lock, to see that this call does fail and reach the recorder.
my $failing_call = q{SET interactions_cron.tenants_table = 'public.no_such_table';
SET statement_timeout = '2s';
SELECT interactions_cron.export_interactions();};
my $primary_hung = 0;
($timed_out, $stdout, $stderr) = timed_psql($primary, $failing_call);
$primary_hung ||= $timed_out;
ok(!$timed_out, 'the failing export returns when nothing blocks its failure record');
like($stderr, qr/ERROR:.*no_such_table/, 'the export fails as a whole for the missing tenants table')
  or diag("stdout: $stdout\nstderr: $stderr");
is($primary->safe_psql('postgres',
		q{SELECT count(*) FROM interactions_cron.job_runs
		  WHERE job = 'export' AND NOT ok AND error ~ 'no_such_table'}),
	'1', 'the failed call is recorded in job_runs');

# Now with job_runs locked by another session: the failure record cannot be
# written, and the call must still end (statement_timeout), not hang.
my $locker = $primary->background_psql('postgres', on_error_stop => 1);
$locker->query_safe('BEGIN');
$locker->query_safe('LOCK TABLE interactions_cron.job_runs IN ACCESS EXCLUSIVE MODE');

($timed_out, $stdout, $stderr) = timed_psql($primary, $failing_call);
$primary_hung ||= $timed_out;
ok(!$timed_out, 'the failing export returns while job_runs is locked');
like($stderr, qr/ERROR:/, 'the failing export reports an error while job_runs is locked')
  or diag("stdout: $stdout\nstderr: $stderr");
note("stderr of the call blocked by the lock: $stderr");

$locker->query_safe('COMMIT');
$locker->quit;

# Once the lock is gone, nothing of the call is left waiting.
ok($primary->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM pg_stat_activity
		  WHERE pid <> pg_backend_pid()
		    AND (query ~ 'interactions_cron\.export_interactions' OR backend_type ~ 'interactions_cron')}),
	'no call or failure recorder is left running on the primary');

$primary->stop($primary_hung ? 'immediate' : 'fast', fail_ok => 1);
done_testing();
