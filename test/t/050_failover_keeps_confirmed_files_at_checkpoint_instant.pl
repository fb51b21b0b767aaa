# A failover's lake sweep never removes a confirmed file.  The sweep judges
# the files named at or past the checkpoint's instant by their rows, and the
# history table's unique key is (created, id), not the id alone: a
# confirmed batch whose rows share the checkpoint's instant is named at that
# instant, and later rows reusing its ids (at a later instant) made it look
# like a file a lost history had placed past the checkpoint.  After a
# switchover the sweep removed it, and its rows were never written again.
# The case of t/044, reached through a change of history instead of an undo.
# Failed on 43c956e; a file is now judged only when its first row (its
# name) lies past the checkpoint.
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
my $primary = extension_node('sweep_at_checkpoint_instant',
	"interactions_cron.export_dir = '$lake'\ninteractions_cron.max_workers = 1\n",
	allows_streaming => 1);
sub sql { my ($on, $q) = @_; return $on->safe_psql('postgres', $q, timeout => $timeout); }
my $export = 'SELECT interactions_cron.export_interactions(batch_size => 100)';

sql($primary, q{INSERT INTO tenants (id, name) VALUES ('t', 'T')});
# Three rows written by one transaction: one created instant, ids 1001-1003.
sql($primary, q{INSERT INTO interaction_history (id, tenant_id, created_at, channel)
	SELECT 1000 + g, 't', date_trunc('day', now()) - interval '2 days', 'sms' FROM generate_series(1, 3) g});
is(decode_json(sql($primary, $export))->{totalExported}, 3, 'the first batch: ids 1001-1003 at one instant');

# Later rows reusing ids 1001 and 1002 at a later instant ((id, created_at) unique).
sql($primary, q{INSERT INTO interaction_history (id, tenant_id, created_at, channel)
	SELECT 1000 + g, 't', date_trunc('day', now()) - interval '1 day', 'email' FROM generate_series(1, 2) g});

# A switchover (the standby has everything): a new history, whose first claim sweeps.
my $standby = switch_over_to_standby($primary, 'sweep_at_checkpoint_instant_standby', undef);
my $offset = -s $standby->logfile;
my $result = decode_json(sql($standby, $export));
is($result->{ok}, JSON::PP::true, 'the first call after the switchover is ok') or diag encode_json($result);
is($result->{totalExported}, 2, 'it exports the two later rows');
ok(!$standby->log_contains(qr/removing .* which holds rows past its tenant's checkpoint/, $offset),
	'the sweep removes no file');

my %lines;
read_lake($lake, on_line => sub { my ($row) = @_; $lines{"$row->{id}/$row->{channel}"}++ });
my @missing = grep { !$lines{$_} } ('1001/sms', '1002/sms', '1003/sms', '1001/email', '1002/email');
my @twice = grep { $lines{$_} > 1 } keys %lines;
is(scalar(@missing), 0, 'every committed row is in the lake') or diag "missing: @missing";
is(scalar(@twice), 0, 'no row is in two files') or diag "twice: @twice";
$standby->stop;
done_testing();
