# The intent protocol under SIGKILL at each of its crash points, and under a
# cancel or termination of the calling backend: whatever the interrupted run
# left (temporary files, an intent, files already placed), the next runs
# leave every row of the table in exactly one line of one final file.
#
# For each point (before_place, between_files, after_place) the export is
# started with interactions_cron.debug_fault = 'sleep_<point>', and once a
# worker sleeps there and every tenant's batch is written (a worker writes a
# group of tenants before placing any: the tenants of a sleeping worker's
# group wait behind it), one worker is killed with SIGKILL, which makes the
# postmaster crash and restart the whole server. The retry is varied:
# between_files retries with gzip (other file names than the placed ones),
# after_place retries with zstd after a GDPR delete of a row already in a
# placed file.
use strict;
use warnings;

use File::Path qw(remove_tree);
use FindBin;
use lib $FindBin::RealBin;
use LakeCheck;
use Time::HiRes qw(time usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# The sleep_* faults sleep up to 60 s (contract). Every bound below that
# decides whether an interrupt reached the sleeping workers is well under it,
# so a worker that kept sleeping fails the test however slow the machine is.
my $call_return_bound = 30;    # seconds from cancel/terminate to the call's error
my $workers_gone_bound = 15;   # seconds from the call's error to no worker left
my $all_tenants_bound = 30;    # seconds for every tenant's batch to be written

my $worker_type = 'interactions_cron export worker';
my @tenants = map { "tenant_$_" } 1 .. 3;
my $days = 3;                  # each tenant's rows span 3 UTC days: 3 files a batch

my $node = PostgreSQL::Test::Cluster->new('crash_points');
$node->init;
my $export_dir = $node->basedir . '/lake';
# Up to one worker per tenant: however the tenants are shared out, each is
# either asleep at the fault point or waiting behind one that is, in its
# worker's group, when the server is killed.
$node->append_conf('postgresql.conf', qq{
interactions_cron.export_dir = '$export_dir'
interactions_cron.max_workers = 3
restart_after_crash = on
});
$node->start;

# Every statement is bounded: a hung export fails the test instead of hanging it.
sub sql
{
	return $node->safe_psql('postgres', $_[0], timeout => $PostgreSQL::Test::Utils::timeout_default);
}

# final_files_of lists the final files of one tenant (ids here need no escaping).
sub final_files_of
{
	my ($tenant) = @_;
	return @{ read_lake($export_dir, under => "exports/$tenant")->{final_files} };
}

# reset_state gives each scenario a fresh start: no checkpoint, no intent,
# no file, and the same data: 3 tenants with rows on 3 UTC days each.
sub reset_state
{
	sql(q{
		TRUNCATE interactions_cron.export_checkpoints, interactions_cron.export_intents;
		TRUNCATE interaction_history, tenants;
		INSERT INTO tenants (id, name) SELECT 'tenant_' || t, 'Tenant ' || t FROM generate_series(1, 3) t;
		INSERT INTO interaction_history (tenant_id, created_at, channel, metadata)
		SELECT 'tenant_' || t,
		       date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
		         - d * interval '1 day' + g * interval '7 minutes',
		       'email', jsonb_build_object('d', d, 'g', g)
		FROM generate_series(3, 1, -1) d, generate_series(1, 150) g, generate_series(1, 3) t
		ORDER BY d DESC, g, t;
	});
	remove_tree($export_dir);
	die "cannot remove $export_dir" if -e $export_dir;
}

# start_faulted_export starts export_interactions() in a background session
# with the sleep fault at $point and returns (session, its pid, log offset).
sub start_faulted_export
{
	my ($point) = @_;
	my $session = $node->background_psql('postgres', on_error_stop => 0);
	$session->query_safe(qq{LOAD 'interactions_cron'; SET interactions_cron.debug_fault = 'sleep_$point'});
	my $pid = $session->query_safe('SELECT pg_backend_pid()');
	my $log_offset = -s $node->logfile;
	$session->{stderr} = '';
	$session->query_until(qr/started/, "\\echo started\nSELECT interactions_cron.export_interactions();\n");
	return ($session, $pid, $log_offset);
}

# wait_for_fault waits (bounded) until a worker logged that it sleeps at
# $point and every tenant's batch is written (each has its intent), and
# returns the tenants whose worker reached the point, first logged first.
sub wait_for_fault
{
	my ($point, $log_offset) = @_;
	my $reached = qr/debug_fault sleep_\Q$point\E reached for tenant "([^"]*)"/;
	$node->wait_for_log($reached, $log_offset);
	my $deadline = time + $all_tenants_bound;
	my $intents;
	while (1)
	{
		$intents = sql('SELECT count(*) FROM interactions_cron.export_intents');
		last if $intents >= @tenants || time > $deadline;
		usleep(100_000);
	}
	is($intents, scalar(@tenants), "sleep_$point: every tenant's batch is written when a worker sleeps there");
	my %first;
	return grep { !$first{$_}++ } (slurp_file($node->logfile, $log_offset) =~ /$reached/g);
}

