# pg_upgrade of a cluster that has exported to a new cluster (the
# binary-upgrade path: pg_dump --binary-upgrade of the schema, the data files
# carried over), first in copy mode, then that cluster again in link mode; after each, more rows and exports into the same
# lake.  The extension's state (checkpoints, an intent left by a killed
# export, run history and its sequence, job_claims, config tables, grants)
# and the per-database export_dir come through, and every row of an active
# tenant ends up in exactly one file.
#
# The old cluster runs the older major named by OLDER_PG_INSTALL when that
# is set (scripts/test.sh sets it in a chroot that holds two majors: 15 to
# 17 in trixie's, 17 to 18 in sid's): the copy-mode upgrade then moves the
# database to this PostgreSQL's major, the DBA's pg_upgradecluster path;
# without it, both are this PostgreSQL.
use strict;
use warnings;

use File::Basename ();
use FindBin;
use lib $FindBin::RealBin;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $timeout = $PostgreSQL::Test::Utils::timeout_default;
# The lake lies outside every data directory: the default export_dir is
# under the data directory, which pg_upgrade replaces.
my $lake = PostgreSQL::Test::Utils::tempdir() . '/lake';
my ($bindir) = run_command([ 'pg_config', '--bindir' ]);
my $older_install = $ENV{OLDER_PG_INSTALL};
my $old_bindir = $older_install ? "$older_install/bin" : $bindir;
# Beside an older major, this major's nodes run its programs by full path
# too: IPC::Run caches a program found on the PATH, which the old node's
# commands change.
my @this_install = $older_install ? (install_path => File::Basename::dirname($bindir)) : ();

# Data checksums on in every cluster: 18's initdb turns them on by default,
# and pg_upgrade needs the old and new clusters to agree.
my $old = PostgreSQL::Test::Cluster->new('old', $older_install ? (install_path => $older_install) : ());
$old->init(extra => ['--data-checksums']);
if ($older_install)
{
	my $probe = PostgreSQL::Test::Cluster->new('probe', @this_install);
	$probe->init;
	$probe->start;
	$old->start;
	my $refused = column_options_refused($old, $probe);
	$old->stop;
	$probe->stop;
	plan skip_all => $refused if $refused;
}
$old->append_conf('postgresql.conf', qq{
interactions_cron.max_workers = 3
restart_after_crash = on
});
$old->start;
$old->safe_psql('postgres', qq{
	CREATE DATABASE app;
	ALTER DATABASE app SET interactions_cron.export_dir = '$lake';
	CREATE ROLE exporter;
});
$old->safe_psql('app', 'CREATE EXTENSION interactions_cron');
$old->safe_psql('app', slurp_file('../reference/schema.sql'));
$old->safe_psql('app', q{
	GRANT USAGE ON SCHEMA interactions_cron TO exporter;
	GRANT EXECUTE ON FUNCTION interactions_cron.export_interactions(integer, text, boolean, interval) TO exporter;
	GRANT SELECT, INSERT, UPDATE ON interactions_cron.export_checkpoints TO exporter;
	GRANT INSERT ON interactions_cron.job_runs TO exporter;
	GRANT SELECT ON public.tenants, public.interaction_history TO exporter;
	INSERT INTO tenants (id, name, status) VALUES
	    ('t1', 'T1', 'active'), ('t2', 'T2', 'active'), ('t3', 'T3', 'active'), ('gone', 'Gone', 'inactive');
});

# add_rows inserts $per_tenant rows for each of t1..t3 and gone, spread over
# the two UTC days before today's, $offset steps in.
sub add_rows
{
	my ($node, $per_tenant, $offset) = @_;
	$node->safe_psql('app', qq{
		INSERT INTO interaction_history (tenant_id, created_at, channel, metadata)
		SELECT t, date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '2 days'
		          + ($offset + g) * interval '23 minutes 7.5 seconds',
		       'sms', jsonb_build_object('g', g, 'offset', $offset)
		FROM unnest(ARRAY['t1', 't2', 't3', 'gone']) t, generate_series(1, $per_tenant) g
		ORDER BY g, t}, timeout => $timeout);
}

