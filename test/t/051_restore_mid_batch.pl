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
my $restored = restored_mid_batch('snapshot_mid_call', $lake);

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

table_rows_once_in_lake_ok($restored, $lake);
$restored->stop;
done_testing();
