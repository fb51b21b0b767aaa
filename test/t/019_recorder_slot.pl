# A run's job_runs row with max_worker_processes tight (issue 19): one slot
# is left for the export, whose worker takes it, and the run recorder needs
# it right after, while the postmaster may not have reaped that worker yet.
# The call waits for the slot (briefly, cancellably) instead of warning
# "could not start a worker to record the export run" and recording the run
# in its own transaction, which a ROLLBACK undoes.
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

$node->stop;
done_testing();
