# A run's job_runs row with max_worker_processes tight (issue 19): one slot
# is left for the export, whose worker takes it.  The run's row must not
# need another: not while the postmaster reaps that worker, nor when other
# sessions wait for the slot the worker frees and keep it.  The worker that
# exported records the run (no warning "could not start a worker to record
# the export run", no row in the caller's transaction that a ROLLBACK undoes).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $timeout = $PostgreSQL::Test::Utils::timeout_default;
my $node = PostgreSQL::Test::Cluster->new('recorder_slot');
$node->init;
# The logical replication launcher takes one slot; one is left.
$node->append_conf('postgresql.conf', qq{
interactions_cron.export_dir = '@{[ $node->basedir ]}/lake'
interactions_cron.max_workers = 1
max_worker_processes = 2
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0], timeout => $timeout); }

sql('CREATE EXTENSION interactions_cron');
sql(slurp_file('../reference/schema.sql'));
sql(q{INSERT INTO tenants (id, name) VALUES ('t1', 'T1')});
my $calls = 12;
my $log_offset = -s $node->logfile;
for my $call (1 .. $calls)
{
	# Each call has a row to export, so its worker takes the free slot; every
	# other call is rolled back by its caller.
	sql(q{INSERT INTO interaction_history (tenant_id, created_at) VALUES ('t1', now() - interval '1 hour')});
	sql($call % 2
		? 'SELECT interactions_cron.export_interactions()'
		: 'BEGIN; SELECT interactions_cron.export_interactions(); ROLLBACK;');
}
my $log = slurp_file($node->logfile, $log_offset);
is(() = $log =~ /could not start a worker to record/g, 0, 'no call failed to start its recorder');
is(sql(q{SELECT count(*) FROM interactions_cron.job_runs WHERE job = 'export'}), $calls,
	'every call has its job_runs row, the rolled back ones too');
is(sql(q{SELECT sum((result->>'totalExported')::int) FROM interactions_cron.job_runs}), $calls,
	'and the rows say what each exported');

# Sessions that want the slot the export's worker frees: calls that fail
# before they start a worker (batch_size 0), whose run recorder waits for a
# slot; the one that gets it is held by a lock on the failed runs' totals.
# The export's own worker is held meanwhile by an uncommitted intent of its
# tenant, and let go once every one of them waits for the slot.  The call's
# result lists many idle tenants: building it takes the caller longer than
# it takes a waiter to take the freed slot.
my $waiters = 4;
sql(q{INSERT INTO tenants (id, name) SELECT 'idle' || g, 'Idle' FROM generate_series(1, 20000) g});
sql(q{INSERT INTO tenants (id, name) VALUES ('t2', 'T2')});
sql(q{INSERT INTO interaction_history (tenant_id, created_at) VALUES ('t2', now() - interval '1 hour')});
$node->psql('postgres', 'SELECT interactions_cron.export_interactions(batch_size => 0)');
my $before = sql('SELECT max(id) FROM interactions_cron.job_runs');

my $intent_holder = $node->background_psql('postgres');
$intent_holder->query_safe(q{BEGIN; INSERT INTO interactions_cron.export_intents
	(tenant_id, token, storage, local_root, files, temporary_files, row_count)
	VALUES ('t2', 'held', 'local', '/nowhere', '{}', '{}', 0)});
my $totals_holder = $node->background_psql('postgres');
$totals_holder->query_safe(q{BEGIN; SELECT runs FROM interactions_cron.job_run_totals
	WHERE job = 'export' AND outcome = 'failed' FOR UPDATE});

my $export = $node->background_psql('postgres', on_error_stop => 0);
$export->{stderr} = '';
$export->query_until(qr/started/, "\\echo started\nBEGIN;\nSELECT interactions_cron.export_interactions()->>'totalExported';\nROLLBACK;\n");
ok($node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'interactions_cron export worker'}),
	"the export's worker runs, held by its tenant's intent");

