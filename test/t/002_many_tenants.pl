# A call over 50,000 busy tenants succeeds with default settings.
#
# Issue reproduction: with 1.0 and the default max_locks_per_transaction, a
# call over 20,000 tenants with 2 new rows each failed with "out of shared
# memory", because every tenant's advisory lock and subtransaction lock was
# held until the run's single transaction ended.  With each tenant in its own
# short transactions, the lock table only ever holds a few of them.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $tenant_count = 50_000;
my $rows_per_tenant = 2;
my $total_rows = $tenant_count * $rows_per_tenant;

# The call does 50,000 tenants' work: give it far more than the default wait,
# so that only a hung call (not a slow machine) runs into the limit.
my $call_timeout = 10 * $PostgreSQL::Test::Utils::timeout_default;

my $node = PostgreSQL::Test::Cluster->new('many_tenants');
$node->init;
my $export_dir = $node->basedir . '/exports';
# Default max_locks_per_transaction and max_worker_processes on purpose; fsync
# stays off as in every TAP cluster.
$node->append_conf('postgresql.conf', qq{
interactions_cron.export_dir = '$export_dir'
});
$node->start;

is($node->safe_psql('postgres', 'SHOW max_locks_per_transaction'), '64',
	'max_locks_per_transaction is the default');

$node->safe_psql('postgres', 'CREATE EXTENSION interactions_cron');
$node->safe_psql('postgres', slurp_file('../reference/schema.sql'));

my $started = time;
# Every tenant's rows fall on one UTC day (yesterday), well before the watermark.
$node->safe_psql('postgres', qq{
	INSERT INTO tenants (id, name)
	SELECT format('tenant_%s', lpad(t::text, 5, '0')), 'Tenant ' || t
	FROM generate_series(1, $tenant_count) t;
	INSERT INTO interaction_history (tenant_id, created_at, channel, metadata)
	SELECT format('tenant_%s', lpad(t::text, 5, '0')),
	       (date_trunc('day', now() AT TIME ZONE 'UTC') - interval '12 hours') AT TIME ZONE 'UTC'
	           + g * interval '1 minute',
	       'email', jsonb_build_object('t', t, 'g', g)
	FROM generate_series(1, $tenant_count) t, generate_series(1, $rows_per_tenant) g;
	ANALYZE;
});
note(sprintf('loaded %d tenants, %d rows in %.1f s', $tenant_count, $total_rows, time - $started));
is($node->safe_psql('postgres', 'SELECT count(*) FROM interaction_history'),
	$total_rows, 'the rows are loaded');

# One call with default settings (batch_size included).
$started = time;
my ($ret, $stdout, $stderr, $timed_out) = bounded_psql($node, 'postgres', q{
	WITH r AS MATERIALIZED (SELECT interactions_cron.export_interactions() AS j)
	SELECT j->>'ok',
	       j->>'totalExported',
	       jsonb_array_length(j->'tenants'),
	       (SELECT count(*) FROM jsonb_array_elements(j->'tenants') e
	        WHERE e ? 'error' OR (e->>'skipped')::boolean IS TRUE
	           OR (e->>'exported')::bigint <> } . $rows_per_tenant . q{)
	FROM r}, $call_timeout);
note(sprintf('export_interactions() over %d tenants took %.1f s', $tenant_count, time - $started));

ok(!$timed_out, 'the call returned');
is($ret, 0, 'the call succeeds') or diag("stderr: $stderr");
my ($ok, $total_exported, $tenants_reported, $tenants_not_exported) = split /\|/, $stdout // '';
is($ok, 'true', 'the result is ok');
is($total_exported, $total_rows, "totalExported is $total_rows");
is($tenants_reported, $tenant_count, 'every tenant is reported');
is($tenants_not_exported, 0, 'every tenant exported its two rows, none failed or was skipped');

$started = time;
# Every line must be in its own tenant's directory, exports/<tenant_id>/.
my $misplaced = 0;
my $lake = read_lake(
	$export_dir,
	on_line => sub {
		my ($row, $path) = @_;
		my (undef, $tenant_directory) = split m{/}, $path;
		$misplaced++ unless defined $row->{tenant_id} && $row->{tenant_id} eq $tenant_directory;
	});
my $copies = $lake->{ids};
note(sprintf('read %d final files in %.1f s', scalar(@{ $lake->{final_files} }), time - $started));

my %expected_ids = map { $_ => 1 } split /\n/,
  $node->safe_psql('postgres', 'SELECT id FROM interaction_history');
is(scalar(keys %expected_ids), $total_rows, 'every row has its own id');
my ($missing, $duplicated, $not_in_table) = compare_ids($copies, \%expected_ids);
is(scalar(@$missing), 0, 'every row is in a final file');
is(scalar(@$duplicated), 0, 'no row is in more than one line');
is(scalar(@$not_in_table), 0, 'no file holds a row that is not in the table');
is($misplaced, 0, 'every line is in its own tenant\'s directory');
is(scalar(@{ $lake->{final_files} }), $tenant_count, 'one file per tenant (its two rows share a day)');
is(scalar(@{ $lake->{hidden_files} }), 0, 'no temporary file is left behind');
is($node->safe_psql('postgres',
		'SELECT coalesce(sum(rows_exported), 0) FROM interactions_cron.export_checkpoints'),
	$total_rows, 'the checkpoints account for every row');

$node->stop('fast', fail_ok => 1);
done_testing();
