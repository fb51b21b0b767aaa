# Hostile review 13 of issue 19: what happens to the lines of rows the new
# primary never had.  doc/operations.md (Failover): "a file holding only such
# rows stays, lines and all, since nothing writes them again"; lake_sweep.c
# says the same.  But JudgeFileRows matches a file's rows to the table's by
# id alone, and only (created, id) is unique (t/050).  After an asynchronous
# failover the new primary's sequence is behind the old primary's (the
# sequence's WAL, logged 32 values ahead, was lost with the rows), so the
# new primary's first rows take the ids of rows the lost file holds.  The
# sweep then takes that file for one whose rows will be written again and
# removes it: 40 committed rows of the old primary, in no other file, leave
# the lake, although the file holds none of the new primary's rows.  Failed
# on 8e034da; passes since a file's rows are matched by (created, id).
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
my ($primary, $standby) = primary_with_standby('reused_ids',
	"interactions_cron.export_dir = '$lake'\ninteractions_cron.max_workers = 1\n");
my $export = 'SELECT interactions_cron.export_interactions(batch_size => 100)';

node_sql($primary, q{INSERT INTO tenants (id, name) VALUES ('t', 'T')});
add_tenant_rows($primary, 10, 0, 't');
is(decode_json(node_sql($primary, $export))->{totalExported}, 10, 'rows 1-10 exported, everywhere');

# The standby cut off; the old primary writes 40 more rows and exports them
# into one file: rows the new primary will never have.
cut_off_standby($primary, $standby, 0);
add_tenant_rows($primary, 40, 10, 't');
is(decode_json(node_sql($primary, $export))->{totalExported}, 40, 'rows 11-50 exported on the old primary (lost)');
my @lost = map { "$_/sms" } split /\n/, node_sql($primary, q{SELECT id FROM interaction_history WHERE id > 10 ORDER BY id});
$primary->stop('immediate');
$standby->promote;

# The new primary's writers go on: their rows take ids the lost rows had.
node_sql($standby, q{INSERT INTO interaction_history (tenant_id, channel) SELECT 't', 'email' FROM generate_series(1, 10)});
wait_rows_past_margin($standby);
my $new_ids = node_sql($standby, q{SELECT string_agg(id::text, ' ' ORDER BY id) FROM interaction_history WHERE channel = 'email'});
note("the new primary's rows have ids $new_ids");
my $offset = -s $standby->logfile;
export_all($standby, 100, 'after the failover');
ok(!$standby->log_contains(qr/removing ".*", which holds rows past/, $offset),
	'the sweep removes no file: the lost file holds none of the new primary\'s rows')
  or diag 'it removed the lost file';

# Every row of the new primary once, and the old primary's lost rows kept,
# as the docs say.
my @kept = map { "$_/sms" } 1 .. 10;
push @kept, map { "$_/email" } split / /, $new_ids;
id_channel_lines_once_ok($lake, @kept, @lost);
$standby->stop;
done_testing();
