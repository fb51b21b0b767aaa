# pg_dump -Fc of a database that has exported, pg_restore into a new
# database that writes into the same lake, more rows, more exports: every
# committed row of an active tenant is in exactly one file, and the run
# history goes on without an id collision (1.0 did not dump job_runs_id_seq,
# so a restored database's next run failed on job_runs_pkey).
#
# The dump is taken while an export is stalled after placing its files
# (debug_fault sleep_after_place); that export is then killed, so its files
# stay in the lake with no checkpoint behind them: the restored database must
# remove them through the intent it got from the dump, and write them again.
# Also checked: what else the dump must carry (checkpoints, the failed
# tenant's state, intents, run history, job_claims, the extension's config
# tables and their filters, grants on its objects to a role), and that a
# role with the documented grants exports from the restored database.
#
# When OLDER_PG_INSTALL names an older major installed beside this one
# (scripts/test.sh sets it in a chroot that holds two: 15 beside 17 in
# trixie's, 17 beside 18 in sid's), the dumped database runs on that major
# and is restored into a cluster of this one with this one's pg_dump and
# pg_restore, as pg_upgradecluster --method=dump does; without it, into
# another database of the same cluster.
use strict;
use warnings;

use File::Basename ();
use FindBin;
use lib $FindBin::RealBin;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $older_install = $ENV{OLDER_PG_INSTALL};
my $node = PostgreSQL::Test::Cluster->new('dump_restore',
	$older_install ? (install_path => $older_install) : ());
$node->init;
my $lake = $node->basedir . '/lake';
# One worker per tenant, so that every tenant is at the fault when the dump
# is taken; a crash of the stalled export restarts the server.
$node->append_conf('postgresql.conf', qq{
interactions_cron.max_workers = 4
restart_after_crash = on
});
$node->start;

my $timeout = $PostgreSQL::Test::Utils::timeout_default;
sub app { return $node->safe_psql('app', $_[0], timeout => $timeout); }
# The cluster the dump is restored into.
my $new = $node;
if ($older_install)
{
	# This major's programs by full path too: IPC::Run caches a program
	# found on the PATH, which the old node's commands had changed.
	my ($bindir) = run_command([ 'pg_config', '--bindir' ]);
	$new = PostgreSQL::Test::Cluster->new('restored', install_path => File::Basename::dirname($bindir));
	$new->init;
	$new->start;
	my $refused = column_options_refused($node, $new);
	plan skip_all => $refused if $refused;
}
sub restored { return $new->safe_psql('restored', $_[0], timeout => $timeout); }

# The export directory is a per-database setting: the default one is named
# after the database, so a restored database under another name would write
# into another lake.  The DBA sets it explicitly, to the same lake.
$node->safe_psql('postgres', qq{
	CREATE DATABASE app;
	ALTER DATABASE app SET interactions_cron.export_dir = '$lake';
	CREATE ROLE exporter;
});
app('CREATE EXTENSION interactions_cron');
app(slurp_file('../reference/schema.sql'));
# The README's (Getting started) grants for a role that runs the export, cleanup and resets.
app(q{
	GRANT interactions_cron_operator TO exporter;
	GRANT SELECT ON public.tenants, public.interaction_history TO exporter;
	GRANT SELECT, DELETE ON public.suppressions, public.interaction_summaries TO exporter;
});

# add_rows inserts $per_tenant rows for each tenant of $tenants (an SQL
# array) into $db ('app' on the old cluster, 'restored' on the new one),
# spread over the two UTC days before today's, $offset minutes in.
sub add_rows
{
	my ($db, $tenants, $per_tenant, $offset) = @_;
	($db eq 'app' ? $node : $new)->safe_psql($db, qq{
		INSERT INTO interaction_history (tenant_id, created_at, channel, metadata)
		SELECT t, date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '2 days'
		          + ($offset + g) * interval '17 minutes 3.25 seconds',
		       'email', jsonb_build_object('g', g, 'offset', $offset)
		FROM unnest(${tenants}::text[]) t, generate_series(1, $per_tenant) g
		ORDER BY g, t}, timeout => $timeout);
}

app(q{INSERT INTO tenants (id, name, status) VALUES
	('t1', 'T1', 'active'), ('t2', 'T2', 'active'), ('t3', 'T3', 'active'), ('t4', 'T4', 'active'),
	('gone', 'Gone', 'inactive')});
