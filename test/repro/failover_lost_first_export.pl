# FAILS on main (hostile review of issue 19, cases 3 and 4): an asynchronous
# failover that loses a tenant's FIRST export (its checkpoint row with it)
# is never swept, since the new primary's checkpoint of that tenant has no
# recorded history (lake_epoch) -- it has no checkpoint at all.  A first
# batch now waits for the standbys streaming from the primary
# (interactions_cron.standby_wait, t/023); this standby is cut off before
# the export (primary_conninfo emptied), so nothing waits for it.  Two
# tenants, never exported before; their rows reach the standby; the old
# primary exports each once and crashes:
#   n1: its first row is a long transaction's, committed after the cut:
#       the new primary lacks it, names its first file after n1's second
#       row, and writes rows 2..10 a second time (silent duplicates);
#   n2: the new primary's first file has the lost export's name: the tenant
#       fails with 58P02 on every call until someone looks.
#
# Run: make prove_installcheck PROVE_TESTS=repro/failover_lost_first_export.pl
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../t";
use JSON::PP;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $timeout = $PostgreSQL::Test::Utils::timeout_default;

sub sql { my ($node, $query) = @_; return $node->safe_psql('postgres', $query, timeout => $timeout); }

my $lake = PostgreSQL::Test::Utils::tempdir() . '/lake';
my $primary = extension_node('lost_first_primary', "interactions_cron.export_dir = '$lake'\n",
	allows_streaming => 1);
sql($primary, q{INSERT INTO tenants (id, name) VALUES ('n1', 'N1'), ('n2', 'N2')});

$primary->backup('for_standby');
my $standby = PostgreSQL::Test::Cluster->new('lost_first_standby');
$standby->init_from_backup($primary, 'for_standby', has_streaming => 1);
$standby->start;

# n1's first row: a transaction that starts first and commits last.
my $long = $primary->background_psql('postgres', on_error_stop => 1);
$long->query_safe(q{BEGIN; INSERT INTO interaction_history (tenant_id, channel) VALUES ('n1', 'sms')});
sql($primary, q{INSERT INTO interaction_history (tenant_id, channel)
                SELECT t, 'sms' FROM unnest(ARRAY['n1', 'n2']) t, generate_series(1, 9) ORDER BY 1});
sql($primary, q{INSERT INTO interaction_history (tenant_id, channel) VALUES ('n2', 'sms')});

# Cut the standby off: what the primary commits from now on is lost.
$primary->wait_for_catchup($standby, 'replay');
$standby->append_conf('postgresql.conf', "primary_conninfo = ''");
$standby->reload;
$primary->poll_query_until('postgres', 'SELECT count(*) = 0 FROM pg_stat_replication')
  or die 'the standby did not stop streaming';
$long->query_safe('COMMIT');
$long->quit;

$primary->poll_query_until('postgres', q{SELECT max(created_at) < now() - interval '1.5 seconds' FROM interaction_history})
  or die 'the rows did not pass the watermark margin';
my $first = decode_json(sql($primary, 'SELECT interactions_cron.export_interactions()'));
is($first->{totalExported}, 20, 'the old primary exports both tenants once (its first export of them)');

$primary->stop('immediate');
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die 'not promoted';
is(sql($standby, 'SELECT count(*) FROM interactions_cron.export_checkpoints'), '0',
	'the new primary has no checkpoint: the first export was lost');

$standby->poll_query_until('postgres', q{SELECT max(created_at) < now() - interval '1.5 seconds' FROM interaction_history})
  or die 'the rows did not pass the watermark margin';
my ($caught_up, @problems) = export_until_done(sub { sql($standby, 'SELECT interactions_cron.export_interactions()') }, 10);
is(scalar(@problems), 0, 'every call on the new primary succeeds for every tenant') or diag join("\n", @problems);

my $copies = read_lake($lake)->{ids};
my @ids = split /\n/, sql($standby, 'SELECT id FROM interaction_history ORDER BY id');
my @missing = grep { !$copies->{$_} } @ids;
my @duplicated = grep { ($copies->{$_} // 0) > 1 } @ids;
is(scalar(@missing), 0, 'every row of the new primary is in the lake') or diag "missing: @missing";
is(scalar(@duplicated), 0, 'no row of the new primary is in the lake twice') or diag "duplicated: @duplicated";

$standby->stop;
done_testing();
