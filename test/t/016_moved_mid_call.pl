# A tenant moved to another database while a call that listed it still runs
# (issue 19, 1): the call lists its tenants when it starts, its one worker is
# held on the tenant before (a row-level policy waits on an advisory lock the
# test holds, in the worker only), and meanwhile the DBA follows the
# doc/operations.md's "Moving a tenant to another database": out of the export, rows
# copied, tenant_state(release => true), adopt_tenant_state in the other
# database, which exports it on.  When the held worker reaches the tenant,
# it must neither export it again nor give it a new checkpoint.  Then a
# placed file never replaces one already in the lake: the clash fails the
# tenant, the file stays, and no intent names it.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use JSON::PP;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $timeout = $PostgreSQL::Test::Utils::timeout_default;
my $lake = shared_lake();

sub sql
{
	my ($node, $query) = @_;
	return $node->safe_psql('postgres', $query, timeout => $timeout);
}

# new_database starts a cluster exporting into the shared lake, with its
# own range of history ids.
sub new_database
{
	my ($name, $first_id) = @_;
	return new_tenant_database($name, $first_id, qq{
interactions_cron.export_dir = '$lake'
max_worker_processes = 16
});
}

# check_lake checks the lake against the rows of the active tenants of both.
sub check_lake
{
	my ($label, @nodes) = @_;
	my %expected;
	for my $node (@nodes)
	{
		$expected{$_} = 1 for split /\n/, sql($node, q{
			SELECT h.id FROM interaction_history h JOIN tenants t ON t.id = h.tenant_id
			WHERE t.status = 'active'});
	}
	my $read = read_lake($lake);
	my ($missing, $duplicated, $unexpected) = compare_ids($read->{ids}, \%expected);
	is(scalar(@$missing) + scalar(@$duplicated) + scalar(@$unexpected), 0,
		"$label: the lake holds each active row of both databases once, and nothing else")
	  or diag "missing @$missing; duplicated @$duplicated; unexpected @$unexpected";
}

my $a = new_database('source', 1);
my $b = new_database('destination', 1_000_000);
sql($a, q{INSERT INTO tenants (id, name) VALUES ('a1', 'A1'), ('mover', 'Mover')});
add_tenant_rows($a, 35, 0, qw(a1 mover));
export_all($a, 25, 'before the move');
check_lake('before the move', $a, $b);

# New rows for both; the next call's worker is held on a1 (it comes first)
# by a policy that waits for the test's advisory lock in workers only (a
# security definer function: the owner could not see its backend type), so
# that the call has listed the mover before the move and reaches it after.
add_tenant_rows($a, 10, 40, qw(a1 mover));
sql($a, q{
	CREATE ROLE history_owner;
	CREATE FUNCTION public.hold_workers(tenant text) RETURNS boolean LANGUAGE plpgsql VOLATILE
	SECURITY DEFINER SET search_path = pg_catalog AS $$
	BEGIN
		IF tenant = 'a1' AND (SELECT backend_type FROM pg_catalog.pg_stat_activity
		                      WHERE pid = pg_catalog.pg_backend_pid()) <> 'client backend' THEN
			PERFORM pg_catalog.pg_advisory_lock_shared(4242);
			PERFORM pg_catalog.pg_advisory_unlock_shared(4242);
		END IF;
		RETURN true;
	END $$;
	ALTER TABLE interaction_history OWNER TO history_owner;
	DO $$
	DECLARE partition regclass;
	BEGIN
		-- The export refuses a partition of another owner than its table's.
		FOR partition IN SELECT inhrelid::regclass FROM pg_inherits
		                 WHERE inhparent = 'interaction_history'::regclass LOOP
			EXECUTE format('ALTER TABLE %s OWNER TO history_owner', partition);
		END LOOP;
	END $$;
	ALTER TABLE tenants OWNER TO history_owner;
	ALTER TABLE interaction_history ENABLE ROW LEVEL SECURITY;
	ALTER TABLE interaction_history FORCE ROW LEVEL SECURITY;
	CREATE POLICY hold ON interaction_history USING (public.hold_workers(tenant_id))});
my $holder = $a->background_psql('postgres', on_error_stop => 0);
$holder->query_safe('SELECT pg_advisory_lock(4242)');
my $caller = $a->background_psql('postgres', on_error_stop => 0);
$caller->query_safe('SET interactions_cron.max_workers = 1');
$caller->query_until(qr/started/,
	"\\echo started\nSELECT interactions_cron.export_interactions(batch_size => 5) AS held_call;\n");
ok($a->poll_query_until('postgres',
		q{SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted}, 't'),
	'the call\'s worker is held before the mover');

