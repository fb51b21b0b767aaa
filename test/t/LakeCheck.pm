# LakeCheck: what the TAP tests share to read the exported lake and to drive
# the cluster around it.  Only lake_rows_once_ok makes checks (Test::More);
# every other helper returns what it found, for the test to check.
#
# Load it with:
#   use FindBin;
#   use lib $FindBin::RealBin;
#   use LakeCheck;
package LakeCheck;

use strict;
use warnings;

use Exporter 'import';
use File::Basename ();
use File::Copy ();
use File::Find;
use File::Path ();
use FindBin;
use IO::Socket::INET;
use IPC::Run;
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use JSON::PP;
use List::Util ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(
  started_node
  shards_sharing_a_lake
  fsync_fail_shim
  build_with_tree
  start_with_failing_fsync
  each_fsync_mode
  node_with_export_root
  node_sql
  place_sql
  new_shard_database
  clone_shard_database
  tenant_t_node
  restored_mid_batch
  cancel_call_after_place
  cancel_exports
  text_history_node
  table_rows_once_in_lake_ok
  rows_behind_checkpoint_ok
  $ONE_LATE_ROW_HELD
  first_tenant_outcome
  backfill_held_ok
  restart_with_right_clock_ok
  late_rows_held_ok
  primary_with_exported_tenants
  $LIBFAKETIME
  require_libfaketime
  start_with_clock
  switch_over_to_standby
  read_lake
  compare_ids
  lake_rows_once_ok
  id_channel_lines_once_ok
  export_until_done
  wait_rows_past_margin
  cut_off_standby
  export_all
  new_tenant_database
  move_tenant
  copy_lake
  destination_exports_on
  tenant_adopted_across_clusters
  shared_lake
  export_waiting_for_standby
  primary_with_standby
  streaming_standby
  promoted_calls_ok
  calls_without_errors_ok
  export_lost_in_failover_ok
  extension_node
  add_tenant_rows
  bounded_psql
  psql_error
  wait_for_restart
  end_session
  wait_for_stalled_group
  read_s3rver_lake
  start_s3rver
  extension_state
  column_options_refused);

