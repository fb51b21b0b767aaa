# Failover: a primary exports into a lake that its streaming standby shares
# (a directory standing in for shared storage, then an S3 bucket on s3rver);
# the primary is stopped in immediate mode while an export is stalled after
# placing its files (debug_fault sleep_after_place); the standby is promoted
# and exports on into the same lake.  Each failover ends with the lake
# checked row by row against the new primary's table: every row of an
# active tenant in exactly one file.
#
# The chain of failovers, local lake:
#   1. synchronous replication: the intents of the stalled export reached the
#      standby (their commit waits for it), so the new primary removes the
#      placed files and writes them again;
#   2. asynchronous replication, the standby cut off just before the stalled
#      export: neither its intents nor its checkpoints reached the standby,
#      yet its files are in the lake.  The new primary exports from the older
#      checkpoints, with another batch size, and rewrites the same file names
#      (a file is named after its first row): no row twice;
#   3. asynchronous replication, the standby cut off before a whole export
#      and the stalled one: the new primary is more than one batch behind the
#      lake.  Its replay, in other batches, would not rewrite every lost
#      file: the second lost batch starts mid-day, and its file (rows that
#      the replay writes into a file named after an earlier row) would stay,
#      15 rows twice.  The first export on the new timeline removes, tenant
#      by tenant, the files named past the checkpoint (lake_sweep.c): exactly
#      the files of the lost runs, and the exports go on exactly once.
# Then case 2 again with the S3 sink, against s3rver on 127.0.0.1.
use strict;
use warnings;

use File::Basename qw(basename);
use FindBin;
use IPC::Run;
use lib $FindBin::RealBin;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $timeout = $PostgreSQL::Test::Utils::timeout_default;
my @tenants = qw(t1 t2 t3);

sub sql
{
	my ($node, $query) = @_;
	return $node->safe_psql('postgres', $query, timeout => $timeout);
}

# add_rows inserts $per_tenant rows for each tenant (and the inactive one),
# 11 minutes apart from $offset steps after midnight (UTC) two days ago: the
# later ones cross into the next day.
sub add_rows
{
	my ($node, $per_tenant, $offset) = @_;
	sql($node, qq{
		INSERT INTO interaction_history (tenant_id, created_at, channel, metadata)
		SELECT t, date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '2 days'
		          + ($offset + g) * interval '11 minutes 0.5 seconds',
		       'push', jsonb_build_object('g', g, 'offset', $offset)
		FROM unnest(ARRAY['t1', 't2', 't3', 'gone']) t, generate_series(1, $per_tenant) g
		ORDER BY g, t});
}

# start_stalled_export starts an export of batches of $batch on $node that
# stalls after placing its files, and returns its session once every
# tenant's batch is placed and unconfirmed (one worker, one group).
sub start_stalled_export
{
	my ($node, $batch, $label) = @_;
	my $session = $node->background_psql('postgres', on_error_stop => 0);
	$session->query_safe(q{SET interactions_cron.debug_fault = 'sleep_after_place'; SET interactions_cron.max_workers = 1});
	my $log_offset = -s $node->logfile;
	$session->query_until(qr/started/,
		"\\echo started\nSELECT interactions_cron.export_interactions(batch_size => $batch);\n");
	is(wait_for_stalled_group($node, 'postgres', $log_offset, scalar @tenants), scalar(@tenants),
		"$label: every tenant's batch is placed, not committed");
	return $session;
}

# crash_and_promote stops $primary in immediate mode (its stalled export
# dies with it) and promotes $standby.
sub crash_and_promote
{
	my ($primary, $session, $standby) = @_;
	$primary->stop('immediate');
	end_session($session);
	$standby->promote;
	$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
	  or die 'the standby was not promoted';
}

# new_standby makes a streaming standby of $primary, started and caught up.
sub new_standby
{
	my ($primary, $name) = @_;
	$primary->backup("for_$name");
	my $standby = PostgreSQL::Test::Cluster->new($name);
	$standby->init_from_backup($primary, "for_$name", has_streaming => 1);
	$standby->start;
	$primary->wait_for_catchup($standby, 'replay');
	return $standby;
}