sub worker_pids
{
	return split /\n/, sql("SELECT pid FROM pg_stat_activity WHERE backend_type = '$worker_type' ORDER BY pid");
}

# wait_for_stderr pumps a background session until its stderr matches or
# $seconds passed (or psql ended); returns whether it matched.
sub wait_for_stderr
{
	my ($session, $pattern, $seconds) = @_;
	my $deadline = time + $seconds;
	while ($session->{stderr} !~ $pattern && time < $deadline)
	{
		eval { $session->{run}->pump_nb; };
		last unless $session->{run}->pumpable;
		usleep(50_000);
	}
	eval { $session->{run}->pump_nb; };
	return $session->{stderr} =~ $pattern ? 1 : 0;
}

# poll_no_workers returns whether no export worker is left within $seconds.
sub poll_no_workers
{
	my ($seconds) = @_;
	my $deadline = time + $seconds;
	while (1)
	{
		return 1 if worker_pids() == 0;
		return 0 if time > $deadline;
		usleep(100_000);
	}
}

sub set_compression
{
	my ($compression) = @_;
	sql(qq{LOAD 'interactions_cron'; ALTER SYSTEM SET interactions_cron.compression = '$compression'; SELECT pg_reload_conf()});
	# A new backend has the postmaster's settings: the reload took when it
	# sees the value (no LOAD: an unloaded setting reads as its placeholder).
	$node->poll_query_until('postgres',
		q{SELECT coalesce(current_setting('interactions_cron.compression', true), 'none')}, $compression)
	  or die "the reload did not set compression = $compression";
}

# check_retries runs exports (no fault) until one exports nothing; every
# run must succeed for every tenant.
sub check_retries
{
	my ($label) = @_;
	my ($caught_up, @problems) = export_until_done(
		sub {
			sql(q{
				SET interactions_cron.debug_fault = 'none';
				SELECT interactions_cron.export_interactions()});
		},
		10);
	ok($caught_up, "$label: the retries caught up");
	is(scalar(@problems), 0, "$label: every retry succeeded for every tenant") or diag join("\n", @problems);
}