# fsync_fail_shim builds test/fsync_fail/fsync_fail.c, the LD_PRELOAD shim
# that fails fsync(), fdatasync() and syncfs() with EIO for paths containing
# FSYNC_FAIL_MATCH, and returns its path; it dies if the shim does not build.
sub fsync_fail_shim
{
	my $shim = PostgreSQL::Test::Utils::tempdir() . '/fsync_fail.so';
	my @cc = split ' ', ($ENV{CC} // 'cc');
	# The tests run from test/ (TESTDIR); the shim's source is test/fsync_fail/.
	my $source = ($ENV{TESTDIR} // '.') . '/fsync_fail/fsync_fail.c';
	my ($cc_stdout, $cc_stderr) = ('', '');
	IPC::Run::run([ @cc, '-shared', '-fPIC', '-o', $shim, $source, '-ldl' ],
		'>', \$cc_stdout, '2>', \$cc_stderr)
	  or die "cannot build the fsync failure shim: $cc_stderr";
	return $shim;
}

# build_with_tree compiles the tree's files $options{sources} (paths from
# the top of the tree, the parent of test/) with cc (or $CC) against the
# tree's headers and the server's, with the compiler options
# $options{options} (before the sources) and $options{libraries} (after),
# into $name in a temporary directory, and returns its path; it dies with
# the compiler's messages if they do not build.
sub build_with_tree
{
	my ($name, %options) = @_;
	my $tree = ($ENV{TESTDIR} // '.') . '/..';
	my $output = PostgreSQL::Test::Utils::tempdir() . "/$name";
	my $includes = `pg_config --includedir-server`;
	chomp $includes;
	my @cc = split ' ', ($ENV{CC} // 'cc');
	my ($stdout, $stderr) = ('', '');
	IPC::Run::run([ @cc, @{ $options{options} // [] }, "-I$tree/include", "-I$includes", '-o', $output,
			(map { "$tree/$_" } @{ $options{sources} }), @{ $options{libraries} // [] } ],
		'>', \$stdout, '2>', \$stderr)
	  or die "cannot build $name: $stderr";
	return $output;
}

# start_with_failing_fsync starts $node with the fsync failure shim $shim
# (fsync_fail_shim) preloaded, failing the syncs of paths that contain $match
# (or end with it, when it ends with "$"); %options sets the shim's other
# switches: once => 1 fails only the first matching sync of each process
# (FSYNC_FAIL_ONCE), no_io_uring => 1 refuses io_uring (FSYNC_FAIL_NO_IO_URING),
# no_probe => 1 makes its probe find no fsync (FSYNC_FAIL_NO_PROBE).
sub start_with_failing_fsync
{
	my ($node, $shim, $match, %options) = @_;
	local $ENV{LD_PRELOAD} = $shim;
	local $ENV{FSYNC_FAIL_MATCH} = $match;
	local $ENV{FSYNC_FAIL_ONCE} = $options{once} ? 1 : '';
	local $ENV{FSYNC_FAIL_NO_IO_URING} = $options{no_io_uring} ? 1 : '';
	local $ENV{FSYNC_FAIL_NO_PROBE} = $options{no_probe} ? 1 : '';
	$node->start;
	return;
}

# each_fsync_mode runs $case->($mode) for each of @modes in turn ('together':
# a group's fsyncs in flight at once through io_uring; 'one_at_a_time', ...),
# noting the mode first.
sub each_fsync_mode
{
	my ($case, @modes) = @_;
	for my $mode (@modes)
	{
		note("fsyncs $mode");
		$case->($mode);
	}
	return;
}

# node_with_export_root makes, without starting it, a cluster $name that
# makes its files durable (fsync = on) and exports into export_root, a
# directory it creates in the cluster's base directory, with the
# postgresql.conf lines $settings besides; it returns the cluster and its
# export_dir.  With export_dir_length => N, export_dir is a chain of
# directories below export_root (each name at most 200 bytes) whose path is
# N bytes long or more.
sub node_with_export_root
{
	my ($name, $settings, %options) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	my $export_dir = $node->basedir . '/export_root';
	mkdir $export_dir or die "mkdir $export_dir: $!";
	my $length = $options{export_dir_length} // 0;
	while (length($export_dir) < $length)
	{
		$export_dir .= '/' . ('d' x List::Util::min(200, $length - length($export_dir) - 1));
		mkdir $export_dir or die "mkdir $export_dir: $!";
	}
	$node->append_conf('postgresql.conf', "fsync = on\ninteractions_cron.export_dir = '$export_dir'\n$settings");
	return ($node, $export_dir);
}

# node_sql runs $query on $node's postgres database, bounded by the default
# timeout, and returns its output (safe_psql: it dies if the query fails).
sub node_sql
{
	my ($node, $query) = @_;
	return $node->safe_psql('postgres', $query, timeout => $PostgreSQL::Test::Utils::timeout_default);
}

# place_sql runs $query in a place, a node (its postgres database) or
# [$node, $database], bounded by the default timeout, and returns its output
# (safe_psql: it dies if the query fails).
sub place_sql
{
	my ($place, $query) = @_;
	my ($node, $database) = ref($place) eq 'ARRAY' ? @$place : ($place, 'postgres');
	return $node->safe_psql($database, $query, timeout => $PostgreSQL::Test::Utils::timeout_default);
}

# read_lake walks <export_dir>/exports (or <export_dir>/<under> with
# under => 'exports/<tenant>', say, or the whole export directory with
# under => '') and returns
#   ids          => {id => number of lines holding it} over the final files,
#   final_files  => [every file that is not hidden: what a reader of the
#                    lake sees; each is read, a *.gz one through gunzip],
#   hidden_files => [files with a hidden name or in a hidden directory
#                    (a component of the path starting with "."): temporary
#                    files, never read],
#   other_files  => [final files named neither *.json nor *.json.gz],
#   empty_files  => [final files without a line],
#   lines        => number of lines in the final files.
# Paths are relative to export_dir, sorted.  A line must end with a newline
# and be a JSON object with an id, or read_lake dies.  on_line => sub { my
# ($row, $path) = @_; ... } is called with every decoded line.
sub read_lake
{
	my ($export_dir, %options) = @_;
	my $under = $options{under} // 'exports';
	my $on_line = $options{on_line};
	my $root = $under eq '' ? $export_dir : "$export_dir/$under";
	my %lake = (ids => {}, final_files => [], hidden_files => [], other_files => [], empty_files => [], lines => 0);
	return \%lake unless -d $root;

	my @files;
	find({ no_chdir => 1, wanted => sub { push @files, $File::Find::name if -f $File::Find::name } }, $root);
	for my $file (sort @files)
	{
		(my $path = $file) =~ s{^\Q$export_dir\E/}{};
		if (grep { /^\./ } split m{/}, $path)
		{
			push @{ $lake{hidden_files} }, $path;
			next;
		}
		push @{ $lake{final_files} }, $path;
		push @{ $lake{other_files} }, $path unless $path =~ /\.json(?:\.gz|\.zst)?\z/;

		my $content;
		if ($path =~ /\.gz\z/)
		{
			gunzip($file => \$content, MultiStream => 1, Transparent => 0)
			  or die "cannot gunzip $file: $GunzipError";
		}
		elsif ($path =~ /\.zst\z/)
		{
			# zstd checks the frame's content checksum as it decompresses.
			my $stderr;
			IPC::Run::run([ 'zstd', '-dc', '--', $file ], '>', \$content, '2>', \$stderr)
			  or die "cannot unzstd $file: $stderr";
		}
		else
		{
			open my $fh, '<:raw', $file or die "cannot read $file: $!";
			local $/;
			$content = <$fh> // '';
			close $fh;
		}
		push @{ $lake{empty_files} }, $path if $content eq '';

		for my $line (split /(?<=\n)/, $content)
		{
			die "line without trailing newline in $file" unless $line =~ /\n\z/;
			my $row = eval { decode_json($line) };
			die "line that is not JSON in $file: $@" unless defined $row;
			die "line without an id in $file" unless ref $row eq 'HASH' && defined $row->{id};
			$lake{ids}{ $row->{id} }++;
			$lake{lines}++;
			$on_line->($row, $path) if $on_line;
		}
	}
	return \%lake;
}

# compare_ids compares the ids of a lake ({id => copies}) with the ids that
# must be in it ({id => 1}) and returns, each sorted, the ids missing from the
# lake, those in more than one line, and those that should not be there.
sub compare_ids
{
	my ($copies, $expected) = @_;
	my @missing = sort { $a <=> $b } grep { !$copies->{$_} } keys %$expected;
	my @duplicated = sort { $a <=> $b } grep { $copies->{$_} > 1 } keys %$copies;
	my @unexpected = sort { $a <=> $b } grep { !$expected->{$_} } keys %$copies;
	return (\@missing, \@duplicated, \@unexpected);
}

# lake_rows_once_ok checks that the lake read by read_lake holds $rows ids,
# each in exactly one line, and no hidden (temporary) file.  $of, if given,
# says whose rows these are in the test names (' of ok_tenant', say).
sub lake_rows_once_ok
{
	my ($lake, $rows, $of) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	$of //= '';
	my $copies = $lake->{ids};
	my @duplicated = sort { $a <=> $b } grep { $copies->{$_} > 1 } keys %$copies;
	is(scalar(keys %$copies), $rows, "every row$of is in a final file");
	is(scalar(@duplicated), 0, "no row$of is in more than one line") or diag "duplicated ids: @duplicated";
	is(scalar(@{ $lake->{hidden_files} }), 0, "no temporary file$of is left behind")
	  or diag explain $lake->{hidden_files};
}

# id_channel_lines_once_ok checks that the lake under $lake holds each of
# @expected ("id/channel": ids alone may recur, (created, id) is unique)
# in exactly one line, and no other line twice.
sub id_channel_lines_once_ok
{
	my ($lake, @expected) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my %lines;
	read_lake($lake, on_line => sub { my ($row) = @_; $lines{"$row->{id}/$row->{channel}"}++ });
	my @missing = grep { !$lines{$_} } @expected;
	my @twice = grep { $lines{$_} > 1 } sort keys %lines;
	is(scalar(@missing), 0, 'every committed row is in the lake') or diag "missing: @missing";
	is(scalar(@twice), 0, 'no row is in two files') or diag "twice: @twice";
	return;
}

# export_all exports from $node's $database (postgres by default) in batches
# of $batch until a call exports nothing, checks that it did and that every
# call succeeded, and returns how many calls it made.
sub export_all
{
	my ($node, $batch, $label, $database) = @_;
	my $calls = 0;
	my ($caught_up, @problems) = export_until_done(
		sub {
			$calls++;
			$node->safe_psql($database // 'postgres',
				"SELECT interactions_cron.export_interactions(batch_size => $batch)",
				timeout => $PostgreSQL::Test::Utils::timeout_default);
		},
		60);
	ok($caught_up, "$label: the exports caught up");
	is(scalar(@problems), 0, "$label: every export succeeded for every tenant") or diag join("\n", @problems);
	return $calls;
}

# shared_lake makes an empty directory, private to the OS user, for
# clusters to export into together.
sub shared_lake
{
	my $lake = PostgreSQL::Test::Utils::tempdir() . '/lake';
	mkdir $lake or die "mkdir $lake: $!";
	chmod 0700, $lake;
	return $lake;
}

# export_waiting_for_standby starts the export call $call in a background
# session on $node and returns that session once its worker waits for a
# standby (interactions_cron.standby_wait).
sub export_waiting_for_standby
{
	my ($node, $call) = @_;
	my $session = $node->background_psql('postgres', on_error_stop => 0);
	$session->query_until(qr/started/, "\\echo started\n$call;\n");
	$node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity
		  WHERE backend_type = 'interactions_cron export worker' AND wait_event = 'Extension'})
	  or die 'the export worker did not wait for the standby';
	return $session;
}

# started_node starts a cluster $name, made with %init (PostgreSQL::Test::
# Cluster's init options), with $settings (postgresql.conf lines).
sub started_node
{
	my ($name, $settings, %init) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%init);
	$node->append_conf('postgresql.conf', $settings);
	$node->start;
	return $node;
}

# extension_node starts a cluster (see started_node) with the extension and
# the reference schema in its postgres database.
sub extension_node
{
	my ($name, $settings, %init) = @_;
	my $node = started_node($name, $settings, %init);
	$node->safe_psql('postgres', 'CREATE EXTENSION interactions_cron');
	$node->safe_psql('postgres', PostgreSQL::Test::Utils::slurp_file('../reference/schema.sql'));
	return $node;
}

# tenant_t_node starts a cluster $name (extension_node, with %init) that
# exports into $lake with one worker, and adds the tenant 't'.
sub tenant_t_node
{
	my ($name, $lake, %init) = @_;
	my $node = extension_node($name,
		"interactions_cron.export_dir = '$lake'\ninteractions_cron.max_workers = 1\n", %init);
	$node->safe_psql('postgres', q{INSERT INTO tenants (id, name) VALUES ('t', 'T')});
	return $node;
}

# restored_mid_batch plays a restore that keeps the history identity (a
# base backup started without recovery.signal), taken mid-batch, and
# returns the restored cluster, started: on a cluster $name exporting
# tenant 't' into $lake (tenant_t_node), rows 1-10 are exported; a call's
# batch of rows 11-13 is placed, not confirmed, when rows 14-16 are written
# and the backup taken; the original then confirms that batch and exports
# rows 14-16 into a file of their own, and stops.  The restored database
# has rows 1-16, its checkpoint after row 10, and the batch of rows 11-13
# outstanding (checked).
sub restored_mid_batch
{
	my ($name, $lake) = @_;
	my $node = tenant_t_node($name, $lake, allows_streaming => 1);
	my $export = 'SELECT interactions_cron.export_interactions(batch_size => 100)';

	add_tenant_rows($node, 10, 0, 't');
	Test::More::is(decode_json(node_sql($node, $export))->{totalExported}, 10, 'a first batch: rows 1-10');

	# A call's worker stopped in the batch's second transaction (B2), after placing its file.
	add_tenant_rows($node, 3, 10, 't');
	my $offset = -s $node->logfile;
	my $session = $node->background_psql('postgres', on_error_stop => 0);
	# The stall outlasts the backup, then lets the batch go on.
	$session->query_safe(q{LOAD 'interactions_cron'; SET interactions_cron.debug_fault = 'sleep_after_place';
		SET interactions_cron.debug_fault_stall = '15s'});
	$session->query_until(qr/started/, "\\echo started\n$export;\n");
	Test::More::ok(wait_for_stalled_group($node, 'postgres', $offset, 1) >= 1,
		'the batch of rows 11-13 is placed, not confirmed');

	# The platform writes on (rows 14-16) and the backup is taken now.
	add_tenant_rows($node, 3, 13, 't');
	$node->backup('mid_call');

	# The original goes on: the stalled batch is confirmed, and the next call
	# exports rows 14-16 into a file of their own.
	$node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM interactions_cron.export_intents})
	  or die 'the stalled batch was not confirmed';
	end_session($session);
	Test::More::is(node_sql($node, q{SELECT rows_exported FROM interactions_cron.export_checkpoints WHERE tenant_id = 't'}),
		'13', 'the original confirmed rows 11-13');
	Test::More::is(decode_json(node_sql($node, $export))->{totalExported}, 3, 'the original exports rows 14-16');
	$node->stop;

	my $restored = PostgreSQL::Test::Cluster->new("${name}_restored");
	$restored->init_from_backup($node, 'mid_call');
	$restored->start;
	Test::More::is(node_sql($restored, q{SELECT count(*) FROM interactions_cron.export_intents}), '1',
		'the restored database has the batch of rows 11-13 outstanding');
	return $restored;
}

# table_rows_once_in_lake_ok checks that every row of $place's history table
# ($table, interaction_history by default) is in the lake under $lake, and
# none in two lines.
sub table_rows_once_in_lake_ok
{
	my ($place, $lake, $table) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	$table //= 'interaction_history';
	my %expected = map { $_ => 1 } split /\n/, place_sql($place, "SELECT id FROM $table");
	my $read = read_lake($lake);
	my ($missing, $duplicated) = compare_ids($read->{ids}, \%expected);
	Test::More::is(scalar(@$missing), 0, 'every row of the database is in the lake')
	  or Test::More::diag("missing @$missing");
	Test::More::is(scalar(@$duplicated), 0, 'no row is in two files')
	  or Test::More::diag("duplicated ids @$duplicated; files: @{ $read->{final_files} }");
	return;
}

# cancel_exports cancels every export call running on $node and waits
# until its workers have stopped.
sub cancel_exports
{
	my ($node) = @_;
	node_sql($node, q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND query LIKE '%export_interactions%'});
	$node->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'interactions_cron export worker'})
	  or die 'the workers did not stop';
	return;
}

