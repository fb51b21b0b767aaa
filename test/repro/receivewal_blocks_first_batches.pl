# REPRODUCTION (fails on main at c72bae9): while pg_receivewal streams from
# the primary (WAL archiving without a replication slot, its documented
# default), no tenant's first batch is ever exported.
#
# pg_receivewal without --slot or --synchronous reports no flush position
# (InvalidXLogRecPtr, pg_stat_replication.flush_lsn is NULL).  Its walsender
# is physical and STREAMING, so LaggingStandby (src/standby_wait.c) counts it
# as a standby that has flushed 0/0: every first batch waits standby_wait
# (10 s by default) and fails 55000, at every call, for as long as the
# archiver runs.  pg_receivewal is no standby: it can never be promoted.
# Observed (pg_stat_replication of pg_receivewal: state streaming, flush_lsn NULL):
#   not ok 2 - a new tenant is exported while pg_receivewal archives the WAL
#   # {"error": "not exported yet: the tenant's first batch waits for the
#   #   standbys to have it, and the standby of walsender PID N has flushed the
#   #   WAL up to 0/0, not yet to 0/...", ...}
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../t";
use IPC::Run;
use JSON::PP;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $timeout = $PostgreSQL::Test::Utils::timeout_default;
sub sql { my ($node, $query) = @_; return $node->safe_psql('postgres', $query, timeout => $timeout); }

my $lake = PostgreSQL::Test::Utils::tempdir() . '/lake';
my $archive = PostgreSQL::Test::Utils::tempdir();
my $primary = PostgreSQL::Test::Cluster->new('receivewal_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "interactions_cron.export_dir = '$lake'\ninteractions_cron.standby_wait = '2s'\n");
$primary->start;
sql($primary, 'CREATE EXTENSION interactions_cron');
sql($primary, slurp_file('../reference/schema.sql'));
sql($primary, q{INSERT INTO tenants (id, name) VALUES ('fresh', 'Fresh')});
add_tenant_rows($primary, 10, 0, 'fresh');

my $receivewal = IPC::Run::start(
	[ 'pg_receivewal', '--no-loop', '-D', $archive, '-d', $primary->connstr('postgres') ],
	'>', \my $out, '2>', \my $err);
ok($primary->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_replication WHERE state = 'streaming'}),
	'pg_receivewal streams from the primary');
note sql($primary, q{SELECT application_name, state, sent_lsn, coalesce(flush_lsn::text, 'NULL') FROM pg_stat_replication});

my $result = decode_json(sql($primary, q{SELECT interactions_cron.export_interactions()}));
ok($result->{ok} && $result->{totalExported} == 10, 'a new tenant is exported while pg_receivewal archives the WAL')
  or diag encode_json($result->{tenants});

$receivewal->kill_kill;
$primary->stop;
done_testing();
