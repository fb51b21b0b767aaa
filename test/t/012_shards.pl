# Past one database: two clusters stand in for the shards of a scaled-out
# platform (Citus, or tenants spread over servers).  Tenants are split
# between them; both export into one lake: a directory standing in for
# shared storage, then one S3 bucket and prefix on s3rver (each shard with a
# spool of its own).  Then a tenant moves from one to the other with its
# export state (tenant_state / adopt_tenant_state, doc/operations.md's procedure),
# while the source's last export of it was cut short after placing its
# files: the destination undoes them through the adopted intent and goes on
# from the adopted checkpoint.  Every row is in the lake exactly once, and
# no shard writes over the other's files.
use strict;
use warnings;

use File::Basename qw(basename);
use FindBin;
use lib $FindBin::RealBin;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $timeout = $PostgreSQL::Test::Utils::timeout_default;
my ($s3, $s3_port, $s3_dir) = start_s3rver();
my $s3_mirror = PostgreSQL::Test::Utils::tempdir();
local $ENV{AWS_ACCESS_KEY_ID} = 'S3RVER';
local $ENV{AWS_SECRET_ACCESS_KEY} = 'S3RVER';

# The lake of the scenario running: a shared directory, or the bucket.
my ($kind, $lake);

# lake_settings returns the postgresql.conf lines that point a shard at the lake.
sub lake_settings
{
	my ($spool) = @_;
	return "interactions_cron.export_dir = '$lake'\n" if $kind eq 'dir';
	return qq{interactions_cron.export_dir = '$spool'
interactions_cron.storage = 's3'
interactions_cron.s3_bucket = 'lake'
interactions_cron.s3_prefix = 'shards/'
interactions_cron.s3_endpoint = 'http://127.0.0.1:$s3_port'
interactions_cron.s3_path_style = on
};
}

# current_lake reads the lake as it is now.
sub current_lake
{
	return read_lake($lake) if $kind eq 'dir';
	return read_s3rver_lake("$s3_dir/store", 'lake', 'shards/', "$s3_mirror/" . rand());
}

sub sql
{
	my ($node, $query) = @_;
	return $node->safe_psql('postgres', $query, timeout => $timeout);
}

# new_shard starts a cluster exporting into the shared lake, with its own
# range of history ids.
sub new_shard
{
	my ($name, $first_id) = @_;
	return new_tenant_database("${name}_$kind", $first_id,
		lake_settings(PostgreSQL::Test::Utils::tempdir()) . qq{
interactions_cron.max_workers = 2
max_worker_processes = 16
restart_after_crash = on
});
}

# active_ids returns {id => 1} for every row of an active tenant on the shards.
sub active_ids
{
	my %ids;
	for my $node (@_)
	{
		$ids{$_} = 1 for split /\n/, sql($node, q{
			SELECT h.id FROM interaction_history h JOIN tenants t ON t.id = h.tenant_id
			WHERE t.status = 'active'});
	}
	return \%ids;
}

# check_lake checks the shared lake against the rows of both shards.
sub check_lake
{
	my ($label, @nodes) = @_;
	my $read = current_lake();
	$label = "$kind: $label";
	my $expected = active_ids(@nodes);
	lake_rows_once_ok($read, scalar(keys %$expected), " ($label)");
	my ($missing, $duplicated, $unexpected) = compare_ids($read->{ids}, $expected);
	is(scalar(@$missing) + scalar(@$duplicated) + scalar(@$unexpected), 0,
		"$label: the lake holds each active row of both shards once, and nothing else")
	  or diag "missing @$missing; duplicated @$duplicated; unexpected @$unexpected";
}