# cancel_call_after_place runs $export on $node (max_workers = 1) in a
# session of its own, stopped by debug_fault after its batch is placed and
# before it is confirmed, cancels the call, waits for its worker to stop,
# and checks that the batch left its intent.
sub cancel_call_after_place
{
	my ($node, $export) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $offset = -s $node->logfile;
	my $session = $node->background_psql('postgres', on_error_stop => 0);
	$session->query_safe(q{LOAD 'interactions_cron'; SET interactions_cron.debug_fault = 'sleep_after_place'});
	$session->query_until(qr/started/, "\\echo started\n$export;\n");
	Test::More::ok(wait_for_stalled_group($node, 'postgres', $offset, 1) >= 1, 'the batch is placed, not confirmed');
	cancel_exports($node);
	end_session($session);
	Test::More::is(node_sql($node, 'SELECT count(*) FROM interactions_cron.export_intents'), '1',
		'the cancelled batch left its intent');
	return;
}

# text_history_node starts a cluster $name (extension_node, with %init)
# exporting into $lake with one worker from public.text_history (text ids
# of collation $collate, if given; not partitioned), and adds the tenant 't'.
sub text_history_node
{
	my ($name, $lake, $collate, %init) = @_;
	my $node = extension_node($name,
		"interactions_cron.export_dir = '$lake'\ninteractions_cron.max_workers = 1\n"
		  . "interactions_cron.history_table = 'public.text_history'\n"
		  . "interactions_cron.partitioned_tables = ''\n", %init);
	$collate = $collate ? "COLLATE $collate" : '';
	node_sql($node, qq{
		CREATE TABLE text_history (id text $collate NOT NULL, tenant_id text NOT NULL,
		  created_at timestamptz NOT NULL, channel text, PRIMARY KEY (id, created_at));
		CREATE INDEX ON text_history (tenant_id, created_at, id);
		INSERT INTO tenants (id, name) VALUES ('t', 'T');
	});
	return $node;
}

