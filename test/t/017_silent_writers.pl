# Busy writers that do not advertise their transactions' start
# (track_activities = off), each in a transaction of a fifth of a second
# after another (issue 19, 6): the export waits only for the transactions
# that were running when its watermark was taken, each of which ends within
# moments, and never for the ones that start afterwards (1.1 waited for
# those too, until watermark_wait failed every call).  Every call
# succeeds, and once the writers stop, the lake holds every row once.
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
my $node = PostgreSQL::Test::Cluster->new('silent_writers');
$node->init;
my $lake = $node->basedir . '/lake';
$node->append_conf('postgresql.conf', qq{
interactions_cron.export_dir = '$lake'
interactions_cron.watermark_wait = '3s'
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0], timeout => $timeout); }

sql('CREATE EXTENSION interactions_cron');
sql(slurp_file('../reference/schema.sql'));
sql(q{
	INSERT INTO tenants (id, name) SELECT 'w' || g, 'Writer ' || g FROM generate_series(1, 4) g;
	CREATE TABLE writers_stop (stop boolean NOT NULL);
	INSERT INTO writers_stop VALUES (false);
	-- write inserts a row of its tenant and commits, over and over, each
	-- transaction lasting a fifth of a second, until told to stop
	-- (or after 300 rows, a minute, so that a failed test ends by itself).
	CREATE PROCEDURE write(tenant text) LANGUAGE plpgsql AS $$
	BEGIN
		FOR i IN 1..300 LOOP
			EXIT WHEN (SELECT stop FROM writers_stop);
			INSERT INTO interaction_history (tenant_id, channel) VALUES (tenant, 'sms');
			PERFORM pg_sleep(0.2);
			COMMIT;
		END LOOP;
	END $$});

my @writers;
for my $w (1 .. 4)
{
	my $session = $node->background_psql('postgres', on_error_stop => 0);
	$session->query_safe('SET track_activities = off');
	$session->query_until(qr/writing/, "\\echo writing\nCALL write('w$w');\n");
	push @writers, $session;
}
ok($node->poll_query_until('postgres', q{SELECT count(DISTINCT tenant_id) = 4 FROM interaction_history}),
	'the four writers write');

# Each call waits at most for the writers' transactions of its watermark.
my @failures;
for my $call (1 .. 5)
{
	my $result = decode_json(sql('SELECT interactions_cron.export_interactions()'));
	push @failures, encode_json($result) unless $result->{ok};
}
is(scalar(@failures), 0, 'every call succeeds while silent writers commit') or diag join("\n", @failures);

sql('UPDATE writers_stop SET stop = true');
for my $session (@writers)
{
	$session->query_until(qr/stopped/, "\\echo stopped\n");
	end_session($session);
}
# Rows of the last watermark_margin (a second) wait for the clock.
ok($node->poll_query_until('postgres',
		q{SELECT max(created_at) < now() - interval '2 seconds' FROM interaction_history}),
	'the last row is older than the watermark margin');
my ($caught_up, @problems) = export_until_done(sub { sql('SELECT interactions_cron.export_interactions()') }, 20);
ok($caught_up, 'the exports caught up once the writers stopped');
is(scalar(@problems), 0, 'and every one succeeded') or diag join("\n", @problems);
my $count = sql('SELECT count(*) FROM interaction_history');
lake_rows_once_ok(read_lake($lake), $count, ' (silent writers)');

$node->stop;
done_testing();
