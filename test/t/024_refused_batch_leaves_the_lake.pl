# A batch refused after interactions_cron.standby_wait leaves the lake alone
# (a hostile review's reproduction: it removed a file it had not placed).
# Such a batch looked its names up in the lake, committed its intent, and
# waited for the standbys; another database placed a file at one of those
# names meanwhile (the case of t/022: a tenant made active on a destination
# too early, exported by two databases into one lake).  Its undo used to
# remove every file its intent names, that one included, whose rows the
# other database's checkpoint had moved past: rows 1-10 lost.  Now the
# refused batch, which placed nothing, forgets its intent and removes
# nothing.
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

sub sql { my ($node, $query) = @_; return $node->safe_psql('postgres', $query, timeout => $timeout); }

my $settings = "interactions_cron.export_dir = '$lake'\ninteractions_cron.max_workers = 1\n";
my $source = new_tenant_database('source', 1, $settings);
sql($source, q{INSERT INTO tenants (id, name) VALUES ('mover', 'Mover')});
add_tenant_rows($source, 10, 0, 'mover');

my ($destination, $standby) = primary_with_standby('destination',
	$settings . "interactions_cron.standby_wait = '15s'\n");

# The tenant is active on the destination too early: its rows are there.
my $rows = sql($source, q{COPY (SELECT * FROM interaction_history WHERE tenant_id = 'mover' ORDER BY id) TO STDOUT});
sql($destination, q{INSERT INTO tenants (id, name) VALUES ('mover', 'Mover')});
sql($destination, "COPY interaction_history FROM STDIN;\n$rows\n\\.\n");
$destination->wait_for_catchup($standby, 'flush');

my $receiver = sql($standby, 'SELECT pid FROM pg_stat_wal_receiver');
kill 'STOP', $receiver or die "cannot stop $receiver";

# The destination's first batch passes the look-up (the lake is empty), commits
# its intent and waits for the standby.
my $session = export_waiting_for_standby($destination, q{SELECT interactions_cron.export_interactions(batch_size => 10)});

# Meanwhile the source exports the same rows: its file takes the same name.
my $exported = decode_json(sql($source, q{SELECT interactions_cron.export_interactions(batch_size => 10)}));
is($exported->{totalExported}, 10, 'the source exported rows 1-10 into one file');
my @source_files = @{ read_lake($lake)->{final_files} };
note "source file: @source_files";

# The destination's wait times out; its batch is refused and undone.
my $out = $session->query_until(qr/finished/, "\\echo finished\n");
note "destination: $out";
end_session($session);

is(scalar(grep { -e "$lake/$_" } @source_files), scalar(@source_files),
	'the source\'s file is still in the lake after the destination\'s refusal');
is(sql($source, q{SELECT rows_exported FROM interactions_cron.export_checkpoints WHERE tenant_id = 'mover'}) // '', '10',
	'the source\'s checkpoint says 10 rows were exported');

kill 'CONT', $receiver;
$standby->stop;
$destination->stop;
$source->stop;
done_testing();