# primary_with_standby starts a primary $name with $settings (postgresql.conf
# lines), the extension and the reference schema, and a standby streaming
# from it that has replayed all that; it returns both.
sub primary_with_standby
{
	my ($name, $settings) = @_;
	my $primary = extension_node($name, $settings, allows_streaming => 1);
	return ($primary, streaming_standby($primary, "${name}_standby"));
}

# streaming_standby starts a standby $name streaming from $primary, and
# returns it once it has replayed all $primary has.
sub streaming_standby
{
	my ($primary, $name) = @_;
	$primary->backup("for_$name");
	my $standby = PostgreSQL::Test::Cluster->new($name);
	$standby->init_from_backup($primary, "for_$name", has_streaming => 1);
	$standby->start;
	$primary->wait_for_catchup($standby, 'replay');
	return $standby;
}

# promoted_calls_ok stops $primary, promotes $standby, runs $export there
# three times and checks that no call failed a tenant.
sub promoted_calls_ok
{
	my ($primary, $standby, $export) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	$primary->stop;
	$standby->promote;
	calls_without_errors_ok($standby, $export, 'the promoted standby exports the tenant');
	return;
}

# calls_without_errors_ok runs $export in $place (see place_sql) three times
# and checks (as $label) that no tenant of any call failed.
sub calls_without_errors_ok
{
	my ($place, $export, $label) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my @errors;
	for my $call (1 .. 3)
	{
		my $run = decode_json(place_sql($place, $export));
		push @errors, map { "call $call: $_->{tenantId}: $_->{error}" } grep { defined $_->{error} } @{ $run->{tenants} };
	}
	Test::More::is(scalar(@errors), 0, $label) or Test::More::diag(join("\n", @errors));
	return;
}

# export_lost_in_failover_ok cuts $standby off from $primary, checks that
# $export there exports $count rows (as $label), which the standby never
# gets, then stops $primary at once and promotes $standby.
sub export_lost_in_failover_ok
{
	my ($primary, $standby, $export, $count, $label) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	cut_off_standby($primary, $standby, 0);
	Test::More::is(decode_json(node_sql($primary, $export))->{totalExported}, $count, $label);
	$primary->stop('immediate');
	$standby->promote;
	$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die 'not promoted';
	return;
}

# new_tenant_database starts a cluster with $settings (postgresql.conf
# lines), the extension and the reference schema, its history ids starting
# at $first_id: one of several databases exporting into one lake.
sub new_tenant_database
{
	my ($name, $first_id, $settings) = @_;
	my $node = extension_node($name, $settings);
	$node->safe_psql('postgres', "ALTER SEQUENCE interaction_history_id_seq RESTART $first_id");
	return $node;
}

# move_tenant moves $tenant from $source to $destination (places: see
# place_sql) as "Moving a tenant to another database" says: out of the export on the source, its
# rows copied, its state released there and adopted (checked to succeed,
# as $label) on the destination, active there, deleted on the source.
# It returns what adopt_tenant_state returned.
sub move_tenant
{
	my ($source, $destination, $tenant, $label) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	place_sql($source, qq{UPDATE tenants SET status = 'moving' WHERE id = '$tenant'});
	my $rows = place_sql($source,
		qq{COPY (SELECT * FROM interaction_history WHERE tenant_id = '$tenant' ORDER BY id) TO STDOUT});
	my $state = place_sql($source, qq{SELECT interactions_cron.tenant_state('$tenant', release => true)});
	place_sql($destination, qq{INSERT INTO tenants (id, name, status) VALUES ('$tenant', '$tenant', 'suspended')});
	place_sql($destination, "COPY interaction_history FROM STDIN;\n$rows\n\\.\n");
	my $adopted = place_sql($destination,
		"SELECT interactions_cron.adopt_tenant_state(\$state\$$state\$state\$::jsonb)");
	Test::More::like($adopted, qr/"ok": true/, $label);
	place_sql($destination, qq{UPDATE tenants SET status = 'active' WHERE id = '$tenant'});
	place_sql($source, qq{DELETE FROM interaction_history WHERE tenant_id = '$tenant';
		DELETE FROM tenants WHERE id = '$tenant'});
	return $adopted;
}

