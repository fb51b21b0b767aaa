# An undo that finds its batch's own file under another identity fails
# closed (issue 19): the intent records each local file's inode and
# modification time, and a copy of the file (a lake restored or copied, a
# touch) is not told from another database's file.  Removing it could lose
# another database's rows; leaving it and exporting again wrote the rows a
# second time under other names (a hostile review of the first version of
# this change, which left such a file and cleared the intent: cases a, c and
# d had rows in two files).  So the tenant fails with 58P02, keeping the
# file and the intent, until the file is removed by hand; then every row is
# in the lake once.  Each case leaves a batch placed and unconfirmed (the
# worker killed after placing), then:
#   a: the file touched and compression set to gzip (the retry's names differ);
#   b: the file copied over itself (cp -p: a new inode, the same mtime);
#   c: a confirmed batch before it, the file touched, the batch's first row
#      deleted (the retry's names differ);
#   d: the database restored from a base backup taken while the intent was
#      outstanding, after the retry had replaced the file, gzip set there.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use JSON::PP;
use File::Copy qw(copy);
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $timeout = $PostgreSQL::Test::Utils::timeout_default;
my $lake = shared_lake();
my $settings = "interactions_cron.export_dir = '$lake'\ninteractions_cron.max_workers = 1\nrestart_after_crash = on\n";
my $node = extension_node('own_copy', $settings, allows_streaming => 1);
sub sql { return $node->safe_psql('postgres', $_[0], timeout => $timeout); }

sql(q{INSERT INTO tenants (id, name) VALUES ('a', 'A'), ('b', 'B'), ('c', 'C'), ('d', 'D')});
add_tenant_rows($node, 10, 0, 'a', 'b', 'c', 'd');

sub export_one { my ($t) = @_;
	return "SELECT interactions_cron.export_interactions(batch_size => 10, tenant_id => '$t')"; }
sub files_of { my ($t) = @_; return @{ read_lake($lake, under => "exports/$t")->{final_files} }; }

# set_compression sets interactions_cron.compression for the server.
sub set_compression
{
	my ($compression) = @_;
	sql(qq{LOAD 'interactions_cron'; ALTER SYSTEM SET interactions_cron.compression = '$compression'; SELECT pg_reload_conf()});
	$node->poll_query_until('postgres',
		q{SELECT coalesce(current_setting('interactions_cron.compression', true), 'none')}, $compression)
	  or die 'the compression was not reloaded';
}

# crash_after_place leaves a batch of $t placed and unconfirmed: its worker
# is killed while it sleeps after placing.
sub crash_after_place
{
	my ($t) = @_;
	my $offset = -s $node->logfile;
	my $session = $node->background_psql('postgres', on_error_stop => 0);
	$session->query_safe(q{LOAD 'interactions_cron'; SET interactions_cron.debug_fault = 'sleep_after_place'});
	$session->query_until(qr/started/, "\\echo started\n" . export_one($t) . ";\n");
	ok(wait_for_stalled_group($node, 'postgres', $offset, 1) >= 1, "$t: a batch is placed, not confirmed");
	my $pid = sql(q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'interactions_cron export worker'});
	my $crash = -s $node->logfile;
	kill 'KILL', $pid or die "kill $pid";
	wait_for_restart($node, $crash);
	end_session($session);
	is(sql("SELECT count(*) FROM interactions_cron.export_intents WHERE tenant_id = '$t'"), 1, "$t: its intent is outstanding");
}

# fails_closed_then_once checks that the next call fails $t with 58P02's
# message and keeps its files and intent, then removes the files as the
# hint says and checks that the next calls export every row of $t once.
sub fails_closed_then_once
{
	my ($t, @files) = @_;
	my $result = sql(export_one($t));
	like($result, qr/is not the file the tenant's unfinished batch placed there/, "$t: the next call fails the tenant");
	is(scalar(grep { -e "$lake/$_" } @files), scalar(@files), "$t: the files stay");
	is(sql("SELECT count(*) FROM interactions_cron.export_intents WHERE tenant_id = '$t'"), 1, "$t: so does the intent");
	is(sql("SELECT last_error LIKE '%is not the file%' FROM interactions_cron.export_checkpoints WHERE tenant_id = '$t'"),
		't', "$t: the checkpoint says why");
	unlink map { "$lake/$_" } @files;
	sql(export_one($t)) for 1 .. 2;
	my $read = read_lake($lake, under => "exports/$t");
	my %in_table = map { $_ => 1 } split /\n/, sql("SELECT id FROM interaction_history WHERE tenant_id = '$t'");
	my ($missing, $duplicated, $unexpected) = compare_ids($read->{ids}, \%in_table);
	is(scalar(@$missing), 0, "$t: once the files are removed, every row is in a file") or diag "missing @$missing";
	is(scalar(@$duplicated), 0, "$t: no row is in two lines")
	  or diag "duplicated @$duplicated; files: @{ $read->{final_files} }";
	is(scalar(@$unexpected), 0, "$t: no line of a deleted row") or diag "unexpected @$unexpected";
}

crash_after_place('a');
my @a = files_of('a');
utime(undef, undef, "$lake/$_") for @a;
set_compression('gzip');
fails_closed_then_once('a', @a);
set_compression('none');

crash_after_place('b');
my @b = files_of('b');
for my $file (@b)
{
	copy("$lake/$file", "$lake/$file.copy") or die "copy $file: $!";
	my @status = stat("$lake/$file");
	utime($status[8], $status[9], "$lake/$file.copy");
	rename("$lake/$file.copy", "$lake/$file") or die "rename $file: $!";
}
fails_closed_then_once('b', @b);

is(decode_json(sql(export_one('c')))->{totalExported}, 10, 'c: a first batch is confirmed');
my %confirmed = map { $_ => 1 } files_of('c');
add_tenant_rows($node, 10, 20, 'c');
crash_after_place('c');
my @c_unconfirmed = grep { !$confirmed{$_} } files_of('c');
utime(undef, undef, "$lake/$_") for @c_unconfirmed;
my $last_id = sql(q{SELECT last_id FROM interactions_cron.export_checkpoints WHERE tenant_id = 'c'});
sql("DELETE FROM interaction_history WHERE id = (SELECT min(id) FROM interaction_history
     WHERE tenant_id = 'c' AND id > $last_id)");
fails_closed_then_once('c', @c_unconfirmed);

crash_after_place('d');
$node->backup('with_intent');
sql(export_one('d')) for 1 .. 2;
$node->stop;
my $original = $node;
$node = PostgreSQL::Test::Cluster->new('restored');
$node->init_from_backup($original, 'with_intent');
$node->start;
is(sql(q{SELECT count(*) FROM interactions_cron.export_intents WHERE tenant_id = 'd'}), 1,
	'd: the restored database has the intent outstanding');
set_compression('gzip');
fails_closed_then_once('d', files_of('d'));

$node->stop;
done_testing();
