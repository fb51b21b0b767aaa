# A shard restored after a tenant moved away (doc/operations.md, "Restores
# that keep the identity", t/063), where the source had exported every row
# before the move: the destination's files hold only its own rows, which
# the restored shard lacks, so its sweep keeps them.  The restored shard's
# own lost file holds rows the backup has (11-13) and rows written after it
# (14-15), which only the destination holds, behind its checkpoint: removing
# that file loses them.  db09c18 kept the destination's file without asking
# its origin, so nothing failed the tenant and rows 14-15 left the lake
# (hostile review 21 of issue 19); the sweep now removes nothing while
# another database's file says the tenant is exported there, and fails the
# tenant (58P02).  Twice: a base backup restored with its identity (and the
# restore statement), and a pg_dump restored into a new cluster.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use JSON::PP;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $export = 'SELECT interactions_cron.export_interactions(batch_size => 5)';

# moved_after_backup_ok runs the case in a lake of its own: $save takes the
# backup of the source a (before rows 14-15), and $restore brings it back as
# a new node exporting into the lake it is given, once t has moved to b.
sub moved_after_backup_ok
{
	my ($variant, $save, $restore) = @_;
	my ($lake, $src, $dst) = shards_sharing_a_lake("shard_a_$variant", "shard_b_$variant");

	add_tenant_rows($src, 13, 0, 't');
	is(decode_json(node_sql($src, $export))->{totalExported}, 5, "$variant: a exports rows 1-5");
	is(decode_json(node_sql($src, $export))->{totalExported}, 5, "$variant: a exports rows 6-10");
	$save->($src);
	add_tenant_rows($src, 2, 13, 't');
	is(decode_json(node_sql($src, $export))->{totalExported}, 5, "$variant: a exports rows 11-15, 14-15 written after the backup");
	move_tenant($src, $dst, 't', "$variant: b adopts t");
	add_tenant_rows($dst, 5, 20, 't');
	is(decode_json(node_sql($dst, $export))->{totalExported}, 5, "$variant: b exports five rows of its own");
	$src->stop;

	my $restored = $restore->($src, $lake);
	node_sql($restored, q{UPDATE interactions_cron.export_checkpoints SET lake_epoch = 'restored' WHERE status <> 'released'});
	my $offset = -s $restored->logfile;
	my $run = decode_json(node_sql($restored, $export));
	like($run->{tenants}[0]{error} // '', qr/another database placed it/,
		"$variant: the restored shard fails t on b's file");
	ok(!$restored->log_contains(qr/removing "/, $offset), "$variant: and removes no file");

	# The DBA releases the tenant that moved away, as the message asks.
	node_sql($restored, q{UPDATE tenants SET status = 'moving' WHERE id = 't'});
	node_sql($restored, q{SELECT interactions_cron.tenant_state('t', release => true)});
	table_rows_once_in_lake_ok($dst, $lake);
	$_->stop for ($restored, $dst);
	return;
}

moved_after_backup_ok(
	'backup',
	sub { $_[0]->backup('before_move') },
	sub {
		my ($src) = @_;
		my $node = PostgreSQL::Test::Cluster->new('shard_a_restored');
		$node->init_from_backup($src, 'before_move');
		$node->start;
		return $node;
	});

my $dump;
moved_after_backup_ok(
	'dump',
	sub {
		my ($src) = @_;
		$dump = $src->basedir . '/before_move.dump';
		$src->command_ok([ 'pg_dump', '-Fc', '-d', $src->connstr('postgres'), '-f', $dump ], 'pg_dump of a before the move');
	},
	sub {
		my ($src, $lake) = @_;
		my $node = started_node('shard_a_dumped',
			"interactions_cron.export_dir = '$lake'\ninteractions_cron.max_workers = 1\n");
		$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('postgres'), $dump ],
			'the dump restored into a new cluster');
		return $node;
	});
done_testing();