# cut_off stops $standby's streaming from $primary once it has replayed
# everything so far: what $primary commits from now on is lost on failover,
# as with asynchronous replication lagging behind.
sub cut_off
{
	my ($primary, $standby) = @_;
	$primary->wait_for_catchup($standby, 'replay');
	$standby->append_conf('postgresql.conf', "primary_conninfo = ''");
	$standby->reload;
	$primary->poll_query_until('postgres', 'SELECT count(*) = 0 FROM pg_stat_replication')
	  or die 'the standby did not stop streaming';
}

# check_lake checks the lake ($lake, from read_lake or read_s3rver_lake)
# against the rows of $node's active tenants, and $node's checkpoints.
sub check_lake
{
	my ($node, $lake, $label) = @_;
	my %expected = map { $_ => 1 } split /\n/, sql($node,
		q{SELECT h.id FROM interaction_history h JOIN tenants t ON t.id = h.tenant_id WHERE t.status = 'active'});
	my ($missing, $duplicated, $unexpected) = compare_ids($lake->{ids}, \%expected);
	lake_rows_once_ok($lake, scalar(keys %expected), " ($label)");
	is(scalar(@$missing), 0, "$label: no row of an active tenant is missing") or diag "missing: @$missing";
	is(scalar(@$unexpected), 0, "$label: no other row is in the lake") or diag "unexpected: @$unexpected";
	is(sql($node, q{SELECT count(*) FROM tenants t
		LEFT JOIN interactions_cron.export_checkpoints c ON c.tenant_id = t.id
		WHERE t.status = 'active' AND (c.tenant_id IS NULL OR c.status <> 'ok' OR c.attempts <> 0
		   OR (c.last_created_at, c.last_id::bigint) <> (SELECT h.created_at, h.id FROM interaction_history h
		                                         WHERE h.tenant_id = t.id ORDER BY h.created_at DESC, h.id DESC LIMIT 1))
		   OR EXISTS (SELECT 1 FROM interactions_cron.export_intents)}),
		'0', "$label: every checkpoint is ok and at its tenant's last row, no intent left");
}

