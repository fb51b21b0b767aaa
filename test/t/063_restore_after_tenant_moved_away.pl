# Hostile review 13 of issue 19: a restore that keeps the identity (a base
# backup started without recovery.signal) of a shard that a tenant has
# moved away from since the backup ("Moving a tenant to another database").
# The restored shard has the tenant active again, at its old checkpoint.
# Its first batch takes the name of the file the lost history placed next,
# the shard is found behind its lake, and the sweep judged every file named
# past the checkpoint, whoever placed it: the destination's first file (the
# rows the source had not exported when the tenant moved, and the
# destination's own later rows) holds rows the restored table has, and was
# removed; the destination's own rows, past its checkpoint, were never
# written again.  Now a file another database placed, in a history this one
# never had, is left alone and fails the tenant (58P02), even after the
# restore statement (hostile review 15, finding 3), and the sweep removes
# nothing until it can judge every file: the lost history's own file stays
# too, as the only copy of its rows once the DBA has released the tenant
# here.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use JSON::PP;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $lake = shared_lake();
my $settings = "interactions_cron.export_dir = '$lake'\ninteractions_cron.max_workers = 1\n";
my $src = extension_node('shard_a', $settings, allows_streaming => 1);
my $dst = new_tenant_database('shard_b', 100000, $settings);
my $export = 'SELECT interactions_cron.export_interactions(batch_size => 5)';

node_sql($src, q{INSERT INTO tenants (id, name) VALUES ('t', 'T')});
add_tenant_rows($src, 20, 0, 't');
is(decode_json(node_sql($src, $export))->{totalExported}, 5, 'a exports rows 1-5');
is(decode_json(node_sql($src, $export))->{totalExported}, 5, 'a exports rows 6-10');
$src->backup('before_move');
is(decode_json(node_sql($src, $export))->{totalExported}, 5, 'a exports rows 11-15 after the backup');

# The move, step by step (rows 16-20 not exported yet).
move_tenant($src, $dst, 't', 'b adopts the state');

# b writes on, and exports rows 16-20 with its own first rows.
my @b_rows = destination_exports_on($dst, 'b exports rows 16-20 and five rows of its own');
$src->stop;

# Shard a is restored from its backup: no recovery.signal, same identity.
my $restored = PostgreSQL::Test::Cluster->new('shard_a_restored');
$restored->init_from_backup($src, 'before_move');
$restored->start;
# The restore statement that operations.md gives for every restore.
node_sql($restored, q{UPDATE interactions_cron.export_checkpoints SET lake_epoch = 'restored' WHERE status <> 'released'});
my $offset = -s $restored->logfile;
for my $call (1 .. 3)
{
	my $result = decode_json(node_sql($restored, $export));
	like($result->{tenants}[0]{error} // '', qr/another database placed it/,
		"call $call: the restored shard fails the tenant on b's file");
}
ok(!$restored->log_contains(qr/removing "/, $offset), 'the restored shard removes no file')
  or diag 'it removed a file';

# Had this shard replaced b (a wrong move undone, say), the DBA records b's
# history, which the error names, as this database's: its sweep then
# judges b's files too.  On a copy of the lake (origins and all), from
# another copy of the backup.
my $lake_copy = copy_lake($lake);
my $replacing = PostgreSQL::Test::Cluster->new('shard_a_replacing');
$replacing->init_from_backup($src, 'before_move');
$replacing->append_conf('postgresql.conf', "interactions_cron.export_dir = '$lake_copy'\n");
$replacing->start;
my $error = decode_json(node_sql($replacing, $export))->{tenants}[0]{error} // '';
my ($b_history) = $error =~ /another database placed it, in history ([0-9a-f-]{36})/;
ok(defined $b_history, 'on the copy too, b\'s file fails the tenant at first, naming b\'s history')
  or diag $error;
node_sql($replacing, qq{INSERT INTO interactions_cron.export_histories (lake_epoch, history_id)
	VALUES ('replaces shard b', '$b_history')});
my $replacing_offset = -s $replacing->logfile;
is(decode_json(node_sql($replacing, $export))->{totalExported}, 5, 'once b\'s history is this one\'s, the tenant exports');
ok($replacing->log_contains(qr/removing "[^"]*-16\.json"/, $replacing_offset), 'its sweep removed b\'s file');
$replacing->stop;

# The way out the error names: the tenant is b's now, as it was before the
# restore.
node_sql($restored, q{UPDATE tenants SET status = 'moving' WHERE id = 't'});
node_sql($restored, q{SELECT interactions_cron.tenant_state('t', release => true)});
ok(decode_json(node_sql($restored, $export))->{ok}, 'once released, the restored shard\'s calls are ok');

# What b exported stays in the lake, once.
my %lines;
read_lake($lake, on_line => sub { $lines{ $_[0]{id} }++ });
my @missing = grep { !$lines{$_} } @b_rows;
is(scalar(@missing), 0, 'every row of b is in the lake') or diag "missing: @missing";
my @twice = grep { $lines{$_} > 1 } sort { $a <=> $b } keys %lines;
is(scalar(@twice), 0, 'no row is in two files') or diag "twice: @twice";
$restored->stop;
$dst->stop;
done_testing();
