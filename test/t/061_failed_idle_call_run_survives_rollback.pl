# Hostile review 14 of issue 19, finding 2: "an export that started no worker
# records its run in the caller's transaction" also takes in calls that
# FAILED without starting a worker: an open prepared transaction (or a
# silent writer) past watermark_wait fails every tenant with rows waiting
# (FailAll), and a call whose every pending tenant is held behind the clock
# starts none either.  Such a run (ok false) is written in the caller's
# transaction, so BEGIN; SELECT export_interactions(); ROLLBACK; leaves no
# trace of the failure in job_runs or interactions_cron_job_runs_total,
# while doc/jobs.md says such a call is one where "no tenant had rows
# waiting", and the same section promises that an export's row survives the
# caller's ROLLBACK.  On 43c956e the failed run was recorded on its own.
# Failed on b1ec0c6; only a call that succeeded is recorded in the caller's
# transaction now.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use JSON::PP;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $lake = shared_lake();
my $node = extension_node('failed_idle_call',
	"interactions_cron.export_dir = '$lake'\nmax_prepared_transactions = 2\n");
node_sql($node, q{INSERT INTO tenants (id, name) VALUES ('t', 'T');
	INSERT INTO interaction_history (tenant_id, created_at, channel) VALUES ('t', now() - interval '1 hour', 'sms')});
node_sql($node, q{BEGIN;
	INSERT INTO interaction_history (tenant_id, created_at, channel) VALUES ('t', now(), 'prepared');
	PREPARE TRANSACTION 'held'});

my $result = node_sql($node, q{SET interactions_cron.watermark_wait = '100ms';
	BEGIN;
	SELECT (r->>'ok') || ' ' || (r->'tenants'->0->>'error') FROM interactions_cron.export_interactions() r;
	ROLLBACK;});
like($result, qr/^false not exported: a prepared transaction/, 'the call fails its tenant: a prepared transaction is open');
is(node_sql($node, q{SELECT count(*) FROM interactions_cron.job_runs WHERE job = 'export' AND NOT ok}), '1',
	'the failed run is in job_runs after the caller\'s ROLLBACK');

node_sql($node, q{COMMIT PREPARED 'held'});
$node->stop;
done_testing();
