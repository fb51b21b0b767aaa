# Upgrade from 1.0: a 1.0 install that has exported keeps its checkpoints
# and files through ALTER EXTENSION ... UPDATE (to the default version, by
# every update script on the way), goes on exporting exactly once, and ends
# with the same catalog objects as a fresh install.
# Before the update, the 1.1 library refuses to work on the 1.0 objects.
use strict;
use warnings;

use File::Basename qw(basename dirname);
use File::Find;
use File::Path qw(make_path);
use FindBin;
use lib $FindBin::RealBin;
use LakeCheck;
use ExtensionCatalog;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my ($node, $export_dir) = start_upgrade_node('upgrade');

# Every statement is bounded: a hung call fails the test instead of hanging it.
my $timeout = $PostgreSQL::Test::Utils::timeout_default;
sub fresh { return $node->safe_psql('fresh', $_[0], timeout => $timeout); }
sub upgraded { return $node->safe_psql('upgraded', $_[0], timeout => $timeout); }

# lake_files returns {path relative to export_dir => content} of every file
# (hidden ones included) under export_dir.
sub lake_files
{
	my %files;
	return \%files unless -d $export_dir;
	find(
		{
			no_chdir => 1,
			wanted => sub {
				return unless -f $File::Find::name;
				open my $fh, '<:raw', $File::Find::name or die "cannot read $File::Find::name: $!";
				local $/;
				my $content = <$fh> // '';
				close $fh;
				(my $relative = $File::Find::name) =~ s{^\Q$export_dir\E/}{};
				$files{$relative} = $content;
			}
		},
		$export_dir);
	return \%files;
}

# same_files compares two {path => content} maps, naming the paths that differ.
sub same_files
{
	my ($got, $expected, $test_name) = @_;
	my @differ = grep { !exists $got->{$_} || !exists $expected->{$_} || $got->{$_} ne $expected->{$_} }
	  sort keys %{ { %$got, %$expected } };
	is(scalar(@differ), 0, $test_name)
	  or diag join("\n", map { (exists $expected->{$_} ? (exists $got->{$_} ? 'changed' : 'removed') : 'added') . " $_" } @differ);
}

# An error with its SQLSTATE (VERBOSITY verbose) on stderr, or undef.
sub error_of { return psql_error($node, @_); }

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('postgres', 'CREATE DATABASE upgraded');

# fresh: the default version.
fresh('CREATE EXTENSION interactions_cron');
my $latest = fresh(q{SELECT default_version FROM pg_available_extensions WHERE name = 'interactions_cron'});
is(fresh(q{SELECT extversion FROM pg_extension WHERE extname = 'interactions_cron'}), $latest,
	"fresh: CREATE EXTENSION installs the default version, $latest");

# upgraded: 1.0, with data a 1.0 install has partly exported.
upgraded(q{CREATE EXTENSION interactions_cron VERSION '1.0'});
is(upgraded(q{SELECT extversion FROM pg_extension WHERE extname = 'interactions_cron'}), '1.0',
	'upgraded: version 1.0 is installed');
upgraded(slurp_file('../reference/schema.sql'));
upgraded(q{
	INSERT INTO tenants (id, name) SELECT 'tenant_' || t, 'Tenant ' || t FROM generate_series(1, 4) t;
	-- 50 rows a tenant on each of two UTC days, some of them sharing a created_at.
	INSERT INTO interaction_history (tenant_id, created_at, channel, metadata)
	SELECT 'tenant_' || t,
	       date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
	         - d * interval '1 day' + (g / 2) * interval '13 minutes 1.234567 seconds',
	       'sms', jsonb_build_object('d', d, 'g', g)
	FROM generate_series(3, 2, -1) d, generate_series(1, 50) g, generate_series(1, 4) t
	ORDER BY d DESC, g, t;
});