# files_past_checkpoints returns the final files of $lake (relative paths)
# named after a row past their tenant's checkpoint on $node: the files of
# batches whose commit $node does not have.  A file is named after its
# first row, batch-<created_at in UTC, to the microsecond>-<id>.json[.gz],
# and every row of a committed batch is at or before the checkpoint.
sub files_past_checkpoints
{
	my ($node, $lake) = @_;
	my %checkpoint = map { my ($t, $at, $id) = split /\|/; ($t => [ $at, $id ]) } split /\n/, sql($node, q{
		SELECT tenant_id, to_char(last_created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24-MI-SS-US"Z"'), last_id
		FROM interactions_cron.export_checkpoints WHERE last_created_at > '-infinity'});
	my @past;
	for my $path (@{ $lake->{final_files} })
	{
		my ($tenant) = $path =~ m{^exports/([^/]+)/} or die "unexpected path $path";
		my ($at, $id) = basename($path) =~ /^batch-(.+Z)-(-?\d+)\.json(?:\.gz)?\z/ or die "unexpected name $path";
		my $position = $checkpoint{$tenant};
		push @past, $path
		  if !$position || $at gt $position->[0] || ($at eq $position->[0] && $id > $position->[1]);
	}
	return sort @past;
}

# setup creates the extension, the tables and the tenants on $primary.
sub setup
{
	my ($primary) = @_;
	sql($primary, 'CREATE EXTENSION interactions_cron');
	sql($primary, slurp_file('../reference/schema.sql'));
	sql($primary, q{INSERT INTO tenants (id, name, status) VALUES
		('t1', 'T1', 'active'), ('t2', 'T2', 'active'), ('t3', 'T3', 'active'), ('gone', 'Gone', 'inactive')});
}

#### The local lake: a directory every node writes into.
my $lake = PostgreSQL::Test::Utils::tempdir() . '/lake';
my $node_a = PostgreSQL::Test::Cluster->new('a');
$node_a->init(allows_streaming => 1);
$node_a->append_conf('postgresql.conf', qq{
interactions_cron.export_dir = '$lake'
interactions_cron.max_workers = 3
});
$node_a->start;
setup($node_a);
add_rows($node_a, 60, 0);

# 1. Synchronous replication to b.
my $node_b = new_standby($node_a, 'b');
$node_a->append_conf('postgresql.conf', "synchronous_standby_names = 'b'");
$node_a->reload;
$node_a->poll_query_until('postgres', q{SELECT sync_state = 'sync' FROM pg_stat_replication WHERE application_name = 'b'})
  or die 'b did not become a synchronous standby';
sql($node_a, 'SELECT interactions_cron.export_interactions(batch_size => 25)');
my $session = start_stalled_export($node_a, 25, 'sync');
# The intent's commit waits for the synchronous standby, and the files are
# placed only after it.
is(sql($node_b, 'SELECT count(*) FROM interactions_cron.export_intents'), '3',
	'sync: the standby has the stalled export\'s intents');
is_deeply([ files_past_checkpoints($node_b, read_lake($lake)) ],
	[ split /\n/, sql($node_b, 'SELECT f FROM interactions_cron.export_intents, unnest(files) f ORDER BY f COLLATE "C"') ],
	'sync: the files in the lake past the standby\'s checkpoints are those its intents name');
crash_and_promote($node_a, $session, $node_b);
add_rows($node_b, 10, 60);
export_all($node_b, 25, 'sync');
check_lake($node_b, read_lake($lake), 'sync');
is(sql($node_b, q{SELECT count(*) FILTER (WHERE NOT ok) FROM interactions_cron.job_runs}), '0',
	'sync: every run recorded by either primary is ok');

# 2. Asynchronous replication to c, cut off before the stalled export.
my $node_c = new_standby($node_b, 'c');
add_rows($node_b, 30, 70);
cut_off($node_b, $node_c);
my $runs_at_cut = sql($node_c, 'SELECT count(*) FROM interactions_cron.job_runs');
my %files_at_cut = map { $_ => 1 } @{ read_lake($lake)->{final_files} };
$session = start_stalled_export($node_b, 25, 'async');
crash_and_promote($node_b, $session, $node_c);
is(sql($node_c, 'SELECT count(*) FROM interactions_cron.export_intents'), '0',
	'async: the new primary has no intent of the lost export');
my $lake_at_crash = read_lake($lake);
ok($lake_at_crash->{lines} > sql($node_c, 'SELECT sum(rows_exported) FROM interactions_cron.export_checkpoints'),
	'async: the lake holds rows past the new primary\'s checkpoints');
my @lost_files = files_past_checkpoints($node_c, $lake_at_crash);
ok(@lost_files >= @tenants, 'async: the lost export placed a file of each tenant');
is_deeply(\@lost_files, [ sort grep { !$files_at_cut{$_} } @{ $lake_at_crash->{final_files} } ],
	'async: the files named past the new primary\'s checkpoints are those of the lost export');
add_rows($node_c, 5, 100);
# Another batch size than the lost export's: its first file of each day
# still starts at the same row, so it replaces the lost one.
my $calls = export_all($node_c, 40, 'async');
is(sql($node_c, "SELECT count(*) FROM interactions_cron.job_runs") - $runs_at_cut, $calls,
	'async: the new primary records its own runs on top of the history it received');
check_lake($node_c, read_lake($lake), 'async');

# 3. Asynchronous replication to d, cut off before a whole export and the
# stalled one: doc/operations.md's procedure.
my $node_d = new_standby($node_c, 'd');
add_rows($node_c, 50, 105);
cut_off($node_c, $node_d);
%files_at_cut = map { $_ => 1 } @{ read_lake($lake)->{final_files} };
sql($node_c, 'SELECT interactions_cron.export_interactions(batch_size => 20)');
$session = start_stalled_export($node_c, 20, 'two runs lost');
crash_and_promote($node_c, $session, $node_d);
my $lake_two_lost = read_lake($lake);
my @new_files = sort grep { !$files_at_cut{$_} } @{ $lake_two_lost->{final_files} };
@lost_files = files_past_checkpoints($node_d, $lake_two_lost);
ok(scalar(@lost_files) >= 2 * @tenants, 'two runs lost: the files of both lost runs are past the checkpoints');
is_deeply(\@lost_files, \@new_files,
	'two runs lost: the files named past the checkpoints are exactly those the lost runs placed');
# No manual step: the first export on the new timeline removes, tenant by
# tenant, the files named past the checkpoint, then writes the rows again.
export_all($node_d, 1000, 'two runs lost');
my @swept = slurp_file($node_d->logfile) =~ /removing "([^"]+)", which holds rows past its tenant's checkpoint/g;
is_deeply([ sort @swept ], \@lost_files,
	'two runs lost: the new primary removed exactly the files of the lost runs');
