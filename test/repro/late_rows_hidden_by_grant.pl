# FAILS on main (hostile review of b25d081, finding 2): a GRANT on the partitions (here
# GRANT ... ON ALL TABLES IN SCHEMA, as a platform's privilege job runs;
# ALTER TABLE ... SET (autovacuum_...), ADD COLUMN or a CHECK on the parent,
# a first trigger or ENABLE ROW LEVEL SECURITY do the same) writes a new
# pg_class row for each, without rewriting a row.  late_rows.c then counts
# only rows newer than that, so rows written behind the checkpoint on the new
# primary before the GRANT are passed over in silence.  (VACUUM, ANALYZE,
# autovacuum, CREATE INDEX, COMMENT, cleanup()'s new partitions, TRUNCATE or
# ATTACH/DETACH of another partition keep the pg_class row: no effect.)
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../t";
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