# check_lake checks the lake against the active tenants' rows of $node.
sub check_lake
{
	my ($node, $label) = @_;
	my $read = read_lake($lake);
	my %expected = map { $_ => 1 } split /\n/, $node->safe_psql('app',
		q{SELECT h.id FROM interaction_history h JOIN tenants t ON t.id = h.tenant_id WHERE t.status = 'active'});
	my ($missing, $duplicated, $unexpected) = compare_ids($read->{ids}, \%expected);
	lake_rows_once_ok($read, scalar(keys %expected), " ($label)");
	is(scalar(@$missing), 0, "$label: no row of an active tenant is missing") or diag "missing: @$missing";
	is(scalar(@$unexpected), 0, "$label: no other row is in the lake") or diag "unexpected: @$unexpected";
	is($node->safe_psql('app', q{SELECT count(*) FROM tenants t
		LEFT JOIN interactions_cron.export_checkpoints c ON c.tenant_id = t.id
		WHERE t.status = 'active' AND (c.tenant_id IS NULL OR c.status <> 'ok' OR c.attempts <> 0
		   OR (c.last_created_at, c.last_id::bigint) <> (SELECT h.created_at, h.id FROM interaction_history h
		                                         WHERE h.tenant_id = t.id ORDER BY h.created_at DESC, h.id DESC LIMIT 1))}),
		'0', "$label: every active tenant's checkpoint is ok and at its last row");
	is($node->safe_psql('app', q{SELECT count(*) FROM interactions_cron.export_intents}), '0',
		"$label: no intent is left");
}

# upgrade runs pg_upgrade from the stopped $from, whose programs are in
# $from_bindir, to a new cluster $name of this PostgreSQL in $mode ('copy',
# pg_upgrade's default in PostgreSQL 15, which has no --copy option, or
# 'link'), starts it and returns it.
sub upgrade
{
	my ($from, $from_bindir, $name, $mode) = @_;
	my $to = PostgreSQL::Test::Cluster->new($name, @this_install);
	$to->init(extra => ['--data-checksums']);
	# pg_upgrade writes its logs below the new data directory, and a script
	# or two into the working directory.
	my $cwd = PostgreSQL::Test::Utils::tempdir();
	my ($stdout, $stderr);
	my $ok = IPC::Run::run(
		[
			"$bindir/pg_upgrade", '--no-sync',
			'-d', $from->data_dir, '-D', $to->data_dir,
			'-b', $from_bindir, '-B', $bindir,
			'-s', $to->host, '-p', $from->port, '-P', $to->port,
			$mode eq 'link' ? ('--link') : ()
		],
		'>', \$stdout, '2>', \$stderr,
		init => sub { chdir $cwd or die "cannot chdir to $cwd: $!" });
	ok($ok, "pg_upgrade in $mode mode to $name succeeds") or BAIL_OUT("pg_upgrade failed:\n$stdout\n$stderr");
	$to->start;
	return $to;
}

# Exports on the old cluster: two runs, one failing t3 alone.
add_rows($old, 50, 0);
$old->safe_psql('app', q{SET ROLE exporter; SELECT interactions_cron.export_interactions(batch_size => 20)});
is($old->safe_psql('app', q{
	SET interactions_cron.debug_fault = 'error_after_place';
	SELECT (r->>'ok') || ' ' || (r->'tenants'->0->>'error')
	FROM interactions_cron.export_interactions(batch_size => 20, tenant_id => 't3') r}),
	'false injected fault error_after_place for tenant "t3"', 'an export fails t3');
# An export killed after placing its files leaves an intent for each tenant.
my $export = $old->background_psql('app', on_error_stop => 0);
$export->query_safe(q{SET interactions_cron.debug_fault = 'sleep_after_place'; SET interactions_cron.max_workers = 1});
my $log_offset = -s $old->logfile;
$export->query_until(qr/started/,
	"\\echo started\nSELECT interactions_cron.export_interactions(batch_size => 20);\n");
is(wait_for_stalled_group($old, 'app', $log_offset, 3), 3, 'an export stalls after placing its files');
my ($worker) = split /\n/, $old->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'interactions_cron export worker'});
my $kill_offset = -s $old->logfile;
kill 'KILL', $worker or die "cannot kill $worker";
wait_for_restart($old, $kill_offset);
end_session($export);
is(read_lake($lake)->{lines}, 3 * 20 + 3 * 20,
	'the lake holds the first run\'s rows and the killed export\'s, not the failed t3 batch\'s');
