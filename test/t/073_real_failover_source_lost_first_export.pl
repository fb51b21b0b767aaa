# Hostile review 18 of issue 19, finding 2: a real failover of the source that loses
# a tenant's FIRST export (t/031's case) followed by a move of the tenant
# to another cluster before the source exports it again.  The promoted
# standby has no checkpoint of the tenant: tenant_state creates one, with
# no recorded history, and the destination adopts that.  A checkpoint of
# no recorded history sweeps only the files this database placed in a lost
# history (SWEEP_LOST_HISTORY_FILES): the source's lost file, another database's, is
# never judged.
#   p: the lost file is named after p's first row, as b's first file is;
#   q: q's first row is a long transaction's, committed after the standby
#      was cut off (t/031's n1): the promoted standby lacks it, b's first
#      file is named after q's second row, and rows 2..10 of q would be in
#      the lake twice.
# Now such a sweep also judges the files of the database the checkpoint was
# adopted from, in its histories other than the one it released the tenant
# in (OriginInSourcesLostHistory).
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
my ($src, $standby) = primary_with_standby('src_a', $settings);
my $dst = new_tenant_database('dst_b', 100000, $settings);
my $export = 'SELECT interactions_cron.export_interactions()';

node_sql($src, q{INSERT INTO tenants (id, name) VALUES ('p', 'P'), ('q', 'Q')});
my $long = $src->background_psql('postgres', on_error_stop => 1);
$long->query_safe(q{BEGIN; INSERT INTO interaction_history (tenant_id, channel) VALUES ('q', 'sms')});
node_sql($src, q{INSERT INTO interaction_history (tenant_id, channel)
	SELECT t, 'sms' FROM unnest(ARRAY['p', 'q']) t, generate_series(1, 9) ORDER BY 1});
cut_off_standby($src, $standby, 0);
$long->query_safe('COMMIT');
$long->quit;
wait_rows_past_margin($src);
is(decode_json(node_sql($src, $export))->{totalExported}, 19, 'a exports p and q once (their first export)');
$src->stop('immediate');
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die 'not promoted';
is(node_sql($standby, q{SELECT count(*) FROM interactions_cron.export_checkpoints}), '0',
	'the promoted standby has no checkpoint of p and q');

move_tenant($standby, $dst, 'p', 'b adopts p from the promoted standby');
move_tenant($standby, $dst, 'q', 'b adopts q from the promoted standby');
calls_without_errors_ok($dst, $export, 'b exports p and q');
my %lines;
read_lake($lake, on_line => sub { $lines{ $_[0]{id} }++ });
my @ids = split /\n/, node_sql($dst, q{SELECT id FROM interaction_history ORDER BY id});
my @twice = grep { ($lines{$_} // 0) > 1 } @ids;
my @missing = grep { !$lines{$_} } @ids;
is(scalar(@twice), 0, 'no row of p or q is in the lake twice') or diag "twice: @twice";
is(scalar(@missing), 0, 'every row of p and q is in the lake') or diag "missing: @missing";
$standby->stop;
$dst->stop;
done_testing();
