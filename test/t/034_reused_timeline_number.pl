# A timeline number taken twice does not hide a lost first export (issue
# 19; from a hostile review of the origin sweep, t/031).  Two standbys of
# one primary, no WAL archive (streaming only).  The primary is lost;
# standby A is promoted (timeline 2) and exports a tenant's first batch
# (nothing streams from A, so nothing waits).  A is lost too, and standby
# B, which never saw A's history, is promoted: with no archive to find A's
# 00000002.history in, it picks timeline 2 as well.  B has no checkpoint of
# the tenant.  When a file's origin named the timeline, A's files looked
# like B's own, and the sweep left them.  Tenant t: B's first batch met A's
# file by name (58P02 on every call).  Tenant d, whose first row is a long
# transaction's that reached A and not B: B named its first file after d's
# second row and wrote rows 2..10 a second time, in silence.  The origin
# now names a random history id drawn at the first export in each history
# (interactions_cron.export_histories): A's is not B's.
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
my $primary = extension_node('reuse_primary', "interactions_cron.export_dir = '$lake'\n", allows_streaming => 1);
sql($primary, q{INSERT INTO tenants (id, name) VALUES ('t', 'T')});
add_tenant_rows($primary, 10, 0, 't');
$primary->backup('for_standbys');
my $node_a = PostgreSQL::Test::Cluster->new('reuse_a');
$node_a->init_from_backup($primary, 'for_standbys', has_streaming => 1);
$node_a->start;
my $node_b = PostgreSQL::Test::Cluster->new('reuse_b');
$node_b->init_from_backup($primary, 'for_standbys', has_streaming => 1);
$node_b->start;
$primary->wait_for_catchup($node_a, 'replay');
$primary->wait_for_catchup($node_b, 'replay');

# Tenant d: its first row is a long transaction's, whose commit reaches A
# (the standby promoted first, as the most advanced) and not B.
sql($primary, q{INSERT INTO tenants (id, name) VALUES ('d', 'D')});
my $long = $primary->background_psql('postgres', on_error_stop => 1);
$long->query_safe(q{BEGIN; INSERT INTO interaction_history (tenant_id, channel) VALUES ('d', 'sms')});
sql($primary, q{INSERT INTO interaction_history (tenant_id, channel) SELECT 'd', 'sms' FROM generate_series(1, 9)});
cut_off_standby($primary, $node_b, 1);
$long->query_safe('COMMIT');
$long->quit;
$primary->wait_for_catchup($node_a, 'replay');

$primary->stop('immediate');
$node_a->promote;
$node_a->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die 'A not promoted';
wait_rows_past_margin($node_a);
my $first = decode_json(sql($node_a, 'SELECT interactions_cron.export_interactions()'));
is($first->{totalExported}, 20, 'A, promoted, exports the first batch of t and d');
$node_a->stop('immediate');

$node_b->promote;
$node_b->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die 'B not promoted';
is(sql($node_b, q{SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)}), '00000002',
	'B chose timeline 2 too (no archive holds A\'s history)');
is(sql($node_b, 'SELECT count(*) FROM interactions_cron.export_checkpoints'), '0',
	'B has no checkpoint of t or d: A\'s first export is a lost history');

wait_rows_past_margin($node_b);
my ($caught_up, @problems) = export_until_done(sub { sql($node_b, 'SELECT interactions_cron.export_interactions()') }, 5);
is(scalar(@problems), 0, 'every call on B succeeds for every tenant') or diag $problems[0];
my $copies = read_lake($lake)->{ids};
my @duplicated = sort { $a <=> $b } grep { $copies->{$_} > 1 } keys %$copies;
is(scalar(@duplicated), 0, 'no row is in the lake twice') or diag "duplicated: @duplicated";
my @missing = grep { !$copies->{$_} } split /\n/, sql($node_b, 'SELECT id FROM interaction_history');
is(scalar(@missing), 0, 'every row B has is in the lake') or diag "missing: @missing";

$node_b->stop;
done_testing();