# check_exactly_once checks the lake and the catalog after the retries.
sub check_exactly_once
{
	my ($label, @deleted_ids) = @_;
	my $lake = read_lake($export_dir);
	my $copies = $lake->{ids};
	my %in_table = map { $_ => 1 } split /\n/, sql('SELECT id FROM interaction_history');
	my ($missing, $duplicated, $not_in_table) = compare_ids($copies, \%in_table);

	ok(scalar(keys %in_table) > 0, "$label: the table has rows");
	is(scalar(@$missing), 0, "$label: every row of the table is in a file") or diag "missing ids: @$missing";
	is(scalar(@$duplicated), 0, "$label: no row is in more than one line") or diag "duplicated ids: @$duplicated";
	is(scalar(@$not_in_table), 0, "$label: every line is a row still in the table")
	  or diag "ids not in the table: @$not_in_table";
	ok(!exists $copies->{$_}, "$label: deleted row $_ is not in the lake") for @deleted_ids;
	is(scalar(@{ $lake->{hidden_files} }), 0, "$label: no hidden temporary file is left")
	  or diag explain $lake->{hidden_files};
	is(scalar(@{ $lake->{other_files} }), 0, "$label: no file of another kind") or diag explain $lake->{other_files};
	is(scalar(@{ $lake->{empty_files} }), 0, "$label: no empty file") or diag explain $lake->{empty_files};
	my $spool = read_lake($export_dir, under => '.spool');
	is(scalar(@{ $spool->{hidden_files} }) + scalar(@{ $spool->{final_files} }), 0,
		"$label: the spool holds no file (the crash's temporary files were removed)")
	  or diag explain $spool;

	is(sql('SELECT count(*) FROM interactions_cron.export_intents'), '0', "$label: no intent is left");
	# The interrupted batch never committed its checkpoint, so the totals are
	# those of the retries alone: every row now in the table exactly once (a
	# row deleted before the retry was never counted), one file per day.
	is(sql('SELECT coalesce(sum(rows_exported), 0) FROM interactions_cron.export_checkpoints'),
		sql('SELECT count(*) FROM interaction_history'),
		"$label: rows_exported adds up to the rows in the table");
	is(sql('SELECT coalesce(sum(files_written), 0) FROM interactions_cron.export_checkpoints'),
		scalar(@{ $lake->{final_files} }), "$label: files_written adds up to the final files");
	is(sql(q{
		SELECT count(*) FROM tenants t
		LEFT JOIN interactions_cron.export_checkpoints c ON c.tenant_id = t.id
		WHERE c.tenant_id IS NULL OR c.status <> 'ok' OR c.attempts <> 0
		   OR (c.last_created_at, c.last_id::bigint) <> (SELECT h.created_at, h.id FROM interaction_history h
		                                         WHERE h.tenant_id = t.id
		                                         ORDER BY h.created_at DESC, h.id DESC LIMIT 1)}),
		'0', "$label: every checkpoint is ok and at its tenant's last row");
	return $lake;
}

$node->safe_psql('postgres', 'CREATE EXTENSION interactions_cron');
$node->safe_psql('postgres', slurp_file('../reference/schema.sql'));
is(sql(q{SELECT installed_version = default_version FROM pg_available_extensions WHERE name = 'interactions_cron'}), 't',
	'the default version is installed');
is(sql(q{SELECT to_regclass('interactions_cron.export_intents') IS NOT NULL}), 't', 'the intents table exists');

# Final files of a killed tenant at each point: none placed yet, the first of
# its 3 days, all 3.  The tenants waiting behind it in its worker's group:
# none placed before or between its files (it places first), all placed
# after (every batch of a group is placed before any is confirmed).
my %placed_at_crash = (before_place => 0, between_files => 1, after_place => $days);
my %placed_behind = (before_place => 0, between_files => 0, after_place => $days);

