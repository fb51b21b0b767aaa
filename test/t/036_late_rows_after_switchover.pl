# Rows a clock behind wrote behind a checkpoint after a switchover, found
# at the first claim in the new history however the tenant's exported rows
# changed meanwhile and however far the clock was behind (up to a day): the
# hostile reviews of 7a33912 and 2fab6d5 found each of these passed over in
# silence.
# One switchover, one tenant per case; every tenant has rows written behind
# its checkpoint by the new primary and must be held back (55000, naming the
# first of them and counting them all), as t/035's tenant is:
#  - ctl:  the control, as in 035;
#  - upd:  the row at the checkpoint was updated on the old primary after
#          its export (a status change of the newest interaction): its xmin
#          is newer than position_xid, which once turned the check off;
#  - del:  the row at the checkpoint was deleted after its export;
#  - upd_all: every exported row got a status update after its export, so
#          none of them is older than position_xid any more, which once
#          turned the check off as for a rewritten table;
#  - far:  the new primary's clock was behind by 2 h (an RTC in local
#          time), past the hour the check once looked back;
#  - part: half its late rows were written 2 h behind, half 2 min behind:
#          both halves are counted, and the first of the first named.
# The standby starts 2 h behind (far's rows and part's first half), is
# restarted 2 min behind (the others'), then with the right clock; no call
# runs in between.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

require_libfaketime();

my $timeout = $PostgreSQL::Test::Utils::timeout_default;
my $lake = shared_lake();
my @tenants = qw(ctl upd del upd_all far part);
my %late_count = (part => 20);

sub sql { my ($node, $query) = @_; return $node->safe_psql('postgres', $query, timeout => $timeout); }

my $primary = primary_with_exported_tenants('late_missed', $lake, @tenants);

# After the export, on the old primary: the newest exported row of upd is
# updated, del's is deleted, every one of upd_all's is updated.
sql($primary, q{UPDATE interaction_history h SET metadata = '{"read": true}' FROM interactions_cron.export_checkpoints c
                WHERE c.tenant_id = 'upd' AND h.tenant_id = 'upd' AND h.id = c.last_id::bigint});
sql($primary, q{DELETE FROM interaction_history h USING interactions_cron.export_checkpoints c
                WHERE c.tenant_id = 'del' AND h.tenant_id = 'del' AND h.id = c.last_id::bigint});
sql($primary, q{UPDATE interaction_history SET metadata = '{"status": "delivered"}' WHERE tenant_id = 'upd_all'});

my $standby = switch_over_to_standby($primary, 'late_missed_standby', '-7200s');

sql($standby, q{INSERT INTO interaction_history (tenant_id, channel) SELECT t, 'email' FROM unnest(ARRAY['far', 'part']) t, generate_series(1, 10)});
$standby->stop;
start_with_clock($standby, '-120s');
sql($standby, q{INSERT INTO interaction_history (tenant_id, channel)
                SELECT t, 'email' FROM unnest(ARRAY['ctl', 'upd', 'del', 'upd_all', 'part']) t, generate_series(1, 10)});
restart_with_right_clock_ok($standby, 'ctl,del,far,part,upd,upd_all');

late_rows_held_ok($standby, \%late_count, @tenants);

$standby->stop;
done_testing();
