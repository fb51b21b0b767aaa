# What is exported again after DROP EXTENSION / CREATE EXTENSION, and after
# reset_checkpoint, and doc/operations.md's procedures that keep the lake exact:
#   - DROP EXTENSION loses the checkpoints, intents and run history.  Saved
#     before the drop and put back after CREATE EXTENSION, the exports go on
#     where they were (an unfinished batch's intent included): nothing is
#     exported twice;
#   - without them, every row of every active tenant is exported again from
#     the beginning: with the lake's exports/ removed first, each row is in
#     the lake once;
#   - reset_checkpoint(tenant) replays the tenant from the beginning: with its
#     directory removed first, once, whatever the batch size;
#   - reset_checkpoint(tenant, since), since being the timestamp in a file's
#     name: with that file and the tenant's later ones removed first, once.
use strict;
use warnings;

use File::Basename qw(basename);
use File::Path qw(remove_tree);
use FindBin;
use lib $FindBin::RealBin;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('reinstall');
$node->init;
my $lake = $node->basedir . '/lake';
$node->append_conf('postgresql.conf', qq{
interactions_cron.export_dir = '$lake'
interactions_cron.max_workers = 3
restart_after_crash = on
});
$node->start;
my $timeout = $PostgreSQL::Test::Utils::timeout_default;
sub sql { return $node->safe_psql('postgres', $_[0], timeout => $timeout); }

sql('CREATE EXTENSION interactions_cron');
sql(slurp_file('../reference/schema.sql'));
sql(q{INSERT INTO tenants (id, name, status) VALUES
	('t1', 'T1', 'active'), ('t2', 'T2', 'active'), ('t3', 'T3', 'active'), ('gone', 'Gone', 'inactive')});

# add_rows inserts $per_tenant rows for each tenant, 13 minutes apart from
# $offset steps after midnight (UTC) two days ago (crossing into the next day).
sub add_rows
{
	my ($per_tenant, $offset) = @_;
	sql(qq{
		INSERT INTO interaction_history (tenant_id, created_at, channel)
		SELECT t, date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '2 days'
		          + ($offset + g) * interval '13 minutes', 'web'
		FROM unnest(ARRAY['t1', 't2', 't3', 'gone']) t, generate_series(1, $per_tenant) g
		ORDER BY g, t});
}

# export_counting_rows exports in batches of $batch until a call exports
# nothing, checks that every call succeeded, and returns the rows exported.
sub export_counting_rows
{
	my ($batch, $label) = @_;
	my $total = 0;
	my ($caught_up, @problems) = export_until_done(
		sub {
			my $result = sql("SELECT interactions_cron.export_interactions(batch_size => $batch)");
			$total += $1 if $result =~ /"totalExported": (\d+)/;
			return $result;
		},
		40);
	ok($caught_up, "$label: the exports caught up");
	is(scalar(@problems), 0, "$label: every export succeeded for every tenant") or diag join("\n", @problems);
	return $total;
}

sub check_lake
{
	my ($label) = @_;
	my $read = read_lake($lake);
	my %expected = map { $_ => 1 } split /\n/,
	  sql(q{SELECT h.id FROM interaction_history h JOIN tenants t ON t.id = h.tenant_id WHERE t.status = 'active'});
	my ($missing, $duplicated, $unexpected) = compare_ids($read->{ids}, \%expected);
	lake_rows_once_ok($read, scalar(keys %expected), " ($label)");
	is(scalar(@$missing) + scalar(@$unexpected), 0, "$label: only the active tenants' rows")
	  or diag "missing: @$missing; unexpected: @$unexpected";
	return $read;
}

sub active_rows { return sql(q{SELECT count(*) FROM interaction_history h JOIN tenants t ON t.id = h.tenant_id
                               WHERE t.status = 'active'}); }

add_rows(80, 0);
is(export_counting_rows(25, 'first export'), 240, 'first export: every row of the three active tenants');
check_lake('first export');

