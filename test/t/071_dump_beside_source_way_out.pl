# Hostile review 17 of issue 19, finding 4: a dump restored into the same
# cluster beside the database it was taken from (doc/operations.md "Dump
# and restore", steps 3-5 restore into app2 and stop exporting from app,
# which is kept) is behind its lake, and its first batch fails with 58P02
# ("which is that database's (OID ..., still in this cluster)") as long as
# app exists.  The way out doc/troubleshooting.md gave, recording that
# history as this database's with an INSERT into export_histories, failed
# with a duplicate key (failed on b75d470): the id is app's, which app2
# already holds under app's prefix, since the row came with the dump.  The
# documented statement now clears the prefix of a row already there, and
# app2 exports on, every row once.
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
my $node = started_node('one_cluster', "interactions_cron.export_dir = '$lake'\ninteractions_cron.max_workers = 1\n");
sub sq { my ($db, $sql) = @_; return place_sql([ $node, $db ], $sql); }
my $export = 'SELECT interactions_cron.export_interactions(batch_size => 5)';

$node->safe_psql('postgres', 'CREATE DATABASE app');
sq('app', 'CREATE EXTENSION interactions_cron');
sq('app', slurp_file('../reference/schema.sql'));
sq('app', q{INSERT INTO tenants (id, name) VALUES ('t', 'T')});
sq('app', q{INSERT INTO interaction_history (tenant_id, created_at, channel)
	SELECT 't', date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '2 days'
	          + g * interval '7 minutes 0.25 seconds', 'sms'
	FROM generate_series(1, 20) g ORDER BY g});
is(decode_json(sq('app', $export))->{totalExported}, 5, 'app exports rows 1-5');
my $dump = PostgreSQL::Test::Utils::tempdir() . '/app.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('app'), '-f', $dump ], 'app is dumped');
# Step 1 skipped: app exports after the dump, then is no longer exported from.
is(decode_json(sq('app', $export))->{totalExported}, 5, 'app exports rows 6-10 after the dump');
$node->safe_psql('postgres', 'CREATE DATABASE app2');
$node->command_ok([ 'pg_restore', '-d', $node->connstr('app2'), $dump ], 'the dump is restored into app2');

my $offset = -s $node->logfile;
my $result = decode_json(sq('app2', $export));
my $error = $result->{tenants}[0]{error} // '';
note "first export of app2: $error";
my $log = substr(slurp_file($node->logfile), $offset);
like($log, qr/another database placed it, in history [0-9a-f-]{36}, which is that database's \(OID \d+, still in this cluster\)/,
	'app2 refuses app\'s file (troubleshooting.md\'s line)');
if ($log =~ /in history ([0-9a-f-]{36})/)
{
	my $id = $1;
	# doc/troubleshooting.md's statement, as a superuser.
	my ($rc, $out, $err) = $node->psql('app2',
		"INSERT INTO interactions_cron.export_histories (lake_epoch, history_id) VALUES ('replaced app', '$id')
		 ON CONFLICT (history_id) DO UPDATE SET origin_prefix = NULL");
	is($rc, 0, 'the documented statement records app\'s history as app2\'s') or diag $err;
}
my @errors;
for (1 .. 5) { my $r = decode_json(sq('app2', $export)); push @errors, grep { defined } map { $_->{error} } @{ $r->{tenants} }; }
is($errors[-1] // '', '', 'app2 exports t on') or diag explain \@errors;
my %lines;
read_lake($lake, on_line => sub { $lines{ $_[0]{id} }++ });
is(join(',', grep { ($lines{$_} // 0) != 1 } 1 .. 20), '', 'every row of t is in the lake once');

$node->stop;
done_testing();
