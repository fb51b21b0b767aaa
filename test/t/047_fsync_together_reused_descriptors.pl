# src/fsync_together.c never takes the completion of an abandoned fsync for
# another path's: test/fsync_together/reused_descriptors.c, built here
# against the tree's src/fsync_together.c and liburing, makes one wait for a
# completion fail while 32 sit unread, and checks that a FIFO submitted
# later, whose fsync fails, is not recorded durable.  It failed on a2e6b02,
# which named submissions by descriptor and closed the abandoned ones at
# once (the tenth hostile review's reproduction).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IPC::Run ();
use LakeCheck;
use PostgreSQL::Test::Utils;
use Test::More;

my $harness = build_with_tree('reused_descriptors',
	options => ['-D_GNU_SOURCE'],
	sources => [ 'test/fsync_together/reused_descriptors.c', 'src/fsync_together.c' ],
	libraries => [ '-luring', '-ldl' ]);
my ($stdout, $stderr) = ('', '');
my $passed = IPC::Run::run([$harness], '>', \$stdout, '2>', \$stderr);
note($stdout . $stderr);
like($stdout, qr/^control : fifo \(index 40\): synced=1 syncErrno=22 \(recorded failed\)$/m,
	'without a failed wait, the FIFO\'s failed fsync is recorded');
unlike($stdout, qr/injected: fifo .*RECORDED DURABLE/, 'after a failed wait, the FIFO is not recorded durable');
ok($passed, 'the harness passes');
done_testing();