check_lake($node_d, read_lake($lake), 'two runs lost');
$node_d->stop;

#### The S3 sink: the same asynchronous failover (case 2), the lake a bucket.
my ($s3, $s3_port, $s3_dir) = start_s3rver();
# Credentials from the server's environment (settings would need the
# library preloaded); both nodes start with it.
local $ENV{AWS_ACCESS_KEY_ID} = 'S3RVER';
local $ENV{AWS_SECRET_ACCESS_KEY} = 'S3RVER';
my $spool = PostgreSQL::Test::Utils::tempdir();
my $s3_primary = PostgreSQL::Test::Cluster->new('s3_primary');
$s3_primary->init(allows_streaming => 1);
$s3_primary->append_conf('postgresql.conf', qq{
interactions_cron.export_dir = '$spool'
interactions_cron.max_workers = 3
interactions_cron.storage = 's3'
interactions_cron.s3_bucket = 'lake'
interactions_cron.s3_prefix = 'failover/'
interactions_cron.s3_endpoint = 'http://127.0.0.1:$s3_port'
interactions_cron.s3_path_style = on
});
$s3_primary->start;
setup($s3_primary);
add_rows($s3_primary, 40, 0);
my $s3_mirror = PostgreSQL::Test::Utils::tempdir();
sub s3_lake { return read_s3rver_lake("$s3_dir/store", 'lake', 'failover/', "$s3_mirror/lake"); }

is(sql($s3_primary, q{SELECT (r->>'ok') || ' ' || (r->>'totalExported') || ' ' || (r->>'location')
                      FROM interactions_cron.export_interactions(batch_size => 15) r}),
	'true 45 s3://lake/failover/', 's3: the primary exports into the bucket');
my $s3_standby = new_standby($s3_primary, 's3_standby');
add_rows($s3_primary, 20, 40);
cut_off($s3_primary, $s3_standby);
%files_at_cut = map { $_ => 1 } @{ s3_lake()->{final_files} };
$session = start_stalled_export($s3_primary, 15, 's3');
crash_and_promote($s3_primary, $session, $s3_standby);
my $s3_at_crash = s3_lake();
is(sql($s3_standby, 'SELECT count(*) FROM interactions_cron.export_intents'), '0',
	's3: the new primary has no intent of the lost export');
@lost_files = files_past_checkpoints($s3_standby, $s3_at_crash);
ok(@lost_files >= @tenants, 's3: the lost export placed an object of each tenant');
is_deeply(\@lost_files, [ sort grep { !$files_at_cut{$_} } @{ $s3_at_crash->{final_files} } ],
	's3: the objects named past the new primary\'s checkpoints are those of the lost export');
add_rows($s3_standby, 5, 60);
export_all($s3_standby, 25, 's3');
my $s3_lake = s3_lake();
check_lake($s3_standby, $s3_lake, 's3');
ok(scalar(@{ $s3_lake->{final_files} }) > 3, 's3: the lake holds the objects of both primaries');
is(scalar(@{ read_lake($spool, under => '')->{final_files} }) + scalar(@{ read_lake($spool, under => '')->{hidden_files} }),
	0, 's3: the spool holds no file');

$s3_standby->stop;
$s3->kill_kill;
done_testing();