# tenant_adopted_across_clusters starts cluster cluster_y_a (made with
# %a_init) and the streaming cluster cluster_x_b, both exporting into $lake
# with one worker; a exports rows 1-10 of tenant 't' (of 20) in two batches,
# t moves to b, b is backed up as after_adoption, and b exports rows 11-15.
# It returns ($a, $b).
sub tenant_adopted_across_clusters
{
	my ($lake, %a_init) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $settings = "interactions_cron.export_dir = '$lake'\ninteractions_cron.max_workers = 1\n";
	my $a = extension_node('cluster_y_a', $settings, %a_init);
	my $b = extension_node('cluster_x_b', $settings, allows_streaming => 1);
	my $export = 'SELECT interactions_cron.export_interactions(batch_size => 5)';

	node_sql($a, q{INSERT INTO tenants (id, name) VALUES ('t', 'T')});
	add_tenant_rows($a, 20, 0, 't');
	Test::More::is(JSON::PP::decode_json(node_sql($a, $export))->{totalExported}, 5, 'a exports rows 1-5');
	Test::More::is(JSON::PP::decode_json(node_sql($a, $export))->{totalExported}, 5, 'a exports rows 6-10');
	move_tenant($a, $b, 't', 'b adopts t from another cluster');
	$b->backup('after_adoption');
	Test::More::is(JSON::PP::decode_json(node_sql($b, $export))->{totalExported}, 5, 'b exports rows 11-15');
	return ($a, $b);
}

# destination_exports_on adds five rows of tenant 't' on $node, the
# destination of a move whose source had not exported its rows 16-20,
# checks that the next call exports those and its own (as $label), and
# returns the ids of the tenant's rows there.
sub destination_exports_on
{
	my ($node, $label) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	add_tenant_rows($node, 5, 20, 't');
	Test::More::is(JSON::PP::decode_json(node_sql($node, 'SELECT interactions_cron.export_interactions()'))->{totalExported},
		10, $label);
	return split /
/, node_sql($node, q{SELECT id FROM interaction_history WHERE tenant_id = 't' ORDER BY id});
}

# copy_lake returns a new directory holding a copy of the lake $lake, the
# files' extended attributes (their origins) included.
sub copy_lake
{
	my ($lake) = @_;
	my $copy = PostgreSQL::Test::Utils::tempdir();
	system('cp', '-a', "$lake/.", $copy) == 0 or die 'could not copy the lake';
	return $copy;
}

# shards_sharing_a_lake starts, exporting into a lake of their own with one
# worker each, shard $a_name (streaming allowed) with the tenant 't', and
# shard $b_name (see new_tenant_database) whose ids start at 100000; it
# returns ($lake, $a, $b).
sub shards_sharing_a_lake
{
	my ($a_name, $b_name) = @_;
	my $lake = shared_lake();
	my $settings = "interactions_cron.export_dir = '$lake'\ninteractions_cron.max_workers = 1\n";
	my $a = extension_node($a_name, $settings, allows_streaming => 1);
	my $b = new_tenant_database($b_name, 100000, $settings);
	node_sql($a, q{INSERT INTO tenants (id, name) VALUES ('t', 'T')});
	return ($lake, $a, $b);
}

# new_shard_database creates database $db on $node with the extension, the
# reference schema and the tenants @tenants (if any).
sub new_shard_database
{
	my ($node, $db, @tenants) = @_;
	place_sql($node, "CREATE DATABASE $db");
	place_sql([ $node, $db ], 'CREATE EXTENSION interactions_cron');
	place_sql([ $node, $db ], PostgreSQL::Test::Utils::slurp_file('../reference/schema.sql'));
	place_sql([ $node, $db ], 'INSERT INTO tenants (id, name) VALUES ' . join(', ', map { "('$_', '$_')" } @tenants))
	  if @tenants;
	return;
}

# clone_shard_database copies $template into $db on $node with TEMPLATE, and
# releases there, before its first call, the tenant $released, which the
# template keeps (operations.md); the clone's own rows take ids from
# $first_id on.
sub clone_shard_database
{
	my ($node, $template, $db, $released, $first_id) = @_;
	place_sql($node, "CREATE DATABASE $db TEMPLATE $template");
	place_sql([ $node, $db ], qq{UPDATE tenants SET status = 'moving' WHERE id = '$released';
		SELECT interactions_cron.tenant_state('$released', release => true);
		DELETE FROM interaction_history WHERE tenant_id = '$released';
		DELETE FROM tenants WHERE id = '$released';
		ALTER SEQUENCE interaction_history_id_seq RESTART $first_id});
	return;
}

# add_tenant_rows inserts $count rows for each of @tenants in $place (see
# place_sql), 7 minutes apart from $offset steps after midnight (UTC) two
# days ago.
sub add_tenant_rows
{
	my ($place, $count, $offset, @tenants) = @_;
	my $list = join(', ', map { "'$_'" } @tenants);
	place_sql($place, qq{
		INSERT INTO interaction_history (tenant_id, created_at, channel)
		SELECT t, date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '2 days'
		          + ($offset + g) * interval '7 minutes 0.25 seconds', 'sms'
		FROM unnest(ARRAY[$list]) t, generate_series(1, $count) g ORDER BY g, t});
	return;
}

# wait_rows_past_margin waits until $node's newest history row is more than
# the default watermark_margin (1 s) old, with room to spare, so that a call
# exports it.
sub wait_rows_past_margin
{
	my ($node) = @_;
	$node->poll_query_until('postgres',
		q{SELECT max(created_at) < now() - interval '1.5 seconds' FROM interaction_history})
	  or die 'the rows did not pass the watermark margin';
	return;
}

# libfaketime (Debian's faketime package), which plays a server whose
# clock is wrong.
our $LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

# require_libfaketime dies unless libfaketime is installed: scripts/packages.txt
# installs it, so a test that needs it fails rather than skips without it.
sub require_libfaketime
{
	-e $LIBFAKETIME
	  or die "libfaketime is not installed ($LIBFAKETIME): apt-get install faketime (scripts/packages.txt)";
	return;
}

