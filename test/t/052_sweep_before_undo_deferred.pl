# The sweep before an undo survives a lock wait cut short (hostile review 12
# of issue 19; after its reproduction).  After a restore that keeps the
# identity, taken mid-batch (as t/051), the claim about to undo the batch
# sweeps first; its judging of a file waits for a lock that partition
# maintenance holds on next month's partition (the batch query prunes it,
# the judging does not), and in a group that wait is cut short after 10 ms:
# the tenant is deferred, its transaction undone.  On 8bdd9ea, which swept
# after the undo, the files were gone by then, and the tenant written again
# (free to wait) found nothing placed and never swept: rows 14-16 in two
# files.  Now the undone batch's file and intent are still there, the
# retry sweeps again, waits for the lock, and every row is in the lake once.
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
my $restored = restored_mid_batch('undo_sweep_deferred', $lake);

# Another tenant, written before t in the same group.
node_sql($restored, q{INSERT INTO tenants (id, name) VALUES ('a', 'A')});
add_tenant_rows($restored, 3, 0, 'a');

# Partition maintenance holds next month's partition.
my $partition = node_sql($restored, q{SELECT 'interaction_history_p' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month', 'YYYY_MM')});
my $locker = $restored->background_psql('postgres', on_error_stop => 0);
$locker->query_safe("BEGIN; LOCK TABLE $partition IN ACCESS EXCLUSIVE MODE;");

my $log = -s $restored->logfile;
my $call = $restored->background_psql('postgres', on_error_stop => 0);
$call->query_until(qr/started/,
	"\\echo started\nSELECT interactions_cron.export_interactions(batch_size => 100)->>'ok';\n");
ok($restored->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity
		  WHERE backend_type = 'interactions_cron export worker' AND wait_event_type = 'Lock'}),
	'deferred, the tenant sweeps again and waits for the lock');
$locker->query_safe('COMMIT');
end_session($locker);
like($call->query_safe(q{SELECT 'the call is over'}), qr/the call is over/, 'the call ends once the lock is released');
end_session($call);
ok($restored->log_contains(qr/removing .*-14\.json", which holds rows past its tenant's checkpoint/, $log),
	'the sweep removes the lost history\'s file of rows 14-16');

export_all($restored, 100, 'after the restore');
table_rows_once_in_lake_ok($restored, $lake);
$restored->stop;
done_testing();
