# t/035's switchover to a standby 12 s behind, with one difference: a
# transaction that began while the new primary's clock was still behind the
# checkpoint (its row is stamped behind it) is still open when the first
# call after the clock passed the checkpoint runs.  That call's watermark
# is the open transaction's start, behind the checkpoint, so its claim
# neither looks for late rows, which it could not see yet, nor records the
# new history; once the transaction commits, the next claim finds its row
# and holds the tenant back.  In 7a33912 the first claim looked, found
# nothing, recorded the history, and the row was passed over in silence
# (hostile review of 7a33912).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use JSON::PP;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

require_libfaketime();

my $timeout = $PostgreSQL::Test::Utils::timeout_default;
my $lake = shared_lake();
my $primary = primary_with_exported_tenants('late_open', $lake, 't1');

sub sql { my ($node, $query) = @_; return $node->safe_psql('postgres', $query, timeout => $timeout); }

my $old_epoch = sql($primary, q{SELECT lake_epoch FROM interactions_cron.export_checkpoints WHERE tenant_id = 't1'});
my $standby = switch_over_to_standby($primary, 'late_open_standby', '-12s');

# A writer's transaction, begun while the clock is behind the checkpoint.
my $writer = $standby->background_psql('postgres', on_error_stop => 1);
$writer->query_safe(q{BEGIN; INSERT INTO interaction_history (tenant_id, channel) VALUES ('t1', 'email')});
is($writer->query_safe(q{SELECT h.created_at < c.last_created_at FROM interaction_history h, interactions_cron.export_checkpoints c
                         WHERE h.channel = 'email' AND c.tenant_id = 't1'}), 't', 'the open transaction\'s row lies behind the checkpoint');

$standby->poll_query_until('postgres',
	q{SELECT (SELECT last_created_at FROM interactions_cron.export_checkpoints WHERE tenant_id = 't1')
	         < now() - interval '1.5 seconds'})
  or die 'the clock did not pass the checkpoint';
my $first = decode_json(sql($standby, 'SELECT interactions_cron.export_interactions()'));
is($first->{tenants}[0]{exported} // $first->{tenants}[0]{error}, 0,
	'the call while the transaction is open exports nothing, and holds nothing back yet');
is(sql($standby, q{SELECT lake_epoch FROM interactions_cron.export_checkpoints WHERE tenant_id = 't1'}), $old_epoch,
	'nor records the new history, so the next claim looks');

$writer->query_safe('COMMIT');
$writer->quit;
wait_rows_past_margin($standby);
my $run = decode_json(sql($standby, 'SELECT interactions_cron.export_interactions()'));
like($run->{tenants}[0]{error} // 'ok: ' . encode_json($run->{tenants}[0]),
	qr/^not exported: 1 of the tenant's rows created within a day behind its checkpoint were written after it was set/,
	'once it has committed, its row behind the checkpoint holds the tenant back');

$standby->stop;
done_testing();