# start_with_clock starts $node with its clock off by $offset (a FAKETIME
# value such as '-12s', through libfaketime), or right when $offset is undef.
# Only the clock: with NO_FAKE_STAT, stat() reports the times the files
# have, as on a server whose clock is wrong (trixie's and sid's libfaketime
# shift them too, and a file the lake holds then looked like another one).
sub start_with_clock
{
	my ($node, $offset) = @_;
	local $ENV{LD_PRELOAD} = defined $offset ? $LIBFAKETIME : '';
	local $ENV{FAKETIME} = $offset // '';
	local $ENV{DONT_FAKE_MONOTONIC} = '1';
	local $ENV{NO_FAKE_STAT} = '1';
	$node->start;
	return;
}

# switch_over_to_standby makes a streaming standby $name of $primary, its
# clock off by $offset (see start_with_clock), lets it replay all $primary
# has, stops $primary and promotes the standby, which it returns.
sub switch_over_to_standby
{
	my ($primary, $name, $offset) = @_;
	$primary->backup("for_$name");
	my $standby = PostgreSQL::Test::Cluster->new($name);
	$standby->init_from_backup($primary, "for_$name", has_streaming => 1);
	start_with_clock($standby, $offset);
	$primary->wait_for_catchup($standby, 'replay');
	$primary->stop;
	$standby->promote;
	return $standby;
}

# primary_with_exported_tenants starts a primary $name that a standby can
# stream from, exporting into $lake, with @tenants and ten rows of each
# exported (checked), and returns it.
sub primary_with_exported_tenants
{
	my ($name, $lake, @tenants) = @_;
	my $primary = extension_node($name, "interactions_cron.export_dir = '$lake'\n", allows_streaming => 1);
	$primary->safe_psql('postgres', join '', map {
		"INSERT INTO tenants (id, name) VALUES ('$_', '$_');
		 INSERT INTO interaction_history (tenant_id, channel) SELECT '$_', 'sms' FROM generate_series(1, 10);"
	} @tenants);
	wait_rows_past_margin($primary);
	my ($caught_up, @problems) =
	  export_until_done(sub { $primary->safe_psql('postgres', 'SELECT interactions_cron.export_interactions()') }, 10);
	ok($caught_up && !@problems, "$name: the tenants' first rows are exported") or diag join("\n", @problems);
	return $primary;
}

# rows_behind_checkpoint_ok checks that t1's checkpoint on $node, a new
# primary whose clock is behind, is ahead of that clock, writes ten rows of
# t1 there (channel 'email') and checks that they lie behind the checkpoint;
# then it waits, calling no export, until the clock is past the checkpoint
# by more than the watermark margin.
sub rows_behind_checkpoint_ok
{
	my ($node) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	is(node_sql($node, q{SELECT last_created_at > now() FROM interactions_cron.export_checkpoints WHERE tenant_id = 't1'}), 't',
		'the checkpoint is ahead of the new primary\'s clock');
	node_sql($node, q{INSERT INTO interaction_history (tenant_id, channel) SELECT 't1', 'email' FROM generate_series(1, 10)});
	is(node_sql($node, q{SELECT count(*) FROM interaction_history h JOIN interactions_cron.export_checkpoints c ON c.tenant_id = h.tenant_id
	         WHERE h.channel = 'email' AND h.created_at < c.last_created_at}), '10',
		'the rows written now lie behind the checkpoint');
	$node->poll_query_until('postgres',
		q{SELECT (SELECT last_created_at FROM interactions_cron.export_checkpoints WHERE tenant_id = 't1')
		         < now() - interval '1.5 seconds'})
	  or die 'the clock did not pass the checkpoint';
	return;
}

# restart_with_right_clock_ok checks that exactly the tenants $tenants (a
# comma-separated list, in order) have rows of channel 'email' behind their
# checkpoint on $node, restarts it with the right clock, and checks that
# every checkpoint is then behind that clock by more than the margin.
sub restart_with_right_clock_ok
{
	my ($node, $tenants) = @_;
	is($node->safe_psql('postgres', q{SELECT string_agg(DISTINCT h.tenant_id, ',' ORDER BY h.tenant_id)
		FROM interaction_history h JOIN interactions_cron.export_checkpoints c ON c.tenant_id = h.tenant_id
		WHERE h.channel = 'email' AND h.created_at < c.last_created_at}),
		$tenants, 'every tenant has rows written behind its checkpoint');
	$node->stop;
	start_with_clock($node, undef);
	is($node->safe_psql('postgres',
			q{SELECT bool_and(last_created_at < now() - interval '1.5 seconds') FROM interactions_cron.export_checkpoints}),
		't', 'with the right clock, every checkpoint is behind the clock');
	return;
}

# The error of a tenant held back for one row written behind its checkpoint.
our $ONE_LATE_ROW_HELD =
  qr/^not exported: 1 of the tenant's rows created within a day behind its checkpoint were written after it was set/;

# first_tenant_outcome runs an export on $node and returns its first
# tenant's error, or what it exported.
sub first_tenant_outcome
{
	my ($node) = @_;
	my $run = decode_json($node->safe_psql('postgres', 'SELECT interactions_cron.export_interactions()'));
	return $run->{tenants}[0]{error} // 'no error, exported ' . ($run->{tenants}[0]{exported} // 0);
}

# backfill_held_ok writes one row of tenant t1 a minute behind its
# checkpoint on $node (a backfill, which the late-rows check takes like a
# row a clock behind stamped), runs $then there if given, and checks that
# the next export holds t1 back for it.
sub backfill_held_ok
{
	my ($node, $then) = @_;
	$node->safe_psql('postgres', q{INSERT INTO interaction_history (tenant_id, channel, created_at)
		SELECT 't1', 'email', last_created_at - interval '1 minute'
		FROM interactions_cron.export_checkpoints WHERE tenant_id = 't1'});
	$node->safe_psql('postgres', $then) if defined $then;
	wait_rows_past_margin($node);
	like(first_tenant_outcome($node), $ONE_LATE_ROW_HELD,
		'the first claim in the new history holds the tenant back for the row behind its checkpoint');
	return;
}

