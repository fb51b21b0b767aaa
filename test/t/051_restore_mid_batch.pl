# A restore that keeps the history identity (a base backup or file-system
# snapshot started without recovery.signal), taken while an export call was
# between a batch's intent and its confirmation (hostile review 8 of issue
# 19; the reviewer's reproduction).
#
# The lost history finished that batch (the same file, inode and
# modification time) and exported on.  In the restored database, the first
# claim undoes the outstanding intent: the file at its name is the batch's
# own, so it is removed, and the batch written next takes the freed name:
# no name is taken, so the behind-lake detection at a taken name never
# fires.  The restored database holds rows committed after the lost batch's
# watermark, so its batch ended past the lost batch's end, and the lost
# history's next file, which starts there, held rows then in two files (ids
# 14-16).  Failed on 43c956e.  Now a claim about to undo a batch that had
# placed files sweeps the files whose first row lies past the checkpoint
# (SweepBeforeUndo), and the sweep judges only such files, so an ordinary
# cancel keeps every confirmed file (t/044).
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
my $node = tenant_t_node('snapshot_mid_call', $lake, allows_streaming => 1);
my $export = 'SELECT interactions_cron.export_interactions(batch_size => 100)';

add_tenant_rows($node, 10, 0, 't');
is(decode_json(node_sql($node, $export))->{totalExported}, 10, 'a first batch: rows 1-10');

# Rows 11-13, and a call that exports them; its worker is stopped in the
# batch's second transaction (B2), after placing its file.
add_tenant_rows($node, 3, 10, 't');
my $offset = -s $node->logfile;
my $session = $node->background_psql('postgres', on_error_stop => 0);
$session->query_safe(q{LOAD 'interactions_cron'; SET interactions_cron.debug_fault = 'sleep_after_place'});
$session->query_until(qr/started/, "\\echo started\n$export;\n");
ok(wait_for_stalled_group($node, 'postgres', $offset, 1) >= 1, 'the batch of rows 11-13 is placed, not confirmed');

# The platform writes on (rows 14-16) and the snapshot is taken now.
add_tenant_rows($node, 3, 13, 't');
$node->backup('mid_call');

# The original goes on: the stalled batch is confirmed as it was, and the
# next call exports rows 14-16 into a file of their own.
$node->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM interactions_cron.export_intents})
  or die 'the stalled batch was not confirmed';
end_session($session);
is(node_sql($node, q{SELECT rows_exported FROM interactions_cron.export_checkpoints WHERE tenant_id = 't'}),
	'13', 'the original confirmed rows 11-13');
is(decode_json(node_sql($node, $export))->{totalExported}, 3, 'the original exports rows 14-16');
$node->stop;

# The snapshot started as a cluster of its own, without recovery.signal.
my $restored = PostgreSQL::Test::Cluster->new('snapshot_restored');
$restored->init_from_backup($node, 'mid_call');
$restored->start;
is(node_sql($restored, q{SELECT count(*) FROM interactions_cron.export_intents}), '1',
	'the restored database has the batch of rows 11-13 outstanding');

# A sweep that cannot judge a file (the lost history's last file made
# unreadable) fails the tenant before the undo: the batch's file and its
# intent stay, so the next claim finds them and sweeps again.
my @files = sort @{ read_lake($lake)->{final_files} };
my $last_file = "$lake/$files[-1]";
chmod 0000, $last_file or die "chmod $last_file: $!";
like(first_tenant_outcome($restored), qr/could not judge 1 of the tenant's files/,
	'an unjudged file fails the tenant');
is(node_sql($restored, q{SELECT count(*) FROM interactions_cron.export_intents}), '1',
	'the batch of rows 11-13 is still outstanding');
chmod 0600, $last_file or die "chmod $last_file: $!";

export_all($restored, 100, 'after the restore');

my %expected = map { $_ => 1 } split /\n/, node_sql($restored, 'SELECT id FROM interaction_history');
my $read = read_lake($lake);
my ($missing, $duplicated, $unexpected) = compare_ids($read->{ids}, \%expected);
is(scalar(@$missing), 0, 'every row of the restored database is in the lake') or diag "missing @$missing";
is(scalar(@$duplicated), 0, 'no row is in two files')
  or diag "duplicated ids @$duplicated; files: @{ $read->{final_files} }";
$restored->stop;
done_testing();
