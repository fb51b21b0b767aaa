# An asynchronous failover that loses a tenant's FIRST export (its
# checkpoint row with it) sweeps that export's files (issue 19, cases 3 and
# 4).  A first batch waits for the standbys streaming from the primary
# (interactions_cron.standby_wait, t/023); this standby is cut off before
# the export (primary_conninfo emptied), so nothing waits for it, and the
# new primary has no checkpoint, so no recorded history to sweep from.
# Each file carries its origin (the system identifier, the timeline and
# the database's OID), and a checkpoint with no recorded history sweeps
# the files that this database, or a physical copy of it, placed on
# another timeline: a history it does not have.  Two tenants, never
# exported before; their rows reach the standby; the old primary exports
# each once and crashes (both failed before the origin was recorded):
#   n1: its first row is a long transaction's, committed after the cut:
#       the new primary lacks it, and named its first file after n1's
#       second row, writing rows 2..10 a second time;
#   n2: the new primary's first file has the lost export's name: the tenant
#       failed with 58P02 on every call.
# Then a database copied from the new primary's (CREATE DATABASE ...
# TEMPLATE: the same rows, another OID) exports n3, which the old primary
# exported on the old timeline: it must not take that file for its own.
# All of it with local files, then with S3 (s3rver on 127.0.0.1), whose
# objects carry the origin as metadata.
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

# rows_once_ok checks that each of @ids, the rows of $what, is in the lake
# ($copies: id to lines) exactly once, in the run of $storage.
sub rows_once_ok
{
	my ($copies, $storage, $what, @ids) = @_;
	my @missing = grep { !$copies->{$_} } @ids;
	my @duplicated = grep { ($copies->{$_} // 0) > 1 } @ids;
	is(scalar(@missing), 0, "$storage: every row of $what is in the lake") or diag "missing: @missing";
	is(scalar(@duplicated), 0, "$storage: no row of $what is in the lake twice") or diag "duplicated: @duplicated";
	return;
}

# lose_first_export runs the failover, with $settings (postgresql.conf
# lines) on both servers and $read_lake returning read_lake's answer for
# the lake, and then the copied database; $storage names the run.
sub lose_first_export
{
	my ($storage, $settings, $read_lake) = @_;
	my $primary = extension_node("${storage}_primary", $settings, allows_streaming => 1);
	$primary->backup('for_standby');
	my $standby = PostgreSQL::Test::Cluster->new("${storage}_standby");
	$standby->init_from_backup($primary, 'for_standby', has_streaming => 1);
	$standby->start;

	# n3 is exported while the standby streams: the new primary has its
	# checkpoint, recorded on the old timeline.
	sql($primary, q{INSERT INTO tenants (id, name) VALUES ('n3', 'N3')});
	add_tenant_rows($primary, 5, 0, 'n3');
	is(decode_json(sql($primary, 'SELECT interactions_cron.export_interactions()'))->{totalExported}, 5,
		"$storage: the old primary exports n3");
	sql($primary, q{INSERT INTO tenants (id, name) VALUES ('n1', 'N1'), ('n2', 'N2')});

	# n1's first row: a transaction that starts first and commits last.
	my $long = $primary->background_psql('postgres', on_error_stop => 1);
	$long->query_safe(q{BEGIN; INSERT INTO interaction_history (tenant_id, channel) VALUES ('n1', 'sms')});
	sql($primary, q{INSERT INTO interaction_history (tenant_id, channel)
	                SELECT t, 'sms' FROM unnest(ARRAY['n1', 'n2']) t, generate_series(1, 9) ORDER BY 1});
	sql($primary, q{INSERT INTO interaction_history (tenant_id, channel) VALUES ('n2', 'sms')});

	# Cut the standby off: what the primary commits from now on is lost.
	cut_off_standby($primary, $standby, 0);
	$long->query_safe('COMMIT');
	$long->quit;

	wait_rows_past_margin($primary);
	my $first = decode_json(sql($primary, 'SELECT interactions_cron.export_interactions()'));
	is($first->{totalExported}, 20, "$storage: the old primary exports both tenants once (its first export of them)");

	$primary->stop('immediate');
	$standby->promote;
	$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die 'not promoted';
	is(sql($standby, q{SELECT string_agg(tenant_id, ',') FROM interactions_cron.export_checkpoints}), 'n3',
		"$storage: the new primary has no checkpoint of n1 and n2: their first export was lost");

	wait_rows_past_margin($standby);
	my ($caught_up, @problems) = export_until_done(sub { sql($standby, 'SELECT interactions_cron.export_interactions()') }, 10);
	is(scalar(@problems), 0, "$storage: every call on the new primary succeeds for every tenant") or diag join("\n", @problems);
	rows_once_ok($read_lake->()->{ids}, $storage, 'the new primary',
		split /\n/, sql($standby, 'SELECT id FROM interaction_history ORDER BY id'));

	# The copy has the rows of n3 and no checkpoint of it; the lake has the
	# first database's file of them, placed on the old timeline.
	sql($standby, 'CREATE DATABASE copy TEMPLATE postgres');
	$standby->safe_psql('copy', 'DELETE FROM interactions_cron.export_checkpoints', timeout => $timeout);
	my $copy = decode_json($standby->safe_psql('copy', 'SELECT interactions_cron.export_interactions()',
											   timeout => $timeout));
	my ($n3) = grep { $_->{tenantId} eq 'n3' } @{ $copy->{tenants} };
	like($n3->{error} // '', qr/already exists in the lake/,
		"$storage: the copy fails n3 on the first database's file rather than sweeping it");
	rows_once_ok($read_lake->()->{ids}, $storage, 'n3',
		split /\n/, sql($standby, q{SELECT id FROM interaction_history WHERE tenant_id = 'n3'}));
	$standby->stop;
	return;
}

my $lake = PostgreSQL::Test::Utils::tempdir() . '/lake';
lose_first_export('local', "interactions_cron.export_dir = '$lake'\n", sub { read_lake($lake) });

my ($s3, $s3_port, $s3_dir) = start_s3rver();
# Credentials from the server's environment (settings would need the
# library preloaded).
local $ENV{AWS_ACCESS_KEY_ID} = 'S3RVER';
local $ENV{AWS_SECRET_ACCESS_KEY} = 'S3RVER';
my $spool = PostgreSQL::Test::Utils::tempdir();
my $mirror = PostgreSQL::Test::Utils::tempdir();
lose_first_export('s3', qq{
interactions_cron.export_dir = '$spool'
interactions_cron.storage = 's3'
interactions_cron.s3_bucket = 'lake'
interactions_cron.s3_prefix = 'lost-first/'
interactions_cron.s3_endpoint = 'http://127.0.0.1:$s3_port'
interactions_cron.s3_path_style = on
}, sub { read_s3rver_lake("$s3_dir/store", 'lake', 'lost-first/', "$mirror/lake") });
$s3->kill_kill;

done_testing();