# The move, by doc/operations.md: out of the export, rows copied, state handed over.
sql($a, q{UPDATE tenants SET status = 'moving' WHERE id = 'mover'});
my $rows = sql($a, q{COPY (SELECT * FROM interaction_history WHERE tenant_id = 'mover' ORDER BY id) TO STDOUT});
my $state = sql($a, q{SELECT interactions_cron.tenant_state('mover', release => true)});
sql($b, q{INSERT INTO tenants (id, name, status) VALUES ('mover', 'Mover', 'suspended')});
sql($b, "COPY interaction_history FROM STDIN;\n$rows\n\\.\n");
sql($b, "SELECT interactions_cron.adopt_tenant_state(\$state\$$state\$state\$::jsonb)");
sql($b, q{UPDATE tenants SET status = 'active' WHERE id = 'mover'});
export_all($b, 5, 'the destination');

# The held call goes on.
$holder->query_safe('SELECT pg_advisory_unlock(4242)');
$caller->query_until(qr/done/, "\\echo done\n");
end_session($caller);
end_session($holder);
sql($a, q{DELETE FROM interaction_history WHERE tenant_id = 'mover'; DELETE FROM tenants WHERE id = 'mover'});

is(sql($a, q{SELECT count(*) FROM interactions_cron.export_checkpoints
             WHERE tenant_id = 'mover' AND status <> 'released'}),
	'0', 'the source has no live checkpoint of the mover: the held call did not make one');
is(sql($a, q{SELECT count(*) FROM interactions_cron.job_runs
             WHERE job = 'export' AND result->'tenants' @> '[{"tenantId": "mover", "skipped": true}]'}),
	'1', 'the held call reports the mover skipped: no longer exported there');
export_all($a, 5, 'the source after the move');
check_lake('after the move', $a, $b);

# The mover's state cannot be taken again where it was released, and a
# reset there needs force.
sql($a, q{INSERT INTO tenants (id, name) VALUES ('mover', 'Mover')});
add_tenant_rows($a, 1, 90, qw(mover));
like(psql_error($a, 'postgres', q{SELECT interactions_cron.tenant_state('mover')}) // '',
	qr/55000: the state of tenant "mover" was released/, 'a released state is not taken twice');
like(psql_error($a, 'postgres', q{SELECT interactions_cron.reset_checkpoint('mover')}) // '',
	qr/55000: the state of tenant "mover" was released/, 'a released tenant is not reset without force');
my $again = decode_json(sql($a, q{SELECT interactions_cron.export_interactions()}));
my ($mover) = grep { $_->{tenantId} eq 'mover' } @{ $again->{tenants} };
ok($mover && $mover->{skipped} && !$mover->{exported},
	'a released tenant let into the filter again is not exported before its state is adopted');
is(sql($a, q{SELECT status FROM interactions_cron.export_checkpoints WHERE tenant_id = 'mover'}), 'released',
	'its checkpoint stays released');
sql($a, q{DELETE FROM interaction_history WHERE tenant_id = 'mover'; DELETE FROM tenants WHERE id = 'mover'});

# A placed file never replaces one in the lake: a file already at the name
# the next batch of a1 takes fails a1, stays as it was, and is named by no
# intent, so nothing undoes it; once it is gone, a1 exports.
add_tenant_rows($a, 3, 60, qw(a1));
my $dry = decode_json(sql($a, q{SELECT interactions_cron.export_interactions(tenant_id => 'a1', dry_run => true)}));
my $next_file = $dry->{tenants}[0]{files}[0];
ok(defined $next_file, "the next file of a1 is $next_file");
PostgreSQL::Test::Utils::append_to_file("$lake/$next_file", "{\"id\": -1}\n");
my $clash = decode_json(sql($a, q{SELECT interactions_cron.export_interactions(tenant_id => 'a1')}));
like($clash->{tenants}[0]{error} // '', qr/already exists/, 'a1 fails: its file already exists');
is(slurp_file("$lake/$next_file"), "{\"id\": -1}\n", 'the file in the lake is untouched');
is(sql($a, q{SELECT count(*) FROM interactions_cron.export_intents WHERE '} . $next_file . q{' = ANY (files)}),
	'0', 'no intent names the file that was there first');
sql($a, q{SELECT interactions_cron.export_interactions(tenant_id => 'a1')});
is(slurp_file("$lake/$next_file"), "{\"id\": -1}\n", 'a retry leaves it too');
unlink "$lake/$next_file" or die "unlink: $!";
export_all($a, 5, 'the source once the clash is cleared');
check_lake('after the clash', $a, $b);

$a->stop;
$b->stop;
done_testing();