is($old->safe_psql('app', 'SELECT count(*) FROM interactions_cron.export_intents'), '3',
	'the killed export left three intents');
is($old->safe_psql('app', q{SELECT string_agg(tenant_id || ':' || status || ':' || attempts, ' ' ORDER BY tenant_id)
                            FROM interactions_cron.export_checkpoints}),
	't1:ok:0 t2:ok:0 t3:failed:1', 'the old cluster: t3 has failed once');
my $state = extension_state($old, 'app');
$old->stop;

# Copy mode.
my ($old_version) = run_command([ "$old_bindir/pg_config", '--version' ]);
my ($new_version) = run_command([ "$bindir/pg_config", '--version' ]);
note "pg_upgrade from $old_version to $new_version";
my $copied = upgrade($old, $old_bindir, 'copied', 'copy');
my $after = extension_state($copied, 'app');
is($after->{$_}, $state->{$_}, "copy mode keeps $_") for sort keys %$state;
is($copied->safe_psql('app', 'SHOW interactions_cron.export_dir'), $lake,
	'copy mode keeps the per-database export_dir');
my $runs_before = $copied->safe_psql('app', 'SELECT max(id) FROM interactions_cron.job_runs');
add_rows($copied, 30, 50);
my $calls = export_all($copied, 20, 'after copy mode', 'app');
# (The crash on the old cluster made the sequence skip ahead: ids need not
# follow on from the last one without a gap.)
is($copied->safe_psql('app', qq{SELECT count(*) || ' ' || bool_and(ok) FROM interactions_cron.job_runs
                                WHERE id > $runs_before}),
	"$calls true", 'after copy mode: one ok run per export, numbered on from the old cluster\'s');
check_lake($copied, 'after copy mode');

# Link mode, from the copied cluster (the old one stays as it was).
$state = extension_state($copied, 'app');
$copied->stop;
my $linked = upgrade($copied, $bindir, 'linked', 'link');
$after = extension_state($linked, 'app');
is($after->{$_}, $state->{$_}, "link mode keeps $_") for sort keys %$state;
is($linked->safe_psql('app', 'SHOW interactions_cron.export_dir'), $lake,
	'link mode keeps the per-database export_dir');
$runs_before = $linked->safe_psql('app', 'SELECT max(id) FROM interactions_cron.job_runs');
add_rows($linked, 30, 80);
$linked->safe_psql('app', q{INSERT INTO tenants (id, name) VALUES ('t4', 'T4');
	INSERT INTO interaction_history (tenant_id, created_at) SELECT 't4', now() - g * interval '1 minute'
	FROM generate_series(2, 40) g});
my $as_exporter = psql_error($linked, 'app',
	q{SET ROLE exporter; SELECT interactions_cron.export_interactions(batch_size => 20)});
ok(!defined $as_exporter, 'after link mode: exporter\'s grants work') or diag $as_exporter;
$calls = 1 + export_all($linked, 20, 'after link mode', 'app');
is($linked->safe_psql('app', qq{SELECT count(*) || ' ' || bool_and(ok) || ' ' || min(id) || ' ' || max(id)
                                FROM interactions_cron.job_runs WHERE id > $runs_before}),
	"$calls true " . ($runs_before + 1) . ' ' . ($runs_before + $calls),
	'after link mode: one ok run per export, numbered on from the last one');
is($linked->safe_psql('app', q{SELECT count(*) FROM interactions_cron.job_runs r1 JOIN interactions_cron.job_runs r2
                               ON r1.id < r2.id AND r1.started_at > r2.started_at}),
	'0', 'run ids follow the order the runs started in, through both upgrades');
check_lake($linked, 'after link mode');
is($linked->safe_psql('app', q{SELECT count(*) FROM interaction_history h JOIN tenants t ON t.id = h.tenant_id
                               WHERE t.status = 'active'}),
	3 * 110 + 39, 'the active tenants have 369 rows');
my $cleanup = psql_error($linked, 'app', 'SELECT interactions_cron.cleanup()');
ok(!defined $cleanup, 'after link mode: cleanup() runs') or diag $cleanup;

$linked->stop;
done_testing();