# late_rows_held_ok runs an export on $node and checks that each of
# @tenants is held back for its rows of channel 'email', written behind its
# checkpoint: as many as %$late_count says (10 by default), the first of
# them named; and that export_status shows no tenant ok.
sub late_rows_held_ok
{
	my ($node, $late_count, @tenants) = @_;
	my %first_late = map {
		$_ => $node->safe_psql('postgres',
			"SELECT min(created_at) FROM interaction_history WHERE tenant_id = '$_' AND channel = 'email'")
	} @tenants;
	my $run = decode_json($node->safe_psql('postgres', 'SELECT interactions_cron.export_interactions()'));
	my %outcome = map { $_->{tenantId} => $_ } @{ $run->{tenants} };
	for my $tenant (@tenants)
	{
		my $count = $late_count->{$tenant} // 10;
		like($outcome{$tenant}{error} // 'ok: ' . ($outcome{$tenant}{exported} // 0) . ' exported',
			qr/^not exported: $count of the tenant's rows created within a day behind its checkpoint were written after it was set, the first at \Q$first_late{$tenant}\E$/,
			"$tenant: held back, naming the first row written behind");
	}
	is($node->safe_psql('postgres', q{SELECT count(*) FROM interactions_cron.export_status WHERE status = 'ok'}), '0',
		'export_status shows no tenant ok');
	return;
}

# cut_off_standby lets $standby replay all that $primary has, then stops
# its streaming (primary_conninfo emptied), waiting until $primary has
# $streaming walsenders left: what $primary commits from then on is lost to
# $standby.
sub cut_off_standby
{
	my ($primary, $standby, $streaming) = @_;
	$primary->wait_for_catchup($standby, 'replay');
	$standby->append_conf('postgresql.conf', "primary_conninfo = ''");
	$standby->reload;
	$primary->poll_query_until('postgres', "SELECT count(*) = $streaming FROM pg_stat_replication")
	  or die 'the standby did not stop streaming';
	return;
}

# export_until_done calls $export (which runs export_interactions() once and
# returns its JSON result as text) until a call exports nothing, at most
# $max_calls times.  It returns whether a call exported nothing within
# $max_calls calls, then each result (as JSON text) that was not ok or had a
# tenant with an error or skipped.
sub export_until_done
{
	my ($export, $max_calls) = @_;
	my @problems;
	for (1 .. $max_calls)
	{
		my $result = decode_json($export->());
		push @problems, encode_json($result)
		  if !$result->{ok} || grep { $_->{error} || $_->{skipped} } @{ $result->{tenants} };
		return (1, @problems) if $result->{totalExported} == 0;
	}
	return (0, @problems);
}

# bounded_psql runs $sql on $db through $node->psql, ending psql after
# $seconds, and returns ($ret, $stdout, $stderr, $timed_out): a timeout is
# reported, not thrown (after one, $ret says nothing: check $timed_out).
# Other options go to $node->psql.
sub bounded_psql
{
	my ($node, $db, $sql, $seconds, %psql_options) = @_;
	my $timed_out = 0;
	my ($ret, $stdout, $stderr) = $node->psql($db, $sql,
		%psql_options,
		timeout => $seconds,
		timed_out => \$timed_out);
	return ($ret, $stdout, $stderr, $timed_out);
}

# psql_error runs $sql on $db with verbose error reports, bounded by the
# default timeout (dying if it runs out), and returns psql's stderr if it
# failed (an error with its SQLSTATE), undef if it succeeded.
sub psql_error
{
	my ($node, $db, $sql) = @_;
	my ($stdout, $stderr);
	my $ret = $node->psql($db, "\\set VERBOSITY verbose\n$sql",
		stdout => \$stdout,
		stderr => \$stderr,
		timeout => $PostgreSQL::Test::Utils::timeout_default);
	return $ret == 0 ? undef : $stderr;
}

# wait_for_restart waits (bounded) for the crash restart that follows a
# child's SIGKILL, logged after $log_offset, and for the server to accept
# connections again; it dies if either does not come.
sub wait_for_restart
{
	my ($node, $log_offset) = @_;
	# One pattern: wait_for_log returns the log's length when it matched, which
	# can already be past the "ready" line of a fast recovery.
	$node->wait_for_log(
		qr/all server processes terminated; reinitializing(?s:.*)database system is ready to accept connections/,
		$log_offset);
	$node->poll_query_until('postgres', 'SELECT 1', '1')
	  or die 'the server did not accept connections after the crash';
}

# end_session closes a background session, whatever state psql is in.
sub end_session
{
	my ($session) = @_;
	eval { $session->quit; 1 } or eval { $session->{run}->kill_kill; 1 };
}

# wait_for_stalled_group waits (bounded) until a worker logged, after
# $log_offset, that it sleeps at the debug_fault point after_place, and
# $count intents exist in $db; it returns the number of intents.  The
# export is started with interactions_cron.max_workers = 1: its one worker
# writes every tenant's batch in one group, places them all, then sleeps in
# the group's first confirmation, so every batch is placed and unconfirmed.
sub wait_for_stalled_group
{
	my ($node, $db, $log_offset, $count) = @_;
	$node->wait_for_log(qr/debug_fault sleep_after_place reached for tenant/, $log_offset);
	my $intents = 0;
	for (1 .. 10 * $PostgreSQL::Test::Utils::timeout_default)
	{
		$intents = $node->safe_psql($db, 'SELECT count(*) FROM interactions_cron.export_intents');
		last if $intents >= $count;
		select(undef, undef, undef, 0.1);
	}
	return $intents;
}

