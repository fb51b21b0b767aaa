# A batch's undo removes only the files it placed itself (issue 19): its
# intent records each local file's identity (inode and modification time,
# which a rename keeps), and an undo that finds another's file at one of
# its names removes nothing, keeps the intent and fails the tenant (58P02)
# until a person looks: it cannot tell another database's file from a copy
# of its own (t/030, t/031).  Two windows where an intent names a file the batch
# did not place, with a second database exporting the tenant into the
# same lake (which "Moving a tenant" rules out, and which should not lose
# files all the same):
#   1. While a tenant's first batch waits for the standbys, its intent names
#      files it has not placed (test/repro/waiting_intent_undone_by_another_
#      claim.pl before the fix, where checks 2, 4 and 6 failed):
#      m1: a second, overlapping call claims the tenant while the first waits;
#      m2: the refusal cannot reclaim the tenant (its row locked), and the
#          next call's claim undoes the intent;
#      m3: the waiting call is cancelled, and the next call's claim undoes it.
#   2. A placing that meets another's file at its batch's second name fails
#      (debug_fault error_at_taken_name: a cancel, say) before its shortened
#      intent commits: the undo of the full intent removes the batch's own
#      first file and leaves the other's (failed before the fix); once the
#      other's file is removed by hand, the tenant's rows are exported once.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use JSON::PP;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Basename qw(dirname);
use File::Path qw(mkpath);

my $timeout = $PostgreSQL::Test::Utils::timeout_default;
my $lake = shared_lake();

sub sql { my ($node, $query) = @_; return $node->safe_psql('postgres', $query, timeout => $timeout); }

my $settings = "interactions_cron.export_dir = '$lake'\ninteractions_cron.max_workers = 1\n";
my $source = new_tenant_database('source', 1, $settings);
sql($source, q{INSERT INTO tenants (id, name) VALUES ('m1', 'M1'), ('m2', 'M2'), ('m3', 'M3')});
add_tenant_rows($source, 10, 0, 'm1', 'm2', 'm3');

my ($destination, $standby) = primary_with_standby('destination',
	$settings . "interactions_cron.standby_wait = '4s'\n");

# The tenants are active on the destination too early (t/022, t/024).
my $rows = sql($source, q{COPY (SELECT * FROM interaction_history ORDER BY id) TO STDOUT});
sql($destination, q{INSERT INTO tenants (id, name) VALUES ('m1', 'M1'), ('m2', 'M2'), ('m3', 'M3')});
sql($destination, "COPY interaction_history FROM STDIN;\n$rows\n\\.\n");
$destination->wait_for_catchup($standby, 'flush');

my $receiver = sql($standby, 'SELECT pid FROM pg_stat_wal_receiver');
kill 'STOP', $receiver or die "cannot stop $receiver";

sub export_one { my ($tenant) = @_;
	return "SELECT interactions_cron.export_interactions(batch_size => 10, tenant_id => '$tenant')"; }
sub files_of { my ($tenant) = @_; return @{ read_lake($lake, under => "exports/$tenant")->{final_files} }; }

# m1: the destination's first call waits; the source places the same name;
# a second call on the destination claims m1 meanwhile.
my $first = export_waiting_for_standby($destination, export_one('m1'));
is(decode_json(sql($source, export_one('m1')))->{totalExported}, 10, "the source exported m1's rows 1-10");
my @m1_files = files_of('m1');
my $second = $destination->background_psql('postgres', on_error_stop => 0);
$second->query_until(qr/started/, "\\echo started\n" . export_one('m1') . ";\n\\echo finished\n");
$first->query_until(qr/finished/, "\\echo finished\n");
my $second_out = $second->query_until(qr/finished/, '');
end_session($_) for $first, $second;
like($second_out, qr/is not the file the tenant's unfinished batch placed there/,
	"m1: the overlapping call's claim fails the tenant rather than undo the waiting batch");
is(scalar(grep { -e "$lake/$_" } @m1_files), 1,
	"m1: the source's file is still in the lake after an overlapping call") or diag "source's file: @m1_files";

