# A GRANT on the partitions (here GRANT ... ON ALL TABLES IN SCHEMA, as a
# platform's privilege job runs; a reloption, an ADD COLUMN or a CHECK on
# the parent, a first trigger or ENABLE ROW LEVEL SECURITY do the same)
# writes a new pg_class row for each, without rewriting a row.  On the new
# primary after a row was written behind the checkpoint and before the
# first claim, it hid that row in b25d081 and d300c01, which took any newer
# pg_class row for a rewrite's (hostile review of b25d081); a table is taken
# for rewritten only when the tenant has no older row left there.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $lake = shared_lake();
my $primary = primary_with_exported_tenants('late_grant', $lake, 't1');

my $standby = switch_over_to_standby($primary, 'late_grant_standby', undef);
# A row written behind the checkpoint after it was set, on the new primary
# (a backfill; a clock behind gives the same, see 035).
# The GRANT comes after the row, before the first claim.
backfill_held_ok($standby, q{CREATE ROLE analytics; GRANT SELECT ON ALL TABLES IN SCHEMA public TO analytics});

$standby->stop;
done_testing();
