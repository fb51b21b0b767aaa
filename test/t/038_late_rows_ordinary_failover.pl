# An ordinary failover, every clock right: the first claim in the new
# history must not fail a tenant whose rows it cannot judge.  The history
# table (accepted: a plain table whose inheritance children its owner owns)
# keeps archived rows in a file_fdw child, which has no xmin; the tenant
# arch's checkpoint row is archived there.  In 7a33912 the look for rows
# written behind the checkpoint read age(h.xmin) of that row and failed the
# tenant with XX000 on every call (hostile review of 7a33912); a table any
# of whose members is not a heap table is not looked at.  The tenant plain,
# in the heap, is exported on too.
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
my $lake = shared_lake();
my $archive = PostgreSQL::Test::Utils::tempdir() . '/archive_2001.csv';
PostgreSQL::Test::Utils::append_to_file($archive,
	join '', map { sprintf "%d,arch,2001-01-15 00:%02d:00+00,,sms,,,,\n", 1000000 + $_, $_ } 1 .. 5);
chmod 0644, $archive;

my $primary = extension_node('late_false', "interactions_cron.export_dir = '$lake'\n"
	  . "interactions_cron.history_table = 'public.arch_history'\n"
	  . "interactions_cron.partitioned_tables = ''\n", allows_streaming => 1);

sub sql { my ($node, $query) = @_; return $node->safe_psql('postgres', $query, timeout => $timeout); }

sql($primary, qq{
	CREATE EXTENSION file_fdw;
	CREATE SERVER archive FOREIGN DATA WRAPPER file_fdw;
	CREATE TABLE arch_history (LIKE interaction_history INCLUDING DEFAULTS, PRIMARY KEY (id, created_at));
	CREATE INDEX ON arch_history (tenant_id, created_at, id);
	CREATE FOREIGN TABLE arch_history_2001 () INHERITS (arch_history)
	  SERVER archive OPTIONS (filename '$archive', format 'csv');
	INSERT INTO tenants (id, name) VALUES ('arch', 'Archived'), ('plain', 'Plain');
	INSERT INTO arch_history (tenant_id, channel) SELECT 'plain', 'sms' FROM generate_series(1, 10);
});
$primary->poll_query_until('postgres', q{SELECT max(created_at) < now() - interval '1.5 seconds' FROM arch_history})
  or die 'the rows did not pass the watermark margin';
my ($caught_up, @problems) = export_until_done(sub { sql($primary, 'SELECT interactions_cron.export_interactions()') }, 10);
ok($caught_up && !@problems, 'every row is exported on the primary') or diag join("\n", @problems);
is(sql($primary, q{SELECT string_agg(tenant_id || ' ' || last_id, ', ' ORDER BY tenant_id) FROM interactions_cron.export_checkpoints}),
	'arch 1000005, plain ' . sql($primary, q{SELECT max(id) FROM arch_history WHERE tenant_id = 'plain'}),
	"arch's checkpoint is its last archived row");

my $standby = switch_over_to_standby($primary, 'late_false_standby', undef);

sql($standby, q{INSERT INTO arch_history (tenant_id, channel) VALUES ('arch', 'email'), ('plain', 'email')});
$standby->poll_query_until('postgres', q{SELECT max(created_at) < now() - interval '1.5 seconds' FROM arch_history})
  or die 'the rows did not pass the watermark margin';
for my $call (1, 2)
{
	my $run = decode_json(sql($standby, 'SELECT interactions_cron.export_interactions()'));
	for my $outcome (sort { $a->{tenantId} cmp $b->{tenantId} } @{ $run->{tenants} })
	{
		is($outcome->{error} // 'exported ' . $outcome->{exported}, $call == 1 ? 'exported 1' : 'exported 0',
			"call $call: $outcome->{tenantId} exports on after an ordinary failover");
	}
}
lake_rows_once_ok(read_lake($lake), sql($standby, 'SELECT count(*) FROM arch_history'), ' (after the failover)');

$standby->stop;
done_testing();