add_rows('app', q{'{t1,t2,t3,t4,gone}'}, 60, 0);

# Several runs: as the granted role, then one that fails t3 alone.
my $first = app(q{SET ROLE exporter; SELECT interactions_cron.export_interactions(batch_size => 25)->>'totalExported'});
is($first, '100', 'run 1 (as exporter) exports 25 rows of each active tenant');
app(q{SELECT interactions_cron.export_interactions(batch_size => 25)});
add_rows('app', q{'{t1,t2,t3,t4,gone}'}, 20, 60);
is(app(q{
	SET interactions_cron.debug_fault = 'error_before_place';
	SELECT (r->>'ok') || ' ' || (r->'tenants'->0->>'error')
	FROM interactions_cron.export_interactions(tenant_id => 't3') r}),
	'false injected fault error_before_place for tenant "t3"', 'run 3 fails tenant t3');
# A refused reset is recorded in the run history too.
ok(defined psql_error($node, 'app', q{SELECT interactions_cron.reset_checkpoint('t2', 'infinity')}),
	'a forward reset is refused');
is(app(q{SELECT string_agg(tenant_id || ':' || status || ':' || attempts, ' ' ORDER BY tenant_id)
          FROM interactions_cron.export_checkpoints}),
	't1:ok:0 t2:ok:0 t3:failed:1 t4:ok:0', 'before the dump: t3 has failed once');
is(app(q{SELECT string_agg(job || ':' || ok, ' ' ORDER BY id) FROM interactions_cron.job_runs}),
	'export:true export:true export:false reset_checkpoint:false', 'before the dump: four runs recorded');

# An export stalled after placing its files: the dump sees its intents.
my $export = $node->background_psql('app', on_error_stop => 0);
$export->query_safe(q{SET interactions_cron.debug_fault = 'sleep_after_place'; SET interactions_cron.max_workers = 1});
my $log_offset = -s $node->logfile;
$export->query_until(qr/started/,
	"\\echo started\nSELECT interactions_cron.export_interactions(batch_size => 30);\n");
is(wait_for_stalled_group($node, 'app', $log_offset, 4), 4, 'the stalled export placed the files of every active tenant');

# What the dump must carry, as the dump's snapshot sees it.
my $before = extension_state($node, 'app');
is(app('SELECT count(*) FROM interactions_cron.export_intents'), '4', 'four intents exist at the dump');
like($before->{acls}, qr/interactions_cron_operator=X/, 'the members\' ACLs hold the grants to the operator role');
ok(app('SELECT max(id) FROM interactions_cron.job_runs') >= 4, 'the run history has rows');
my $files_placed = read_lake($lake);
ok(scalar(@{ $files_placed->{final_files} }) > 0, 'the stalled export placed files');

my $dump = $node->basedir . '/app.dump';
$new->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('app'), '-f', $dump ],
	'pg_dump -Fc while an export is stalled');
my ($toc) = run_command([ 'pg_restore', '-l', $dump ]);
like($toc, qr/SEQUENCE SET interactions_cron job_runs_id_seq/, 'the dump sets job_runs_id_seq');
like($toc, qr/TABLE DATA interactions_cron export_intents/, 'the dump holds export_intents');

# The stalled export dies (a server crash): its files stay in the lake, with
# no checkpoint moved behind them.  The old database is retired from here on.
my @workers = split /\n/, $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'interactions_cron export worker'});
ok(@workers > 0, 'the stalled export has workers');
my $kill_offset = -s $node->logfile;
kill 'KILL', $workers[0] or die "cannot kill $workers[0]";
wait_for_restart($node, $kill_offset);
end_session($export);
is(read_lake($lake)->{lines}, $files_placed->{lines}, 'the killed export\'s files stay in the lake');

# Restore into a new database with the same export directory; into another
# cluster, the roles first, with pg_dumpall --roles-only (whose CREATE ROLE
# postgres fails there, as it exists).
if ($new != $node)
{
	my $roles = $node->basedir . '/roles.sql';
	$new->command_ok([ 'pg_dumpall', '--roles-only', '-d', $node->connstr('postgres'), '-f', $roles ],
		'pg_dumpall --roles-only of the old cluster');
	$new->psql('postgres', slurp_file($roles), on_error_stop => 0);
	$node->stop;
}
$new->safe_psql('postgres', qq{
	CREATE DATABASE restored;
	ALTER DATABASE restored SET interactions_cron.export_dir = '$lake';
});
$new->command_ok([ 'pg_restore', '--exit-on-error', '-d', $new->connstr('restored'), $dump ],
	'pg_restore into a new database succeeds without an error');