# scenario runs the whole story against one kind of lake.
sub scenario
{
	($kind) = @_;
	if ($kind eq 'dir')
	{
		$lake = shared_lake();
	}
	my $a = new_shard('shard_a', 1);
	my $b = new_shard('shard_b', 1_000_000);
	sql($a, q{INSERT INTO tenants (id, name) VALUES ('a1', 'A1'), ('a2', 'A2'), ('mover', 'Mover')});
	sql($b, q{INSERT INTO tenants (id, name) VALUES ('b1', 'B1'), ('b2', 'B2')});
	add_tenant_rows($a, 30, 0, qw(a1 a2 mover));
	add_tenant_rows($b, 30, 0, qw(b1 b2));
	export_all($a, 20, "$kind: shard a");
	export_all($b, 25, "$kind: shard b");
	check_lake('two shards', $a, $b);

	# The mover gets rows on a, whose next export of it is cut short by a crash
	# after its files are placed: its intent names them, its checkpoint lags.
	add_tenant_rows($a, 12, 40, qw(mover a1));
	$a->append_conf('postgresql.conf', "interactions_cron.debug_fault = 'sleep_after_place'\n");
	$a->reload;
	my $log_offset = -s $a->logfile;
	my $session = $a->background_psql('postgres', on_error_stop => 0);
	$session->query_safe('SET interactions_cron.max_workers = 1');
	$session->query_until(qr/started/,
		"\\echo started\nSELECT interactions_cron.export_interactions(batch_size => 5);\n");
	is(wait_for_stalled_group($a, 'postgres', $log_offset, 2), 2, 'a: the export stalls after placing files');
	$a->stop('immediate');
	end_session($session);
	$a->append_conf('postgresql.conf', "interactions_cron.debug_fault = 'none'\n");
	$a->start;
	is(sql($a, q{SELECT count(*) FROM interactions_cron.export_intents WHERE tenant_id = 'mover'}), '1',
		'a: the cut-short export left the mover\'s intent');

	# The move: freeze the tenant on a (its writers stop, no export takes it),
	# copy its rows, move its state, make it active on b, delete it on a.
	sql($a, q{UPDATE tenants SET status = 'moving' WHERE id = 'mover'});
	my $rows = sql($a, q{COPY (SELECT * FROM interaction_history WHERE tenant_id = 'mover' ORDER BY id) TO STDOUT});
	my $state = sql($a, q{SELECT interactions_cron.tenant_state('mover', release => true)});
	like($state, qr/"intent": \{/, 'the state carries the unfinished batch');
	is(sql($a, q{SELECT (SELECT count(*) FROM interactions_cron.export_intents WHERE tenant_id = 'mover')
	             + (SELECT count(*) FROM interactions_cron.export_checkpoints
	                WHERE tenant_id = 'mover' AND status <> 'released')}),
		'0', 'a: the released state is gone there (handed over, not copied), its checkpoint a released marker');
	sql($b, q{INSERT INTO tenants (id, name, status) VALUES ('mover', 'Mover', 'suspended')});
	sql($b, "COPY interaction_history FROM STDIN;\n$rows\n\\.\n");
	like(sql($b, "SELECT interactions_cron.adopt_tenant_state(\$state\$$state\$state\$::jsonb)"),
		qr/"intent": true/, 'b adopts the state and its intent');
	is(sql($b, q{SELECT count(*) FROM interactions_cron.job_runs WHERE job = 'adopt_tenant_state' AND ok}), '1',
		'b records the adoption');
	sql($b, q{UPDATE tenants SET status = 'active' WHERE id = 'mover'});
	sql($a, q{DELETE FROM interaction_history WHERE tenant_id = 'mover'; DELETE FROM tenants WHERE id = 'mover'});

	# Adopting again at the same position changes nothing; another position is
	# refused without force.
	like(sql($b, "SELECT interactions_cron.adopt_tenant_state(\$state\$$state\$state\$::jsonb)"),
		qr/"ok": true/, 'adopting the same state again is harmless');
	my ($ret, $stdout, $stderr) = $b->psql('postgres', q{
		SELECT interactions_cron.adopt_tenant_state(jsonb_set(interactions_cron.tenant_state('mover'),
		       '{checkpoint,last_created_at}', '"2000-01-01T00:00:00+00"'))});
	like($stderr, qr/already has a checkpoint here/, 'moving an existing checkpoint needs force');

	# New rows after the move, on both sides; both shards export on.
	add_tenant_rows($b, 9, 60, qw(mover b1));
	add_tenant_rows($a, 9, 60, qw(a2));
	export_all($b, 7, "$kind: after the move, b");
	export_all($a, 7, "$kind: after the move, a");
	check_lake('after the move', $a, $b);
	is(sql($b, q{SELECT count(*) FROM interactions_cron.export_intents}), '0', 'b: no intent left');
	my @mover_files = grep { m{^exports/mover/} } @{ current_lake()->{final_files} };
	ok(@mover_files > 0, 'the mover\'s files are in the lake');

	# And back to a, the same way: nothing a kept of the tenant undoes b's files.
	move_tenant($b, $a, 'mover', 'a adopts the state back without force');
	add_tenant_rows($a, 6, 80, qw(mover));
	export_all($a, 4, "$kind: moved back, a");
	export_all($b, 4, "$kind: moved back, b");
	check_lake('moved back', $a, $b);
	$a->stop;
	$b->stop;
}

scenario('dir');
scenario('s3');
$s3->kill_kill;
done_testing();
