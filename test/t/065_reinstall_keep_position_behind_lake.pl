# Hostile review 15 of issue 19, finding 4: "Reinstall and replay", keeping
# the position.  The checkpoints were saved one batch behind the lake (an
# export confirmed one more batch before the DROP).  The first batch after
# the reinstall takes the name of the former installation's file, whose
# origin names the former extension: another database's, to the new one.
# Without its history, the file cannot be judged and the tenant fails with
# 58P02 on every call (the procedure now saves and puts back the histories:
# t/011).  Once the DBA records the history the log names as this
# database's, it is found behind its lake, the file swept and its rows
# written again, once.
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
my $node = tenant_t_node('reinstall_keep', $lake);
my $export = 'SELECT interactions_cron.export_interactions(batch_size => 5)';
add_tenant_rows($node, 10, 0, 't');
is(decode_json(node_sql($node, $export))->{totalExported}, 5, 'rows 1-5');
node_sql($node, q{CREATE TABLE saved_checkpoints AS SELECT * FROM interactions_cron.export_checkpoints;
	CREATE TABLE saved_intents AS SELECT * FROM interactions_cron.export_intents});
is(decode_json(node_sql($node, $export))->{totalExported}, 5, 'rows 6-10, confirmed after the save');
node_sql($node, q{DROP EXTENSION interactions_cron;
	CREATE EXTENSION interactions_cron});

# The procedure as 1.1 gave it, without the histories: the former
# installation's file cannot be judged.
my $offset = -s $node->logfile;
node_sql($node, q{INSERT INTO interactions_cron.export_checkpoints SELECT * FROM saved_checkpoints;
	INSERT INTO interactions_cron.export_intents SELECT * FROM saved_intents});
like(decode_json(node_sql($node, $export))->{tenants}[0]{error} // '', qr/already exists in the lake/,
	'without the former histories, the taken name fails the tenant');
my ($former) = PostgreSQL::Test::Utils::slurp_file($node->logfile, $offset)
  =~ /another database placed it, in history ([0-9a-f-]{36})/;
ok(defined $former, 'the log names the history of the file it cannot judge');

# The way out troubleshooting.md gives: record that history as this
# database's.
node_sql($node, qq{INSERT INTO interactions_cron.export_histories (lake_epoch, history_id)
	VALUES ('former installation', '$former')});
add_tenant_rows($node, 3, 20, 't');
for my $call (1 .. 3)
{
	my $result = decode_json(node_sql($node, $export));
	is($result->{tenants}[0]{error} // '', '', "call $call: the tenant exports");
}
table_rows_once_in_lake_ok($node, $lake, 'interaction_history');
$node->stop;
done_testing();