my $after = extension_state($new, 'restored');
is($after->{$_}, $before->{$_}, "the restore keeps $_ as the dump saw it") for sort keys %$before;
my $latest = restored(q{SELECT default_version FROM pg_available_extensions WHERE name = 'interactions_cron'});
is($after->{version}, $latest, "the restored extension is at the default version, $latest");
is(restored(q{SELECT last_value = (SELECT max(id) FROM interactions_cron.job_runs) AND is_called
              FROM interactions_cron.job_runs_id_seq}),
	't', 'the restored sequence continues from the last restored run id');
is(restored(q{SELECT has_function_privilege('exporter', 'interactions_cron.export_interactions(integer, text, boolean, interval)', 'EXECUTE'),
                 has_table_privilege('exporter', 'interactions_cron.export_checkpoints', 'SELECT'),
                 NOT has_table_privilege('exporter', 'interactions_cron.export_checkpoints', 'UPDATE'),
                 has_schema_privilege('exporter', 'interactions_cron', 'USAGE'),
                 NOT has_function_privilege('public', 'interactions_cron.cleanup()', 'EXECUTE')}),
	't|t|t|t|t', 'the restored grants: exporter has them (no write on checkpoints), PUBLIC does not');

# More rows, then exports from the restored database until it catches up:
# first as the granted role.
my $max_run_before = restored('SELECT max(id) FROM interactions_cron.job_runs');
add_rows('restored', q{'{t1,t2,t3,t4,gone}'}, 25, 80);
restored(q{INSERT INTO tenants (id, name) VALUES ('t5', 'T5')});
add_rows('restored', q{'{t5}'}, 40, 10);
my $as_exporter = psql_error($new, 'restored',
	q{SET SESSION AUTHORIZATION exporter; SELECT interactions_cron.export_interactions(batch_size => 30)});
ok(!defined $as_exporter, 'exporter exports from the restored database') or diag $as_exporter;
is(restored('SELECT count(*) FROM interactions_cron.export_intents'), '0',
	'the first export of every tenant removed its restored intent');
my $calls = 1;
my ($caught_up, @problems) = export_until_done(
	sub { $calls++; restored('SELECT interactions_cron.export_interactions(batch_size => 30)') }, 20);
ok($caught_up, 'the restored database caught up');
is(scalar(@problems), 0, 'every export from the restored database succeeded for every tenant')
  or diag join("\n", @problems);
my $cleanup = psql_error($new, 'restored', 'SELECT interactions_cron.cleanup()');
ok(!defined $cleanup, 'cleanup() runs in the restored database (job_claims came through)') or diag $cleanup;

# The lake: every row of an active tenant of the restored database, once.
my $read = read_lake($lake);
my %expected = map { $_ => 1 } split /\n/, restored(
	q{SELECT h.id FROM interaction_history h JOIN tenants t ON t.id = h.tenant_id WHERE t.status = 'active'});
my ($missing, $duplicated, $unexpected) = compare_ids($read->{ids}, \%expected);
is(scalar(keys %expected), 4 * 105 + 40, 'the active tenants have 460 rows');
lake_rows_once_ok($read, scalar(keys %expected));
is(scalar(@$missing), 0, 'no row of an active tenant is missing') or diag "missing: @$missing";
is(scalar(@$unexpected), 0, 'no row of an inactive tenant, nor any other, is in the lake')
  or diag "unexpected: @$unexpected";
ok(!-e "$lake/exports/gone", 'the inactive tenant has no directory');
is(scalar(@{ read_lake($lake, under => '.spool')->{final_files} }), 0, 'the spool holds no file');

