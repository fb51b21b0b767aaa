# A cascaded standby is not waited for by a tenant's first batch, and its
# promotion sweeps the lost first export by its files' origin (issue 19;
# see t/031).  Before the origin was recorded, it failed the tenant 58P02
# on every call ("export file ... already exists in the lake"), or, with a
# first row the standby lacks, wrote rows twice.
#
# WaitForStandbysToFlush reads this server's walsenders only: primary -> A
# -> B, the first batch waits for A, never for B.  Here A's walsender to B is
# stopped (SIGSTOP) before the export; the primary and A are lost (both
# stopped immediately: one site), and B is promoted.
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
sub sql { my ($node, $query) = @_; return $node->safe_psql('postgres', $query, timeout => $timeout); }

my $lake = PostgreSQL::Test::Utils::tempdir() . '/lake';
my $primary = extension_node('cascade_primary',
	"interactions_cron.export_dir = '$lake'\ninteractions_cron.standby_wait = '5s'\n", allows_streaming => 1);
sql($primary, q{INSERT INTO tenants (id, name) VALUES ('n', 'N')});
add_tenant_rows($primary, 10, 0, 'n');

$primary->backup('for_a');
my $a = PostgreSQL::Test::Cluster->new('cascade_a');
$a->init_from_backup($primary, 'for_a', has_streaming => 1);
$a->start;
$primary->wait_for_catchup($a, 'replay');
$a->backup('for_b');
my $b = PostgreSQL::Test::Cluster->new('cascade_b');
$b->init_from_backup($a, 'for_b', has_streaming => 1);
$b->start;
$a->wait_for_catchup($b, 'replay', $primary->lsn('flush'));

my $sender = sql($a, 'SELECT pid FROM pg_stat_replication');
kill 'STOP', $sender or die "cannot stop $sender";

my $first = decode_json(sql($primary, 'SELECT interactions_cron.export_interactions()'));
is($first->{totalExported}, 10, 'the primary exports the tenant\'s first batch (A has it)');

$primary->stop('immediate');
$a->stop('immediate');
$b->promote;
$b->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die 'not promoted';
is(sql($b, 'SELECT count(*) FROM interactions_cron.export_checkpoints'), '0',
	'the promoted cascaded standby has no checkpoint of the tenant');

my ($caught_up, @problems) = export_until_done(sub { sql($b, 'SELECT interactions_cron.export_interactions()') }, 5);
is(scalar(@problems), 0, 'every call on the new primary succeeds for every tenant') or diag join("\n", @problems[0 .. 0]);
lake_rows_once_ok(read_lake($lake), sql($b, 'SELECT count(*) FROM interaction_history'), ' (after promoting B)');

$b->stop;
done_testing();