# An export killed after placing its files leaves intents.
add_rows(30, 80);
my $session = $node->background_psql('postgres', on_error_stop => 0);
$session->query_safe(q{SET interactions_cron.debug_fault = 'sleep_after_place'; SET interactions_cron.max_workers = 1});
my $log_offset = -s $node->logfile;
$session->query_until(qr/started/, "\\echo started\nSELECT interactions_cron.export_interactions(batch_size => 25);\n");
is(wait_for_stalled_group($node, 'postgres', $log_offset, 3), 3, 'an export stalls after placing its files');
my ($worker) = split /\n/, sql(q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'interactions_cron export worker'});
my $kill_offset = -s $node->logfile;
kill 'KILL', $worker or die "cannot kill $worker";
wait_for_restart($node, $kill_offset);
end_session($session);
is(sql('SELECT count(*) FROM interactions_cron.export_intents'), '3', 'the killed export left its intents');

# DROP EXTENSION with the histories, checkpoints and intents saved, CREATE
# EXTENSION, put them back: the exports go on where they were.
sql(q{
	CREATE TABLE saved_histories AS SELECT * FROM interactions_cron.export_histories;
	CREATE TABLE saved_checkpoints AS SELECT * FROM interactions_cron.export_checkpoints;
	CREATE TABLE saved_intents AS SELECT * FROM interactions_cron.export_intents;
	DROP EXTENSION interactions_cron;
	CREATE EXTENSION interactions_cron;
	INSERT INTO interactions_cron.export_histories SELECT * FROM saved_histories;
	INSERT INTO interactions_cron.export_checkpoints SELECT * FROM saved_checkpoints;
	INSERT INTO interactions_cron.export_intents SELECT * FROM saved_intents;
	DROP TABLE saved_histories, saved_checkpoints, saved_intents;
});
is(sql('SELECT count(*) FROM interactions_cron.job_runs'), '0', 'DROP EXTENSION dropped the run history');
is(export_counting_rows(25, 'reinstalled, state put back'), 90,
	'reinstalled, state put back: only the rows past the checkpoints are exported');
check_lake('reinstalled, state put back');

# DROP EXTENSION / CREATE EXTENSION without the state: everything again.
add_rows(10, 110);
sql('DROP EXTENSION interactions_cron; CREATE EXTENSION interactions_cron');
is(sql('SELECT count(*) FROM interactions_cron.export_checkpoints'), '0', 'a new extension has no checkpoint');
remove_tree("$lake/exports");
is(export_counting_rows(40, 'reinstalled from scratch'), active_rows(),
	'reinstalled from scratch: every row of every active tenant is exported again');
check_lake('reinstalled from scratch');

# reset_checkpoint from the beginning, with another batch size than the
# files were written in: the tenant's directory removed first.
remove_tree("$lake/exports/t1");
sql(q{SELECT interactions_cron.reset_checkpoint('t1')});
is(export_counting_rows(15, 'replay of t1'), sql(q{SELECT count(*) FROM interaction_history WHERE tenant_id = 't1'}),
	'replay of t1: every row of t1 is exported again, and only those');
check_lake('replay of t1');

# reset_checkpoint to the timestamp in the name of one of t2's files: that
# file and the later ones removed first.
my @t2_files = sort { basename($a) cmp basename($b) }
  @{ read_lake($lake, under => 'exports/t2')->{final_files} };
ok(@t2_files >= 3, 't2 has at least three files') or diag explain \@t2_files;
my $from = $t2_files[1];
my ($stamp) = basename($from) =~ /^batch-(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{6}Z)-/ or die "unexpected name $from";
my $since = $stamp =~ s/^(\d{4}-\d\d-\d\d)T(\d\d)-(\d\d)-(\d\d)-(\d{6})Z\z/$1 $2:$3:$4.$5+00/r;
my @removed = grep { basename($_) ge basename($from) } @t2_files;
unlink map { "$lake/$_" } @removed;
sql(qq{SELECT interactions_cron.reset_checkpoint('t2', '$since')});
is(export_counting_rows(1000, 'replay of t2'),
	sql(qq{SELECT count(*) FROM interaction_history WHERE tenant_id = 't2' AND created_at >= '$since'}),
	'replay of t2: its rows from since on are exported again');
check_lake('replay of t2');
is(sql(q{SELECT string_agg(job || ':' || ok, ' ' ORDER BY id) FROM interactions_cron.job_runs
         WHERE job = 'reset_checkpoint'}), 'reset_checkpoint:true reset_checkpoint:true', 'both resets are recorded');

$node->stop;
done_testing();
