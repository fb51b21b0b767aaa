# pg_receivewal is no standby (a hostile review's reproduction: while it ran,
# no tenant's first batch was exported).  Without --slot or --synchronous it
# reports no flush position (pg_stat_replication.flush_lsn is NULL); its
# walsender is physical and streaming, and was taken for a standby that had
# flushed 0/0, so every first batch waited standby_wait and failed, at every
# call.  A receiver that reports no flush position is not waited for.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
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
my $primary = extension_node('receivewal_primary',
	"interactions_cron.export_dir = '$lake'\ninteractions_cron.standby_wait = '2s'\n", allows_streaming => 1);
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