# The checkpoints and the run history account for it.
is(restored(q{SELECT count(*) FROM tenants t
	LEFT JOIN interactions_cron.export_checkpoints c ON c.tenant_id = t.id
	WHERE t.status = 'active' AND (c.tenant_id IS NULL OR c.status <> 'ok' OR c.attempts <> 0
	   OR (c.last_created_at, c.last_id::bigint) <> (SELECT h.created_at, h.id FROM interaction_history h
	                                         WHERE h.tenant_id = t.id ORDER BY h.created_at DESC, h.id DESC LIMIT 1))}),
	'0', 'every active tenant\'s checkpoint is ok and at its last row (t3 recovered)');
is(restored(qq{SELECT count(*) || ' ' || bool_and(ok) || ' ' || count(DISTINCT id) || ' ' || min(id)::text
               FROM interactions_cron.job_runs WHERE job = 'export' AND id > $max_run_before}),
	"$calls true $calls " . ($max_run_before + 1),
	'each export from the restored database has one ok run, numbered on from the dumped ones');
is(restored(qq{SELECT string_agg(run_by, ',' ORDER BY id) FROM interactions_cron.job_runs
               WHERE id = $max_run_before + 1}), 'exporter', 'the first restored run is the exporter\'s (its session user)');
is(restored(q{SELECT count(*) FROM interactions_cron.job_runs r1 JOIN interactions_cron.job_runs r2
              ON r1.id < r2.id AND r1.started_at > r2.started_at}),
	'0', 'run ids follow the order the runs started in');

# A dump of a 1.0 database does not hold job_runs_id_seq (1.0 did not mark
# it).  pg_restore creates the extension at the default version and loads
# 1.0's rows into it: the next run collides with a restored id, until the
# setval() of doc/operations.md puts the sequence past them.
my $legacy_lake = $new->basedir . '/legacy_lake';
$new->safe_psql('postgres', qq{
	CREATE DATABASE legacy;
	CREATE DATABASE legacy_restored;
	ALTER DATABASE legacy_restored SET interactions_cron.export_dir = '$legacy_lake';
});
$new->safe_psql('legacy', q{CREATE EXTENSION interactions_cron VERSION '1.0'});
$new->safe_psql('legacy', slurp_file('../reference/schema.sql'));
$new->safe_psql('legacy', q{
	INSERT INTO tenants (id, name) VALUES ('l1', 'L1');
	INSERT INTO interaction_history (tenant_id, created_at) SELECT 'l1', now() - g * interval '1 minute'
	FROM generate_series(2, 11) g;
	INSERT INTO interactions_cron.job_runs (job, started_at, finished_at, ok)
	SELECT 'export', now(), now(), true FROM generate_series(1, 3);
});
my $legacy_dump = $new->basedir . '/legacy.dump';
$new->command_ok([ 'pg_dump', '-Fc', '-d', $new->connstr('legacy'), '-f', $legacy_dump ], 'pg_dump of a 1.0 database');
($toc) = run_command([ 'pg_restore', '-l', $legacy_dump ]);
unlike($toc, qr/SEQUENCE SET interactions_cron job_runs_id_seq/, 'the 1.0 dump does not set job_runs_id_seq');
$new->command_ok([ 'pg_restore', '--exit-on-error', '-d', $new->connstr('legacy_restored'), $legacy_dump ],
	'pg_restore of the 1.0 dump');
is($new->safe_psql('legacy_restored', q{SELECT extversion FROM pg_extension WHERE extname = 'interactions_cron'}),
	$latest, "the restore of a 1.0 dump creates the extension at the default version, $latest");
like(psql_error($new, 'legacy_restored', 'SELECT interactions_cron.export_interactions()') // '',
	qr/job_runs_pkey/, 'without the fix, the run history collides with the restored ids (the 1.0 bug)');
$new->safe_psql('legacy_restored',
	q{SELECT setval('interactions_cron.job_runs_id_seq', max(id)) FROM interactions_cron.job_runs});
# (The failed call's workers had committed the tenant: only its record failed.)
is($new->safe_psql('legacy_restored', q{SELECT interactions_cron.export_interactions()->>'ok'}),
	'true', 'after the README\'s setval() the restored 1.0 database\'s export succeeds');
is($new->safe_psql('legacy_restored', q{SELECT string_agg(id::text, ',' ORDER BY id) FROM interactions_cron.job_runs}),
	'1,2,3,4', 'and records its run after the restored ones');
lake_rows_once_ok(read_lake($legacy_lake), 10, ' of the restored 1.0 database');

$new->stop;
done_testing();
