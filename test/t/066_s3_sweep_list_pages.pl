# Hostile review 15 of issue 19, finding 1: the sweep notes the files it
# judges duplicates, to remove them once every file is judged; on S3 the
# listing hands keys over in a memory context of its own per page, freed
# after each page, and the first version kept the list there: the worker
# crashed (signal 11) removing them.  Here a tenant's lost export placed
# 1,100 files (one a day), which the sweep lists in two pages of 1,000 keys
# and must remove, every one once, before the export writes their rows
# again.  No other suite lists more than one page.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use JSON::PP;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# s3rver makes its continuation tokens with a cipher that OpenSSL 3 has
# only in its legacy provider: a listing of more than one page needs it.
local $ENV{NODE_OPTIONS} = '--openssl-legacy-provider';
my ($s3, $s3_port, $s3_dir) = start_s3rver();
local $ENV{AWS_ACCESS_KEY_ID} = 'S3RVER';
local $ENV{AWS_SECRET_ACCESS_KEY} = 'S3RVER';
my $spool = PostgreSQL::Test::Utils::tempdir();
my $node = extension_node('s3_sweep_pages', qq{interactions_cron.export_dir = '$spool'
interactions_cron.storage = 's3'
interactions_cron.s3_bucket = 'lake'
interactions_cron.s3_prefix = 'p/'
interactions_cron.s3_endpoint = 'http://127.0.0.1:$s3_port'
interactions_cron.s3_path_style = on
interactions_cron.max_workers = 1
});

node_sql($node, q{INSERT INTO tenants (id, name) VALUES ('t', 'T')});
node_sql($node, q{INSERT INTO interaction_history (tenant_id, created_at, channel)
	SELECT 't', date_trunc('day', now()) - (1107 - g) * interval '1 day' + interval '1 hour', 'sms'
	FROM generate_series(1, 1105) g ORDER BY g});
is(decode_json(node_sql($node, 'SELECT interactions_cron.export_interactions(batch_size => 5)'))->{totalExported},
	5, 'rows 1-5');
node_sql($node, q{CREATE TABLE saved AS SELECT * FROM interactions_cron.export_checkpoints});
is(decode_json(node_sql($node, 'SELECT interactions_cron.export_interactions(batch_size => 5000)'))->{totalExported},
	1100, 'rows 6-1105, a file a day');

# That export is lost (its checkpoint move, not its files): the restore
# statement makes the next claim sweep.
node_sql($node, q{DELETE FROM interactions_cron.export_checkpoints;
	INSERT INTO interactions_cron.export_checkpoints SELECT * FROM saved;
	UPDATE interactions_cron.export_checkpoints SET lake_epoch = 'restored'});
my $offset = -s $node->logfile;
is(decode_json(node_sql($node, 'SELECT interactions_cron.export_interactions(batch_size => 5000)'))->{totalExported},
	1100, 'the export after the sweep writes the rows again');
my $log = PostgreSQL::Test::Utils::slurp_file($node->logfile, $offset);
unlike($log, qr/terminated by signal/, 'no process crashed');
my $removed = () = $log =~ /removing "[^"]*", which/g;
is($removed, 1100, 'the sweep removed the 1,100 files of the lost export');
lake_rows_once_ok(read_s3rver_lake("$s3_dir/store", 'lake', 'p/', PostgreSQL::Test::Utils::tempdir() . '/mirror'),
	1105);
$node->stop;
$s3->kill_kill;
done_testing();
