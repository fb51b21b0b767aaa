# Hostile review 12 of issue 19 (its reproduction; failed on 8bdd9ea, passes
# since only a checkpoint ending a batch this history confirmed sweeps
# before an undo).
#
# doc/operations.md, "Reinstall and replay": a new CREATE EXTENSION exports
# every row again; "the files of the installation before are never another
# history's of this one ..., so nothing is removed for them".  A new
# checkpoint has no recorded history, and its sweep (BringIntoThisHistory)
# judges only files placed here in a lost history.  But that first claim
# records the history with the checkpoint still at the beginning, no id;
# when the first batch is then cancelled (or crashes, or fails) after
# placing, the next claim's undo finds its file placed and SweepAfterUndo
# sweeps from that checkpoint with every file in scope (SWEEP_EVERY_FILE): every file of the
# former installation holding a row the table still has is removed, with
# the lines of rows the table no longer has (retention deleted the oldest
# rows after their export): those rows leave the lake for ever.
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
my $node = extension_node('reinstall_undo_sweep',
	"interactions_cron.export_dir = '$lake'\ninteractions_cron.max_workers = 1\n");
sub sql { my ($q) = @_; return $node->safe_psql('postgres', $q, timeout => $timeout); }

sql(q{INSERT INTO tenants (id, name) VALUES ('t', 'T')});
add_tenant_rows($node, 10, 0, 't');
is(decode_json(sql('SELECT interactions_cron.export_interactions(batch_size => 5)'))->{totalExported}, 5, 'rows 1-5');
is(decode_json(sql('SELECT interactions_cron.export_interactions(batch_size => 5)'))->{totalExported}, 5, 'rows 6-10');
my @former = @{ read_lake($lake)->{final_files} };
is(scalar(@former), 2, 'two files: rows 1-5 and rows 6-10');

# Retention deletes the oldest exported rows (1-7): the lake is their only copy.
sql(q{DELETE FROM interaction_history WHERE id <= 7});

# Reinstall, keeping the lake (the documented choice that accepts rows written twice).
sql(q{DROP EXTENSION interactions_cron; CREATE EXTENSION interactions_cron;});

# The new installation's first batch (rows 8-10, a name of its own) is
# placed, and its call cancelled before the confirmation.
my $export = 'SELECT interactions_cron.export_interactions(batch_size => 100)';
cancel_call_after_place($node, $export);

my $log = -s $node->logfile;
my $result = decode_json(sql($export));
is($result->{ok}, JSON::PP::true, 'the retry is ok') or diag encode_json($result);
ok(!$node->log_contains(qr/removing .* which holds rows past its tenant's checkpoint/, $log),
	"no file of the former installation is removed");
my $read = read_lake($lake);
my @missing = grep { !$read->{ids}{$_} } 1 .. 10;
is(scalar(@missing), 0, 'every row ever exported is still in the lake') or diag "missing: @missing";
$node->stop;
done_testing();