for my $point (qw(before_place between_files after_place))
{
	reset_state();
	my ($session, $leader_pid, $log_offset) = start_faulted_export($point);
	my @reached = wait_for_fault($point, $log_offset);

	my @workers = worker_pids();
	ok(scalar(@workers) >= 1, "$point: export workers are running") or die 'no export worker to kill';
	ok(!grep({ $_ == $leader_pid } @workers), "$point: the tenants run outside the calling backend");
	my $kill_offset = -s $node->logfile;
	kill 'KILL', $workers[0] or die "could not kill worker $workers[0]";
	wait_for_restart($node, $kill_offset);
	end_session($session);
	ok($node->log_contains(qr/\(PID \Q$workers[0]\E\) was terminated by signal 9/, $kill_offset),
		"$point: the worker was killed by SIGKILL");
	is(scalar(worker_pids()), 0, "$point: no worker survived the crash restart");

	# What the killed batches left: their intents, no checkpoint moved, and
	# the files placed up to the point.
	is(sql('SELECT count(*) FROM interactions_cron.export_intents'), scalar(@tenants),
		"$point: one intent per interrupted tenant");
	my %asleep = map { $_ => 1 } @reached;
	for my $tenant (@tenants)
	{
		my $placed = $asleep{$tenant} ? $placed_at_crash{$point} : $placed_behind{$point};
		is(sql("SELECT cardinality(files) FROM interactions_cron.export_intents WHERE tenant_id = '$tenant'"),
			$days, "$point: the intent of $tenant names its $days files");
		is(sql(qq{SELECT count(*) FROM interactions_cron.export_checkpoints
		          WHERE tenant_id = '$tenant' AND (rows_exported <> 0 OR last_created_at <> '-infinity')}),
			'0', "$point: the checkpoint of $tenant did not move");
		is(scalar(final_files_of($tenant)), $placed,
			"$point: $tenant has $placed final files after the crash");
	}

	my @deleted_ids;
	if ($point eq 'between_files')
	{
		# The retry writes .json.gz names: it must remove the .json file the
		# killed batch placed, not rely on overwriting it.
		set_compression('gzip');
	}
	elsif ($point eq 'after_place')
	{
		# A GDPR delete of a row in a placed file, before the retry.
		my $tenant = $reached[0] // $tenants[0];
		my $first_id = sql(qq{SELECT id FROM interaction_history WHERE tenant_id = '$tenant'
		                      ORDER BY created_at, id LIMIT 1});
		is(read_lake($export_dir)->{ids}{$first_id}, 1, "$point: row $first_id of $tenant is in a placed file");
		sql("DELETE FROM interaction_history WHERE id = $first_id");
		push @deleted_ids, $first_id;
		# And .json.zst names: every placed .json file must go.
		set_compression('zstd');
	}

	check_retries($point);
	my $lake = check_exactly_once($point, @deleted_ids);

	if ($point eq 'between_files')
	{
		is(scalar(grep { /\.json\z/ } @{ $lake->{final_files} }), 0, "$point: no uncompressed file is left");
		is(scalar(grep { /\.json\.gz\z/ } @{ $lake->{final_files} }), @tenants * $days,
			"$point: the retry wrote one .json.gz file per tenant and day");
		set_compression('none');
	}
	if ($point eq 'after_place')
	{
		is(scalar(grep { /\.json\z/ } @{ $lake->{final_files} }), 0, "$point: no uncompressed file is left");
		is(scalar(grep { /\.json\.zst\z/ } @{ $lake->{final_files} }), @tenants * $days,
			"$point: the retry wrote one .json.zst file per tenant and day");
		set_compression('none');
	}
}

# A cancel or a termination of the calling backend while the workers sleep
# before placing: the call ends with an error, its workers end too, and the
# next runs still give exactly once.
for my $how (qw(cancel terminate))
{
	reset_state();
	my ($session, $leader_pid, $log_offset) = start_faulted_export('before_place');
	wait_for_fault('before_place', $log_offset);
	ok(scalar(worker_pids()) >= 1, "$how: export workers are running");

	my $function = $how eq 'cancel' ? 'pg_cancel_backend' : 'pg_terminate_backend';
	is(sql("SELECT $function($leader_pid)"), 't', "$how: $function signalled the caller");
	my $error = $how eq 'cancel'
	  ? qr/ERROR:/
	  : qr/FATAL:|server closed the connection|connection to server was lost/;
	ok(wait_for_stderr($session, $error, $call_return_bound),
		"$how: the call ends with an error well before the fault's sleep would end")
	  or diag "stderr: $session->{stderr}";
	ok(poll_no_workers($workers_gone_bound), "$how: the workers are gone soon after")
	  or diag 'still running: ' . join(' ', worker_pids());
	if ($how eq 'cancel')
	{
		my ($one) = $session->query('SELECT 1');
		is($one, '1', 'cancel: the calling session is still usable');
	}
	else
	{
		is(sql("SELECT count(*) FROM pg_stat_activity WHERE pid = $leader_pid"), '0',
			'terminate: the calling backend is gone');
	}
	end_session($session);

	check_retries($how);
	check_exactly_once($how);
}

$node->stop;
done_testing();
