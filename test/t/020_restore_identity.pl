# Restores that keep the history identity (issue 19, 4): lake_epoch (the
# system identifier and the timeline) stays the same for a base backup
# started without recovery.signal (crash recovery on the same timeline) and
# for an old pg_dump restored into the same cluster.  The restored database
# is then more than one batch behind its lake, and nothing in it says so.
# Without a step by hand, its exports must go on by themselves with every
# row in the lake exactly once: the first batch after the restore begins
# with the row the lake's next file begins with, so its name is taken; the
# file holds rows the table holds past the checkpoint, so the database is
# behind its own lake, and the tenant's files past the checkpoint are judged
# and its batch written again.  The replays use another batch size than the
# lost exports, so that the batches fall elsewhere than the lake's files.
# A file at that name whose rows are not this database's still fails the
# tenant, and stays.
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
my @tenants = qw(t1 t2 t3);

my $node = PostgreSQL::Test::Cluster->new('lost_exports');
$node->init(allows_streaming => 1);
my $lake = $node->basedir . '/lake';
$node->append_conf('postgresql.conf', qq{
interactions_cron.export_dir = '$lake'
interactions_cron.max_workers = 2
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE app');

sub sql
{
	my ($on, $query) = @_;
	return $on->safe_psql('app', $query, timeout => $timeout);
}

# export_calls runs $calls exports of batch_size $batch on $on, one batch
# per tenant each, and checks each succeeded for every tenant.
sub export_calls
{
	my ($on, $calls, $batch, $label) = @_;
	for my $call (1 .. $calls)
	{
		my $result = decode_json(sql($on, "SELECT interactions_cron.export_interactions(batch_size => $batch)"));
		my @failed = grep { $_->{error} || $_->{skipped} } @{ $result->{tenants} };
		ok($result->{ok} && !@failed, "$label: call $call succeeded for every tenant")
		  or diag explain $result;
	}
}

# export_on_until_done exports from $on until a call exports nothing, and
# checks that every call succeeded for every tenant: no step by hand.
sub export_on_until_done
{
	my ($on, $batch, $label) = @_;
	my ($caught_up, @problems) = export_until_done(
		sub { sql($on, "SELECT interactions_cron.export_interactions(batch_size => $batch)") }, 60);
	ok($caught_up, "$label: the exports caught up");
	is(scalar(@problems), 0, "$label: every export succeeded for every tenant") or diag join("\n", @problems);
}

# check_lake checks that the lake holds each row of $on's table exactly
# once, and nothing else.
sub check_lake
{
	my ($on, $label) = @_;
	my %expected = map { $_ => 1 } split /\n/, sql($on, 'SELECT id FROM interaction_history');
	my $read = read_lake($lake);
	my ($missing, $duplicated, $unexpected) = compare_ids($read->{ids}, \%expected);
	lake_rows_once_ok($read, scalar(keys %expected), " ($label)");
	is(scalar(@$missing) + scalar(@$unexpected), 0, "$label: the lake holds the table's rows and no other")
	  or diag "missing @$missing; unexpected @$unexpected";
}

# identity returns the lake_epoch parts of $on: system identifier and timeline.
sub identity
{
	my ($on) = @_;
	return sql($on, q{SELECT s.system_identifier || '/' || c.timeline_id
	                  FROM pg_control_system() s, pg_control_checkpoint() c});
}

sql($node, 'CREATE EXTENSION interactions_cron');
sql($node, slurp_file('../reference/schema.sql'));
sql($node, q{INSERT INTO tenants (id, name) VALUES ('t1', 'T1'), ('t2', 'T2'), ('t3', 'T3')});

# add_rows is LakeCheck's add_tenant_rows on the app database: $count rows
# of each tenant, 7 minutes apart from $offset steps after midnight (UTC)
# two days ago.
sub add_rows
{
	my ($on, $count, $offset) = @_;
	sql($on, qq{
		INSERT INTO interaction_history (tenant_id, created_at, channel)
		SELECT t, date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '2 days'
		          + ($offset + g) * interval '7 minutes 0.25 seconds', 'sms'
		FROM unnest(ARRAY['t1', 't2', 't3']) t, generate_series(1, $count) g ORDER BY g, t});
}

# A base backup two batches in, then three more batches exported.
add_rows($node, 40, 0);
export_calls($node, 2, 5, 'before the base backup');
$node->backup('two_batches_in');
export_calls($node, 3, 5, 'after the base backup');
is(read_lake($lake)->{lines}, 75, 'the lake holds five batches of five rows of each tenant');
my $old_identity = identity($node);
$node->stop;

# The backup started as a cluster of its own, without recovery.signal:
# crash recovery, the same system identifier and timeline.
my $restored = PostgreSQL::Test::Cluster->new('restored');
$restored->init_from_backup($node, 'two_batches_in');
ok(!-e $restored->data_dir . '/recovery.signal', 'the restored cluster starts without recovery.signal');
$restored->start;
is(identity($restored), $old_identity, 'the restored cluster keeps the system identifier and the timeline');
is(sql($restored, q{SELECT string_agg(tenant_id || ':' || rows_exported, ' ' ORDER BY tenant_id)
                    FROM interactions_cron.export_checkpoints}),
	't1:10 t2:10 t3:10', 'its checkpoints are two batches in: three batches behind the lake');
my $first = decode_json(sql($restored, 'SELECT interactions_cron.export_interactions(batch_size => 7)'));
is(join(' ', map { "$_->{tenantId}:" . ($_->{error} // $_->{exported}) }
		sort { $a->{tenantId} cmp $b->{tenantId} } @{ $first->{tenants} }),
	't1:7 t2:7 t3:7', 'the first call after the restore exports a batch of every tenant, written again once its lake was swept');
like(slurp_file($restored->logfile), qr/tenant "t1" is behind its lake: "[^"]*batch-[^"]*-31\.json" holds rows past its checkpoint/,
	'the log says which file showed the database behind its lake');
export_on_until_done($restored, 7, 'base backup restored');
check_lake($restored, 'base backup restored');
is(sql($restored, q{SELECT count(*) FROM interactions_cron.export_checkpoints
                    WHERE status <> 'ok' OR lake_epoch IS DISTINCT FROM (SELECT s.system_identifier || '/' || c.timeline_id
                                  FROM pg_control_system() s, pg_control_checkpoint() c)}),
	'0', 'base backup restored: every checkpoint is ok and recorded in this history');

# An old pg_dump restored into the same cluster: dumped two batches in,
# three more exported, then the database dropped and the dump restored.
add_rows($restored, 30, 40);
export_calls($restored, 2, 5, 'before the dump');
my $dump = $restored->basedir . '/app.dump';
$restored->command_ok([ 'pg_dump', '-Fc', '-d', $restored->connstr('app'), '-f', $dump ], 'pg_dump -Fc of app');
export_calls($restored, 3, 5, 'after the dump');
my $lines = read_lake($lake)->{lines};
$restored->safe_psql('postgres', 'DROP DATABASE app');
$restored->safe_psql('postgres', 'CREATE DATABASE app');
$restored->command_ok([ 'pg_restore', '--exit-on-error', '-d', $restored->connstr('app'), $dump ],
	'pg_restore into the same cluster');
cmp_ok(sql($restored, 'SELECT sum(rows_exported) FROM interactions_cron.export_checkpoints'), '<', $lines,
	'the restored checkpoints are behind the lake');
# One call with a time budget drains every tenant: the batch that found
# the lake ahead is written again within the drain.
my $drained = decode_json(sql($restored,
		q{SELECT interactions_cron.export_interactions(batch_size => 3, max_runtime => '5 minutes')}));
my @behind = grep { $_->{error} || !$_->{caughtUp} } @{ $drained->{tenants} };
ok($drained->{ok} && !@behind, 'dump restored: one call with a time budget catches every tenant up')
  or diag explain $drained;
export_on_until_done($restored, 3, 'dump restored');
check_lake($restored, 'dump restored');

# A file at the name of t1's next batch whose rows are not this database's
# (another database exporting the tenant too) still fails t1, and stays.
add_rows($restored, 2, 80);
my $dry = decode_json(sql($restored,
		q{SELECT interactions_cron.export_interactions(tenant_id => 't1', dry_run => true)}));
my $next_file = $dry->{tenants}[0]{files}[0];
ok(defined $next_file, "the next file of t1 is $next_file");
PostgreSQL::Test::Utils::append_to_file("$lake/$next_file", "{\"id\": -1}\n");
for my $attempt (1, 2)
{
	my $clash = decode_json(sql($restored, q{SELECT interactions_cron.export_interactions(tenant_id => 't1')}));
	like($clash->{tenants}[0]{error} // '', qr/already exists in the lake/,
		"attempt $attempt: t1 fails, a file of other rows holds the name of its next batch");
	is(slurp_file("$lake/$next_file"), "{\"id\": -1}\n", "attempt $attempt: that file is untouched");
}
unlink "$lake/$next_file" or die "unlink: $!";
export_on_until_done($restored, 3, 'the other file gone');
check_lake($restored, 'the other file gone');

$restored->stop;
done_testing();