# m2: the destination's call waits; the source places the same name; the
# checkpoint row is locked when the wait times out.
my $waiting = export_waiting_for_standby($destination, export_one('m2'));
is(decode_json(sql($source, export_one('m2')))->{totalExported}, 10, "the source exported m2's rows 1-10");
my @m2_files = files_of('m2');
my $locker = $destination->background_psql('postgres');
$locker->query_safe(q{BEGIN; SELECT 1 FROM interactions_cron.export_checkpoints WHERE tenant_id = 'm2' FOR UPDATE});
my $out = $waiting->query_until(qr/finished/, "\\echo finished\n");
note "refused call: $out";
$locker->query_safe('COMMIT');
end_session($_) for $waiting, $locker;
note 'intents left: ' . sql($destination, 'SELECT count(*) FROM interactions_cron.export_intents');
my $not_ours = qr/export file \\?"\Q$m2_files[0]\E\\?" is not the file the tenant's unfinished batch placed there/;
like(sql($destination, export_one('m2')), $not_ours, "m2: the next call fails the tenant, naming the source's file");
is(sql($destination, q{SELECT count(*) FROM interactions_cron.export_intents WHERE tenant_id = 'm2'}), '1',
	'm2: the intent stays for a person to look');
is(scalar(grep { -e "$lake/$_" } @m2_files), 1,
	"m2: the source's file is still in the lake after the next call") or diag "source's file: @m2_files";

# m3: the destination's call waits (standby_wait 1h for it); the source
# places the same name; the call is cancelled (a statement_timeout, say),
# which leaves its intent, and the next call's claim undoes it.
my $cancelled = export_waiting_for_standby($destination,
	"SET interactions_cron.standby_wait = '1h';\n" . export_one('m3'));
is(decode_json(sql($source, export_one('m3')))->{totalExported}, 10, "the source exported m3's rows 1-10");
my @m3_files = files_of('m3');
sql($destination, q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity
                    WHERE query LIKE '%export_interactions(%' AND pid <> pg_backend_pid()});
$destination->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'interactions_cron export worker'})
  or die 'the waiting worker did not end';
end_session($cancelled);
like(sql($destination, export_one('m3')), qr/is not the file the tenant's unfinished batch placed there/,
	'm3: the next call fails the tenant');
is(scalar(grep { -e "$lake/$_" } @m3_files), 1,
	"m3: the source's file is still in the lake after a cancelled wait and the next call") or diag "source's file: @m3_files";

# Window 2: w2's next batch spans two days, so two files; a file of another
# database has the second one's name, and the placing fails right there.
sql($source, q{INSERT INTO tenants (id, name) VALUES ('w2', 'W2')});
add_tenant_rows($source, 5, 0, 'w2');
is(decode_json(sql($source, "SELECT interactions_cron.export_interactions(batch_size => 5, tenant_id => 'w2')"))
	  ->{totalExported}, 5, 'w2: a first batch is confirmed');
add_tenant_rows($source, 10, 200, 'w2');
my $planned = decode_json(sql($source,
	"SELECT interactions_cron.export_interactions(batch_size => 10, tenant_id => 'w2', dry_run => true)"));
my ($own, $others) = @{ $planned->{tenants}[0]{files} };
ok(defined $others, 'w2: the next batch has two files') or diag explain $planned;
my $others_content = qq{{"another database's file": true}\n};
mkpath(dirname("$lake/$others"));
append_to_file("$lake/$others", $others_content);
$source->append_conf('postgresql.conf', "interactions_cron.debug_fault = 'error_at_taken_name'\n");
$source->reload;
my $log_offset = -s $source->logfile;
my $failed = decode_json(sql($source, "SELECT interactions_cron.export_interactions(batch_size => 10, tenant_id => 'w2')"));
like($failed->{tenants}[0]{error} // '', qr/injected fault error_at_taken_name/, 'w2: the placing fails at the taken name');
ok(-e "$lake/$own", "w2: the undo removed nothing, not even the batch's own first file");
is(-e "$lake/$others" ? slurp_file("$lake/$others") : undef, $others_content,
	"w2: the other database's file at the batch's second name is still there, as it was");
like(slurp_file($source->logfile, $log_offset), qr/export file "\Q$others\E" is not the file the tenant's unfinished batch placed there/,
	'w2: the undo logged the file it would not remove');
is(sql($source, q{SELECT count(*) FROM interactions_cron.export_intents}), '1', 'w2: the intent stays');
$source->append_conf('postgresql.conf', "interactions_cron.debug_fault = 'none'\n");
$source->reload;
like(sql($source, "SELECT interactions_cron.export_interactions(batch_size => 10, tenant_id => 'w2')"),
	qr/is not the file the tenant's unfinished batch placed there/, 'w2: the next call fails the tenant too');
unlink("$lake/$others") or die "unlink $others: $!";
is(decode_json(sql($source, "SELECT interactions_cron.export_interactions(batch_size => 10, tenant_id => 'w2')"))
	  ->{totalExported}, 10, "w2: once the other's file is gone, the batch is exported again");
lake_rows_once_ok(read_lake($lake, under => 'exports/w2'), 15, ' of w2');

kill 'CONT', $receiver;
$standby->stop;
$destination->stop;
$source->stop;
done_testing();