# start_s3rver starts s3rver (test/s3, installed with npm ci when missing)
# on 127.0.0.1 with a bucket named lake, and returns its IPC::Run handle,
# its port and its directory (the store is <dir>/store); it bails out if the
# server does not listen.  The caller stops it with kill_kill.
sub start_s3rver
{
	my $timeout = $PostgreSQL::Test::Utils::timeout_default;
	my $s3rver = $ENV{S3RVER} // "$FindBin::RealBin/../s3/node_modules/.bin/s3rver";
	if (!-x $s3rver)
	{
		# The suite runner copies test/s3 without its node_modules.
		my ($out, $err);
		IPC::Run::run([ 'npm', 'ci', '--no-audit', '--no-fund', '--loglevel=error' ], '>', \$out, '2>', \$err,
			init => sub { chdir "$FindBin::RealBin/../s3" or die $! });
		Test::More::note("npm ci: $out$err");
	}
	Test::More::ok(-x $s3rver, "s3rver is installed ($s3rver)") or Test::More::BAIL_OUT('s3rver is needed');
	my $dir = PostgreSQL::Test::Utils::tempdir();
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $log = "$dir.log";
	my $handle = IPC::Run::start(
		[ $s3rver, '-d', "$dir/store", '-a', '127.0.0.1', '-p', $port, '--configure-bucket', 'lake' ],
		'>', $log, '2>&1');
	my $up = 0;
	for (1 .. 10 * $timeout)
	{
		last if $up = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp') ? 1 : 0;
		select(undef, undef, undef, 0.1);
	}
	Test::More::ok($up, 's3rver listens') or Test::More::BAIL_OUT('s3rver did not start: ' . PostgreSQL::Test::Utils::slurp_file($log));
	return ($handle, $port, $dir);
}

# read_s3rver_lake reads the objects an s3rver (filesystem store, in
# $s3_dir) holds in $bucket under $prefix (ending in '/', or '') the way
# read_lake reads a directory: each object is copied to <$mirror>/<key
# without $prefix>, and read_lake($mirror) is returned.  s3rver keeps an
# object with key a/b/c as <bucket>/a/b/c._S3rver_object (and its metadata
# beside it, skipped here).
sub read_s3rver_lake
{
	my ($s3_dir, $bucket, $prefix, $mirror, %options) = @_;
	my $root = "$s3_dir/$bucket";
	File::Path::remove_tree($mirror);
	File::Path::make_path($mirror);
	my @objects;
	find({ no_chdir => 1, wanted => sub { push @objects, $File::Find::name if /\._S3rver_object\z/ } }, $root)
	  if -d $root;
	for my $object (@objects)
	{
		(my $key = $object) =~ s{^\Q$root\E/}{};
		$key =~ s{\._S3rver_object\z}{};
		next unless substr($key, 0, length $prefix) eq $prefix;
		my $target = "$mirror/" . substr($key, length $prefix);
		File::Path::make_path(File::Basename::dirname($target));
		File::Copy::copy($object, $target) or die "cannot copy $object: $!";
	}
	return read_lake($mirror, %options);
}

# column_options_refused says why $new's PostgreSQL refuses the options
# that $old's gives every new column, or returns undef when it takes them
# (or there are none).  Then no dump of $old restores into $new, and no
# pg_upgrade succeeds, whatever the database: in this Debian archive,
# trixie's 17.12 gives each column a pg_attver option that sid's 18.6 does
# not know.
sub column_options_refused
{
	my ($old, $new) = @_;
	my $options = $old->safe_psql('postgres', q{CREATE TABLE move_probe (a int);
		SELECT coalesce(array_to_string(attoptions, ', '), '') FROM pg_attribute
		WHERE attrelid = 'move_probe'::regclass AND attname = 'a';
		DROP TABLE move_probe});
	return undef if $options eq '';
	my ($status, $stdout, $stderr) = $new->psql('postgres',
		"BEGIN; CREATE TABLE move_probe (a int); ALTER TABLE move_probe ALTER COLUMN a SET ($options); ROLLBACK");
	return $status == 0 ? undef
	  : "the old PostgreSQL gives every column the options ($options), which the new one refuses: $stderr";
}

# extension_state returns {name => text} of the state of the extension in
# $db that must survive a dump and restore, a pg_upgrade or a failover: the
# rows of its tables (the metrics' totals too), job_runs_id_seq, its config tables and their filters,
# and the ACL of each of its objects (grants to other roles included).
sub extension_state
{
	my ($node, $db) = @_;
	my %queries = (
		checkpoints => q{SELECT * FROM interactions_cron.export_checkpoints ORDER BY tenant_id},
		intents => q{SELECT * FROM interactions_cron.export_intents ORDER BY tenant_id},
		job_runs => q{SELECT * FROM interactions_cron.job_runs ORDER BY id},
		job_claims => q{SELECT * FROM interactions_cron.job_claims ORDER BY job},
		run_totals => q{SELECT * FROM interactions_cron.job_run_totals ORDER BY job, outcome},
		cleanup_totals => q{SELECT * FROM interactions_cron.cleanup_totals ORDER BY kind},
		histories => q{SELECT * FROM interactions_cron.export_histories ORDER BY lake_epoch, history_id},
		sequence => q{SELECT last_value, is_called FROM interactions_cron.job_runs_id_seq},
		config => q{SELECT u.cfg::regclass, u.cond
		            FROM pg_extension e, unnest(e.extconfig, e.extcondition) u(cfg, cond)
		            WHERE e.extname = 'interactions_cron' ORDER BY 1::text},
		# A NULL ACL is the default one spelt out (pg_upgrade writes an
		# ACL equal to the default one as NULL).  MAINTAIN (m, 17+) is
		# left out: a move from 15 to 17 gives it to the owner; so are the
		# tables' row types, members of a restored extension from 17 on.
		acls => q{SELECT pg_describe_object(d.classid, d.objid, 0),
		                 coalesce(regexp_replace(coalesce(c.relacl, acldefault((CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END)::"char", c.relowner))::text,
		                                         'm(\*?)/', '\1/', 'g'),
		                          coalesce(p.proacl, acldefault('f', p.proowner))::text,
		                          coalesce(n.nspacl, acldefault('n', n.nspowner))::text, '-')
		          FROM pg_depend d
		          LEFT JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
		          LEFT JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
		          LEFT JOIN pg_namespace n ON d.classid = 'pg_namespace'::regclass AND n.oid = d.objid
		          WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
		            AND d.classid IN ('pg_class'::regclass, 'pg_proc'::regclass, 'pg_namespace'::regclass)
		            AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'interactions_cron')
		          ORDER BY 1},
		schema_acl => q{SELECT coalesce(nspacl, acldefault('n', nspowner)) FROM pg_namespace WHERE nspname = 'interactions_cron'},
		version => q{SELECT extversion FROM pg_extension WHERE extname = 'interactions_cron'});
	return { map { $_ => $node->safe_psql($db, $queries{$_}, timeout => $PostgreSQL::Test::Utils::timeout_default) }
		  keys %queries };
}

1;
