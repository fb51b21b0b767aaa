# The memory a group's record of synced paths takes.  Every path a group
# makes durable (each file, each directory up to "/") has an entry until the
# group ends, and a group of 64 low-volume tenants backfilled with a file per
# day holds tens of thousands.  Keys of MAXPGPATH bytes cost about 1 KB a
# path (1,076 bytes measured); keys that point to copies of the paths cost
# what the paths are long.  Measured with pg_log_backend_memory_contexts() on
# a worker stalled after its group's syncs (debug_fault sleep_after_place):
# 8 tenants, 250 days each; at most 512 bytes a path, half of MAXPGPATH
# (paths of about 177 bytes took 319-458 with the table's entries and the
# allocator's blocks, which double as they grow).  From the tenth hostile
# review's measurement: 1,076 bytes a path on a2e6b02.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use LakeCheck;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $days = 250;
my @tenants = map { "tenant_$_" } 1 .. 8;
my ($node, $export_dir) = node_with_export_root('synced_paths_memory', qq{
interactions_cron.sync_method = fsync
interactions_cron.max_workers = 1
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION interactions_cron');
$node->safe_psql('postgres', slurp_file('../reference/schema.sql'));
my $list = join(', ', map { "'$_'" } @tenants);
$node->safe_psql('postgres', qq{
	INSERT INTO tenants (id, name) SELECT t, t FROM unnest(ARRAY[$list]) t;
	INSERT INTO interaction_history (tenant_id, created_at, channel, metadata)
	SELECT t, now() - d * interval '1 day', 'email', '{}'
	FROM unnest(ARRAY[$list]) t, generate_series(1, $days) d;
});

my $export = $node->background_psql('postgres', on_error_stop => 0);
$export->query_safe(q{SET interactions_cron.debug_fault = 'sleep_after_place'});
my $log_offset = -s $node->logfile;
$export->query_until(qr/started/, "\\echo started\nSELECT interactions_cron.export_interactions();\n");
$node->wait_for_log(qr/debug_fault sleep_after_place reached/, $log_offset);
my $worker = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'interactions_cron export worker'});
$log_offset = -s $node->logfile;
$node->safe_psql('postgres', "SELECT pg_log_backend_memory_contexts($worker)");
$node->wait_for_log(qr/interactions_cron synced paths table: \d+ total in \d+ blocks/, $log_offset);
my $log = slurp_file($node->logfile, $log_offset);
# The record's context (the path copies) and its table's, below it.
my $bytes = 0;
$bytes += $_ for $log =~ /interactions_cron synced paths(?: table)?: (\d+) total in \d+ blocks/g;
my $files = 0;
my %paths;
use File::Find;
find(sub {
		return if $File::Find::name =~ m{/\.};
		$files++ if -f $_;
		my $path = $File::Find::name;
		while ($path =~ m{/}) { $paths{$path} = 1; $path =~ s{/[^/]*$}{}; }
	}, "$export_dir/exports");
my $count = scalar(keys %paths) + scalar(split m{/}, $export_dir);
my $length = 0;
$length += length($_) for keys %paths;
$length /= scalar(keys %paths);
note("placed files: $files; paths made durable: about $count, $length bytes long on average; "
	  . "synced paths: $bytes bytes, " . sprintf('%.0f', $bytes / $count) . ' bytes a path');
ok($bytes / $count <= 512,
	sprintf('the synced paths take at most half of MAXPGPATH a path (%.0f bytes a path, %.0f long)',
		$bytes / $count, $length));

$node->safe_psql('postgres',
	q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE backend_type = 'interactions_cron export worker'});
end_session($export);
$node->stop('fast', fail_ok => 1);
done_testing();
