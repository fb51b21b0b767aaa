# A reinstalled extension never takes the files of the one before for its
# own (issue 19, from a hostile review of the origin sweep, t/031).  A
# checkpoint of no recorded history sweeps the files this database placed
# on another timeline; a reinstall's checkpoints have none, and after a
# failover every file of the first installation is of another timeline.
# So the origin names the extension's OID too, which CREATE EXTENSION
# makes new and a physical copy keeps.  Here the lake has 30 rows in three
# files from the old primary; the standby is promoted, and the DBA follows
# "Reinstall and replay" to keep the position (save the checkpoints, drop,
# create, put them back), with one export call between the create and the
# putting back (a pg_cron job not unscheduled).  Without the extension's
# OID in the origin, that call removed the three files, wrote one batch
# back, and the checkpoints put back stood past rows nothing wrote again
# (rows 11 to 30 lost).  Now it fails the tenant (58P02) at the first
# file's name, removes nothing, and every row stays in the lake once.
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
my $lake = PostgreSQL::Test::Utils::tempdir() . '/lake';
my ($primary, $standby) = primary_with_standby('reinstall', "interactions_cron.export_dir = '$lake'\n");

$primary->safe_psql('postgres', q{INSERT INTO tenants (id, name) VALUES ('r1', 'R1')});
add_tenant_rows($primary, 30, 0, 'r1');
export_all($primary, 10, 'the old primary');
$primary->wait_for_catchup($standby, 'replay');
$primary->stop;
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die 'not promoted';
sub sql { return $standby->safe_psql('postgres', $_[0], timeout => $timeout); }
is(sql('SELECT count(*) FROM interactions_cron.export_checkpoints'), '1',
	'the new primary has the checkpoint of the old one');

sql(q{CREATE TABLE saved_checkpoints AS SELECT * FROM interactions_cron.export_checkpoints;
      CREATE TABLE saved_intents AS SELECT * FROM interactions_cron.export_intents;
      DROP EXTENSION interactions_cron;
      CREATE EXTENSION interactions_cron;});
my $between = decode_json(sql('SELECT interactions_cron.export_interactions(batch_size => 10)'));
is($between->{totalExported}, 0, 'the call between the create and the putting back exports nothing');
like($between->{tenants}[0]{error} // '', qr/already exists in the lake/,
	'it fails the tenant at the first file\'s name instead of sweeping the old installation\'s files');
sql(q{DELETE FROM interactions_cron.export_checkpoints;
      DELETE FROM interactions_cron.export_intents;
      INSERT INTO interactions_cron.export_checkpoints SELECT * FROM saved_checkpoints;
      INSERT INTO interactions_cron.export_intents SELECT * FROM saved_intents;});
add_tenant_rows($standby, 5, 30, 'r1');
export_all($standby, 10, 'after the checkpoints are put back');
lake_rows_once_ok(read_lake($lake), 35, ' after the reinstall');

$standby->stop;
done_testing();