my @waiting;
for (1 .. $waiters)
{
	my $session = $node->background_psql('postgres', on_error_stop => 0);
	$session->query_until(qr/started/,
		"\\echo started\nSELECT interactions_cron.export_interactions(batch_size => 0);\n");
	push @waiting, $session;
}
ok($node->poll_query_until('postgres', qq{SELECT count(*) = $waiters FROM pg_stat_activity
		WHERE query LIKE '%batch_size => 0%' AND wait_event = 'Extension' AND pid <> pg_backend_pid()}),
	'every failed call waits for a slot to record its run');
$intent_holder->query_safe('ROLLBACK');
$export->query('SELECT 1');
unlike($export->{stderr}, qr/could not start a worker to record/,
	'the export call records its run without a free worker slot');
is(sql(qq{SELECT count(*) FROM interactions_cron.job_runs
		  WHERE id > $before AND job = 'export' AND ok AND (result->>'totalExported') = '1'}),
	'1', "its row outlives the caller's ROLLBACK");
$totals_holder->query_safe('ROLLBACK');
$_->quit for @waiting;
$export->quit;
$intent_holder->quit;
$totals_holder->quit;

# A call that fails, or is cancelled, once its worker has taken the run: the
# worker, which holds the only slot, records the failed run the caller hands
# it, with what the workers committed.  A caller terminated before it hands
# the run over leaves the worker to record it as failed, once, and the
# worker does not wait for ever.
sub run_count { return sql('SELECT max(id) FROM interactions_cron.job_runs'); }

sub runs_since
{
	return sql(qq{SELECT string_agg(ok::text || ' ' || coalesce(result->>'totalExported', '-') || ' '
		|| coalesce(error, ''), E'\n') FROM interactions_cron.job_runs WHERE id > $_[0]});
}

sql(q{INSERT INTO interaction_history (tenant_id, created_at) VALUES ('t2', now() - interval '1 hour')});
my $runs_before = run_count();
my ($ret, $stdout, $stderr) = $node->psql('postgres', q{
	SET interactions_cron.debug_fault = 'error_after_workers';
	SELECT interactions_cron.export_interactions()});
like($stderr, qr/injected fault error_after_workers for the call/, 'error_after_workers fails the call');
unlike($stderr, qr/could not start a worker to record/, 'the failed call needs no slot to record its run');
like(runs_since($runs_before), qr/^false 1 injected fault error_after_workers for the call$/,
	'its worker records it once, with the tenant it committed');

for my $stop ('pg_cancel_backend', 'pg_terminate_backend')
{
	sql(q{INSERT INTO interaction_history (tenant_id, created_at) VALUES ('t2', now() - interval '1 hour')});
	$runs_before = run_count();
	my $caller = $node->background_psql('postgres', on_error_stop => 0);
	$caller->query_safe(q{SET interactions_cron.debug_fault = 'sleep_after_workers'});
	my $caller_pid = $caller->query_safe('SELECT pg_backend_pid()');
	my $log_offset = -s $node->logfile;
	$caller->{stderr} = '';
	$caller->query_until(qr/started/, "\\echo started\nSELECT interactions_cron.export_interactions()->>'ok';\n");
	$node->wait_for_log(qr/debug_fault sleep_after_workers reached for the call/, $log_offset);
	ok($node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_stat_activity
			WHERE query = 'waiting for its interactions_cron run to record'}),
		"$stop: the export's worker waits for its run");
	sql("SELECT $stop($caller_pid)");
	ok($node->poll_query_until('postgres',
			q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'interactions_cron export worker'}),
		"$stop: the worker is gone");
	if ($stop eq 'pg_cancel_backend')
	{
		$caller->query('SELECT 1');
		unlike($caller->{stderr}, qr/could not start a worker to record/,
			'the cancelled call needs no slot to record its run');
		like(runs_since($runs_before), qr/^false 1 canceling statement due to user request$/,
			'its worker records it once, with the tenant it committed');
	}
	else
	{
		like(runs_since($runs_before),
			qr/^false - the call ended before it handed its run over to be recorded [^\n]*$/,
			'the terminated call is recorded once, as failed, by its worker');
	}
	eval { $caller->quit; };
}

$node->stop;
done_testing();