# What 1.0 exported, in batches of rows (numbered per tenant in export
# order): tenant_1 two batches (the second crossing midnight: 3 files),
# tenant_2 one, tenant_3 one and then failed twice, tenant_4 never.
upgraded(q{
	CREATE TABLE legacy_plan (tenant_id text, batch int, first_rn int, last_rn int);
	INSERT INTO legacy_plan VALUES ('tenant_1', 1, 1, 25), ('tenant_1', 2, 26, 70),
	                               ('tenant_2', 1, 1, 30), ('tenant_3', 1, 1, 10);
	CREATE TABLE legacy_rows AS
	WITH numbered AS (
	    SELECT h.*, row_number() OVER (PARTITION BY h.tenant_id ORDER BY h.created_at, h.id) AS rn
	    FROM interaction_history h
	), chosen AS (
	    SELECT n.*, p.batch, (n.created_at AT TIME ZONE 'UTC')::date AS day
	    FROM numbered n JOIN legacy_plan p ON p.tenant_id = n.tenant_id AND n.rn BETWEEN p.first_rn AND p.last_rn
	)
	SELECT c.id, c.tenant_id, c.created_at,
	       -- 1.0 names: the file's first row, in milliseconds.
	       format('exports/%s/interaction_history/year=%s/month=%s/day=%s/batch-%s-%s.json',
	              c.tenant_id, to_char(c.day, 'YYYY'), to_char(c.day, 'MM'), to_char(c.day, 'DD'),
	              to_char(first_value(c.created_at) OVER w AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24-MI-SS-MS"Z"'),
	              first_value(c.id) OVER w) AS path,
	       jsonb_build_object('id', c.id, 'tenant_id', c.tenant_id,
	                          'created_at', to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
	                          'contact_id', c.contact_id, 'channel', c.channel, 'direction', c.direction,
	                          'event_type', c.event_type, 'score', c.score, 'metadata', c.metadata)::text AS line
	FROM chosen c
	WINDOW w AS (PARTITION BY c.tenant_id, c.batch, c.day ORDER BY c.created_at, c.id);

	INSERT INTO interactions_cron.export_checkpoints
	    (tenant_id, last_created_at, last_id, status, last_error, attempts, last_file,
	     rows_exported, files_written, last_success_at, updated_at)
	SELECT DISTINCT ON (r.tenant_id) r.tenant_id, r.created_at, r.id,
	       CASE r.tenant_id WHEN 'tenant_3' THEN 'failed' ELSE 'ok' END,
	       CASE r.tenant_id WHEN 'tenant_3' THEN 'could not write file: No space left on device' END,
	       CASE r.tenant_id WHEN 'tenant_3' THEN 2 ELSE 0 END,
	       r.path,
	       (SELECT count(*) FROM legacy_rows x WHERE x.tenant_id = r.tenant_id),
	       (SELECT count(DISTINCT x.path) FROM legacy_rows x WHERE x.tenant_id = r.tenant_id),
	       timestamptz '2026-01-02 03:04:05.678901+00',
	       CASE r.tenant_id WHEN 'tenant_3' THEN timestamptz '2026-01-03 00:00:00.5+00'
	                        ELSE timestamptz '2026-01-02 03:04:05.678901+00' END
	FROM legacy_rows r
	ORDER BY r.tenant_id, r.created_at DESC, r.id DESC;

	INSERT INTO interactions_cron.job_runs (job, started_at, finished_at, ok, result)
	VALUES ('export', '2026-01-02 03:04:05+00', '2026-01-02 03:04:06+00', true, '{"ok": true, "totalExported": 110}');
});
for my $entry (split /\n/, upgraded(q{SELECT path || E'\t' || line FROM legacy_rows ORDER BY path, created_at, id}))
{
	my ($path, $line) = split /\t/, $entry, 2;
	make_path(dirname("$export_dir/$path"));
	PostgreSQL::Test::Utils::append_to_file("$export_dir/$path", "$line\n");
}
my $legacy_files = lake_files();
is(scalar(keys %$legacy_files), 5, 'the 1.0 export wrote 5 files');

my $checkpoints_query = q{
	SELECT tenant_id, last_created_at, last_id, status, last_error, attempts, last_file,
	       rows_exported, files_written, last_success_at, updated_at
	FROM interactions_cron.export_checkpoints WHERE tenant_id <> 'reset_in_1_0' ORDER BY tenant_id};
my $job_runs_query = q{
	SELECT id, job, started_at, finished_at, ok, result, error, run_by
	FROM interactions_cron.job_runs ORDER BY id};
my $checkpoints_1_0 = upgraded($checkpoints_query);
my @checkpoint_lines = split /\n/, $checkpoints_1_0;
is(scalar(@checkpoint_lines), 3, 'three 1.0 checkpoints');

# The library with the 1.0 objects: every entry point refuses to run.
for my $call (
	'SELECT interactions_cron.export_interactions()',
	q{SELECT interactions_cron.export_interactions(tenant_id => 'tenant_1')},
	'SELECT interactions_cron.export_interactions(dry_run => true)',
	q{SELECT interactions_cron.reset_checkpoint('tenant_2')},
	q{SELECT interactions_cron.reset_checkpoint('tenant_2', now())},
	'SELECT interactions_cron.cleanup()')
{
	my $error = error_of('upgraded', $call);
	ok(defined $error, "before the update: $call fails");
	$error //= '';
	like($error, qr/ERROR:\s+55000:/, "before the update: $call fails with SQLSTATE 55000");
	like($error, qr/HINT:.*ALTER EXTENSION.*UPDATE/s, "before the update: $call hints at ALTER EXTENSION ... UPDATE");
}
is(upgraded($checkpoints_query), $checkpoints_1_0, 'before the update: the checkpoints are untouched');
same_files(lake_files(), $legacy_files, 'before the update: nothing was written');

my $job_runs_1_0 = upgraded($job_runs_query);

# A 1.0 checkpoint at 1.0's "before every id" position (the smallest bigint,
# as reset_checkpoint and a new checkpoint wrote it).
upgraded(q{INSERT INTO interactions_cron.export_checkpoints (tenant_id, last_created_at)
           VALUES ('reset_in_1_0', '2026-01-01 00:00:00+00')});
is(upgraded(q{SELECT last_id FROM interactions_cron.export_checkpoints WHERE tenant_id = 'reset_in_1_0'}),
	'-9223372036854775808', '1.0 stores "before every id" as the smallest bigint');

# A role set up with the grants 1.0's README documented.
upgraded(q{
	CREATE ROLE exporter_1_0;
	GRANT USAGE ON SCHEMA interactions_cron TO exporter_1_0;
	GRANT EXECUTE ON FUNCTION interactions_cron.export_interactions(integer, text, boolean) TO exporter_1_0;
	GRANT SELECT, INSERT, UPDATE ON interactions_cron.export_checkpoints TO exporter_1_0;
	GRANT INSERT ON interactions_cron.job_runs TO exporter_1_0;
	GRANT EXECUTE ON FUNCTION interactions_cron.cleanup() TO exporter_1_0;
	GRANT SELECT, DELETE ON public.suppressions, public.interaction_summaries, interactions_cron.job_runs TO exporter_1_0;
	GRANT SELECT ON public.tenants, public.interaction_history TO exporter_1_0;
	GRANT EXECUTE ON FUNCTION interactions_cron.reset_checkpoint(text, timestamptz) TO exporter_1_0;
});

# The update.
update_extension_ok($node, 'upgraded', $latest);
is(upgraded($checkpoints_query), $checkpoints_1_0, 'the update keeps every checkpoint row as it was');
is(upgraded(q{SELECT format_type(atttypid, atttypmod) FROM pg_attribute
              WHERE attrelid = 'interactions_cron.export_checkpoints'::regclass AND attname = 'last_id'}),
	'text', 'the update makes last_id the id\'s text form, for any id type');
is(upgraded(q{SELECT (last_created_at = '2026-01-01 00:00:00+00') || ' ' || coalesce(last_id, 'NULL')
              FROM interactions_cron.export_checkpoints WHERE tenant_id = 'reset_in_1_0'}),
	'true NULL', 'the smallest bigint becomes NULL: every id from that instant on');
upgraded(q{DELETE FROM interactions_cron.export_checkpoints WHERE tenant_id = 'reset_in_1_0'});
is(upgraded($job_runs_query), $job_runs_1_0, 'the update keeps the run history');
is(upgraded(q{SELECT to_regclass('interactions_cron.export_intents') IS NOT NULL}), 't', 'the intents table exists');
is(upgraded(q{SELECT string_agg(p.oid::regprocedure::text, ' ') FROM pg_proc p
              WHERE p.pronamespace = 'interactions_cron'::regnamespace AND p.proname = 'reset_checkpoint'}),
	'interactions_cron.reset_checkpoint(text,timestamp with time zone,boolean)',
	'reset_checkpoint has its 1.1 signature only');
same_files(lake_files(), $legacy_files, 'the update writes no file');

# 1.0's grants keep working: the new reset_checkpoint has the old one's
# grant, and the new tables need none.
is(upgraded(q{SELECT has_function_privilege('exporter_1_0',
                'interactions_cron.reset_checkpoint(text, timestamptz, boolean)', 'EXECUTE')}),
	't', 'the grant on reset_checkpoint is carried over to its 1.1 signature');
my $as_exporter = error_of('upgraded', q{SET ROLE exporter_1_0;
	SELECT interactions_cron.export_interactions(tenant_id => 'tenant_4', dry_run => true);
	SELECT interactions_cron.reset_checkpoint('tenant_4');
	SELECT interactions_cron.cleanup()});
ok(!defined $as_exporter, "a role with 1.0's grants exports, resets and cleans up after the update")
  or diag $as_exporter;
# The update's grants are the extension's initial privileges, which from 17
# on keep the role from being dropped until DROP OWNED BY removes them.
upgraded(q{
	DROP OWNED BY exporter_1_0;
	DROP ROLE exporter_1_0;
});

# The same catalog as a fresh install.
my $fresh_catalog = fresh(describe_extension_sql());
my $upgraded_catalog = upgraded(describe_extension_sql());
like($fresh_catalog, qr/^== table interactions_cron\.export_intents$/m, 'the description covers export_intents');
like($fresh_catalog, qr/^== function interactions_cron\.export_interactions\(/m,
	'the description covers export_interactions()');
compare_text($upgraded_catalog, $fresh_catalog, 'upgraded.txt', 'fresh.txt',
	'the upgraded extension has the same objects as a fresh install');

# Export after the update: from the 1.0 positions on, exactly once.
upgraded(q{
	INSERT INTO interaction_history (tenant_id, created_at, channel, metadata)
	SELECT 'tenant_' || t,
	       date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
	         - d * interval '1 day' + interval '23 hours' + g * interval '59.123456 seconds',
	       'push', jsonb_build_object('d', d, 'g', g, 'after', 'update')
	FROM generate_series(2, 1, -1) d, generate_series(1, 25) g, generate_series(1, 4) t
	ORDER BY d DESC, g, t;
});
my $dry_run = error_of('upgraded', 'SELECT interactions_cron.export_interactions(dry_run => true)');
ok(!defined $dry_run, 'after the update: a dry run works') or diag $dry_run;
same_files(lake_files(), $legacy_files, 'the dry run writes no file');

my ($caught_up, @problems) = export_until_done(
	sub { upgraded('SELECT interactions_cron.export_interactions(batch_size => 40)') }, 30);
ok($caught_up, 'the exports after the update caught up');
is(scalar(@problems), 0, 'every export after the update succeeded for every tenant') or diag join("\n", @problems);

# The whole export directory, its spool (.spool) included: a hidden file
# anywhere there is a temporary file left behind, every other file is read.
my $read = read_lake($export_dir, under => '');
my @bad_names = grep {
	!exists $legacy_files->{$_}
	  && basename($_) !~ /^batch-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{6}Z-\d+\.json\z/
} @{ $read->{final_files} };
my %in_table = map { $_ => 1 } split /\n/, upgraded('SELECT id FROM interaction_history');
my ($missing, $duplicated, $not_in_table) = compare_ids($read->{ids}, \%in_table);
is(scalar(keys %in_table), 600, 'the table has 600 rows');
is(scalar(@$missing), 0, 'every row is in a file (1.0 files and 1.1 files)') or diag "missing: @$missing";
is(scalar(@$duplicated), 0, 'no row is in more than one line') or diag "duplicated: @$duplicated";
is(scalar(@$not_in_table), 0, 'every line is a row of the table') or diag "not in the table: @$not_in_table";
is(scalar(@{ $read->{hidden_files} }), 0, 'no hidden temporary file is left') or diag explain $read->{hidden_files};
is(scalar(@bad_names), 0, 'the new files have 1.1 names (microseconds)') or diag explain \@bad_names;
my $lake = lake_files();
same_files({ map { exists $lake->{$_} ? ($_ => $lake->{$_}) : () } keys %$legacy_files },
	$legacy_files, 'the 1.0 files are still there, unchanged');

is(upgraded('SELECT sum(rows_exported) FROM interactions_cron.export_checkpoints'), '600',
	'the checkpoints (1.0 totals included) account for every row');
is(upgraded(q{
	SELECT count(*) FROM tenants t
	LEFT JOIN interactions_cron.export_checkpoints c ON c.tenant_id = t.id
	WHERE c.tenant_id IS NULL OR c.status <> 'ok' OR c.attempts <> 0 OR c.last_error IS NOT NULL
	   OR (c.last_created_at, c.last_id::bigint) <> (SELECT h.created_at, h.id FROM interaction_history h
	                                         WHERE h.tenant_id = t.id
	                                         ORDER BY h.created_at DESC, h.id DESC LIMIT 1)}),
	'0', 'every checkpoint is ok and at its tenant\'s last row (the failed 1.0 tenant recovered)');
if (upgraded(q{SELECT to_regclass('interactions_cron.export_intents') IS NOT NULL}) eq 't')
{
	is(upgraded('SELECT count(*) FROM interactions_cron.export_intents'), '0', 'no intent is left');
}
else
{
	fail('no intent is left (there is no intents table)');
}
my $cleanup = error_of('upgraded', 'SELECT interactions_cron.cleanup()');
ok(!defined $cleanup, 'after the update: cleanup() works') or diag $cleanup;

$node->stop;
done_testing();
