# An out-of-memory ERROR while a group's record of synced paths copies a
# path leaves no entry behind: the next batch of the group that leads to the
# same directory fsyncs it, and fails with its EIO.  test/synced_paths_oom/
# synced_paths_oom.c, built here against the tree's src/file_sink.c (its
# MemoryContextStrdup failing once, for "<lake>/exports"), runs two batches
# of one group in a backend started with the fsync failure shim (fsyncs of
# paths ending in "exports" fail).  It failed on 54f0009, whose
# SyncedPathEnter entered the caller's string and copied it afterwards: batch
# A left an entry keyed by its own freed string and without a state, and
# batch B took it for its result (the eleventh hostile review's
# reproduction; fixed by a9aaee1).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $module = build_with_tree('synced_paths_oom.so',
	options => [qw(-Wall -fPIC -shared -O2)],
	sources => ['test/synced_paths_oom/synced_paths_oom.c']);

my $lake = shared_lake();
my $node = PostgreSQL::Test::Cluster->new('synced_paths_oom');
$node->init;
$node->append_conf('postgresql.conf', 'fsync = on');    # pg_fsync() does nothing without it
start_with_failing_fsync($node, fsync_fail_shim(), 'exports$');
my $out = $node->safe_psql('postgres', qq{
	CREATE FUNCTION synced_paths_oom(text) RETURNS text AS '$module' LANGUAGE C STRICT;
	SELECT synced_paths_oom('$lake');
});
note($out);
like($out, qr/^batch A \(strdup of "\Q$lake\E\/exports" fails\): ERROR: out of memory$/m,
	'batch A fails on the copy of its directory\'s path');
unlike($out, qr/^FAIL: the record keeps an entry keyed by the failed batch's own string/m,
	'the failed copy leaves no entry keyed by the batch\'s own string');
like($out, qr/^batch B \(same directory\): ERROR: could not fsync file "\Q$lake\E\/exports": Input\/output error$/m,
	'batch B fsyncs the shared directory and fails with its EIO');
unlike($out, qr/^FAIL/m, 'nothing failed') or diag($out);
$node->stop;
done_testing();
