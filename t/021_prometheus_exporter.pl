# Monitoring with Prometheus, for real: a cluster with experiments in every state,
# routed users and recorded queries; Debian's prometheus-postgres-exporter with
# monitoring/postgres_exporter.yaml, connected as a role that has exactly the grants the
# YAML's header lists; /metrics scraped over HTTP and every abtest series compared with
# SQL (counters exactly), while assignments wait for the flush worker and after they
# were written, and after a restart with the exporter as the first reader. Then
# monitoring/grafana-dashboard.json: well-formed, importable, and every PromQL
# expression names only metrics and labels that the YAML defines.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use HTTP::Tiny;
use IPC::Run;
use JSON::PP;
use Time::HiRes qw(time usleep);
use lib $FindBin::RealBin;
use AbtestNode;

my $exporter_bin = '/usr/bin/prometheus-postgres-exporter';
plan skip_all => 'prometheus-postgres-exporter is not installed (Debian: apt-get install prometheus-postgres-exporter)'
  unless -x $exporter_bin;
my $python = '/usr/bin/python3';
my $srcdir = $ENV{ABTEST_SRCDIR} // "$FindBin::RealBin/..";
my $yaml_file = "$srcdir/monitoring/postgres_exporter.yaml";
my $dashboard_file = "$srcdir/monitoring/grafana-dashboard.json";

# What the YAML defines, as the exporter reads it: metric "<query key>_<column>" for
# every column that is not a label; its type; the labels of its query.
my $yaml = decode_json((run_command([ $python, '-c',
	'import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)', $yaml_file ]))[0]);
my (%defined, %labels_of);
for my $namespace (sort keys %$yaml)
{
	my @columns = map { my ($name) = keys %$_; [ $name, $_->{$name}{usage} ] } @{ $yaml->{$namespace}{metrics} };
	my @labels = ('server', map { $_->[0] } grep { $_->[1] eq 'LABEL' } @columns);
	for my $column (grep { $_->[1] ne 'LABEL' } @columns)
	{
		$defined{"${namespace}_$column->[0]"} = lc $column->[1];
		$labels_of{"${namespace}_$column->[0]"} = [ sort @labels ];
	}
}
ok(!grep(!/^abtest_/, keys %defined), 'every metric name starts with abtest_');
my @misnamed = grep {
	($defined{$_} eq 'counter') != (/_total$/ || /_seconds_(sum|count)$/) || /_(ms|milliseconds|percent)(_|$)/
} sort keys %defined;
is("@misnamed", '', 'counters end in _total (or _sum, _count), gauges do not, units are base units');

# The cluster: assignments wait for the flush worker (an interval of an hour) until
# the test lets it write.
my $node = AbtestNode::new_node('exporter', conf => "abtest.flush_interval = '1h'\n");
my $pricing = 'pricing "v2" ✓';    # quotes and UTF-8 in a label value
my $t0 = time;
$node->safe_psql('postgres', qq{
	SELECT ab_create_experiment('checkout', ARRAY['control', 'treatment'], ARRAY[70, 30]);
	SELECT ab_start('checkout');
	SELECT count(ab_route_user('checkout', 'u' || g)) FROM generate_series(1, 3000) g;
	SELECT count(ab_route_user('checkout', 'u' || g)) FROM generate_series(1, 500) g;   -- returning users
	SELECT ab_create_experiment('$pricing', ARRAY['a', 'b', 'c']);
	SELECT ab_configure('$pricing', sticky => false);
	SELECT ab_start('$pricing');
	SELECT count(ab_route_user('$pricing', 'u' || g)) FROM generate_series(1, 900) g;
	SELECT ab_create_experiment('paused_one', ARRAY['control', 'treatment']);
	SELECT ab_start('paused_one');
	SELECT count(ab_route_user('paused_one', 'p' || g)) FROM generate_series(1, 200) g;
	SELECT ab_pause('paused_one');
	SELECT ab_create_experiment('finished', ARRAY['control', 'treatment']);
	SELECT ab_start('finished');
	SELECT ab_complete('finished', winner => 'treatment');
	SELECT ab_create_experiment('draft_one', ARRAY['control', 'treatment']);
	SELECT ab_create_experiment('old', ARRAY['control', 'treatment']);
	SELECT ab_archive('old');
	-- Known outcomes, 0 ms latencies among them.
	CREATE TABLE recorded AS
	SELECT 'checkout' AS experiment, CASE WHEN g % 3 = 0 THEN 'treatment' ELSE 'control' END AS branch,
	       (g % 50) * 3.7::float8 AS ms, g % 7 <> 0 AS ok
	  FROM generate_series(1, 2000) g
	UNION ALL
	SELECT '$pricing', 'b', g * 0.25, g % 2 = 0 FROM generate_series(1, 40) g;
	SELECT count(ab_record_query(experiment, branch, ms, ok)) FROM recorded;
});
my $t1 = time;

# The monitoring role, created by the very statements of the YAML's header.
open my $fh, '<', $yaml_file or die "$yaml_file: $!";
my $grants = join "\n", map { /^#\s+((?:CREATE ROLE|GRANT) .*;)/ ? $1 : () } <$fh>;
close $fh;
like($grants, qr/GRANT EXECUTE ON FUNCTION/, 'the YAML lists the grants of its role');
$node->safe_psql('postgres', $grants);
for my $refused ('SELECT user_id FROM abtest.assignments', 'SELECT * FROM abtest.experiments',
	'SELECT owner FROM abtest.experiments', 'SELECT * FROM abtest.forced_users',
	'SELECT * FROM ab_list_experiments()', q{SELECT ab_pause('checkout')})
{
	my ($stderr);
	$node->psql('postgres', $refused, extra_params => [ '-U', 'abtest_exporter' ], stderr => \$stderr);
	like($stderr, qr/permission denied/, "the monitoring role may not: $refused");
}

# The exporter, on a free loopback port, with nothing but the YAML's queries.
my $port = PostgreSQL::Test::Cluster::get_free_port();
my ($exporter_out, $exporter_err) = ('', '');
my $exporter;
END { eval { $exporter->kill_kill } if $exporter; }
{
	local $ENV{DATA_SOURCE_NAME} =
	  'host=' . $node->host . ' port=' . $node->port . ' user=abtest_exporter dbname=postgres sslmode=disable';
	$exporter = IPC::Run::start(
		[
			$exporter_bin, "--web.listen-address=127.0.0.1:$port", "--extend.query-path=$yaml_file",
			'--disable-default-metrics', '--disable-settings-metrics', '--no-collector.database',
			'--no-collector.bgwriter', '--log.level=info'
		],
		'<', \undef, '>', \$exporter_out, '2>', \$exporter_err);
}
my $http = HTTP::Tiny->new(timeout => 10);

# A scrape, parsed: {name}{canonical labels} = value, and {name} = type.
sub scrape
{
	my ($response, $deadline) = (undef, time + 30);
	while (1)
	{
		$response = $http->get("http://127.0.0.1:$port/metrics");
		last if $response->{success} || time > $deadline;
		$exporter->pump_nb;
		usleep(100_000);
	}
	die "no /metrics from the exporter: $response->{status} $response->{content}\n$exporter_err"
	  unless $response->{success};
	my (%samples, %types);
	for my $line (split /\n/, $response->{content})
	{
		if ($line =~ /^# TYPE (\S+) (\S+)$/) { $types{$1} = $2; next; }
		next if $line =~ /^#/ || $line eq '';
		$line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/ or die "unparsable line: $line";
		my ($name, $labels, $value) = ($1, $2 // '', $3);
		my %label;
		while ($labels =~ /\G([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gc)
		{
			my ($key, $text) = ($1, $2);
			$text =~ s/\\(.)/$1 eq 'n' ? "\n" : $1/ge;
			$label{$key} = $text;
		}
		die "unparsable labels: $labels" unless (pos($labels) // 0) == length $labels;
		delete $label{server};
		$samples{$name}{ join ',', map { "$_=$label{$_}" } sort keys %label } = $value;
	}
	return { samples => \%samples, types => \%types };
}

sub sql_rows
{
	my ($query) = @_;
	return [ map { [ split /\|/, $_, -1 ] } grep { $_ ne '' } split /\n/, $node->safe_psql('postgres', $query) ];
}

# Every series of every metric of the YAML, against SQL read right after the scrape.
sub check_all
{
	my ($scrape, $when) = @_;
	my $s = $scrape->{samples};
	is(($s->{pg_up}{''} // '') . ' ' . ($s->{pg_exporter_last_scrape_error}{''} // ''), '1 0',
		"$when: the exporter reached the server and its scrape had no error");
	is(join(' ', sort grep { /^abtest_/ } keys %$s), join(' ', sort keys %defined),
		"$when: the exporter exports every metric of the YAML, and no other abtest_ metric");
	is(join(' ', map { "$_:" . ($scrape->{types}{$_} // '') } sort keys %defined),
		join(' ', map { "$_:$defined{$_}" } sort keys %defined), "$when: every metric has the YAML's type");

	my (@wrong, $series);
	my $expect = sub {
		my ($metric, $labels, $value, $tolerance) = @_;
		$series++;
		my $got = $s->{$metric}{$labels};
		my $ok = !defined $got ? 0
		  : $value eq 'NaN' || $got eq 'NaN' ? $got eq $value
		  : $tolerance ? abs($got - $value) <= $tolerance * abs($value)
		  : $got == $value;    # exactly: Go writes 1048576 as 1.048576e+06
		push @wrong, "$metric\{$labels\} = " . ($got // 'missing') . ", SQL says $value" unless $ok;
	};
	my $branches = sql_rows(q{
		SELECT e.name, m.branch, b.allocation, m.exposures, m.assigned_users, m.query_count, m.success_count,
		       m.latency_sum_ms, m.p50_latency_ms, m.p95_latency_ms, m.p99_latency_ms
		  FROM abtest.experiments e CROSS JOIN LATERAL ab_branch_metrics(e.name) m
		  JOIN abtest.branches b ON b.experiment_id = e.id AND b.name = m.branch});
	for my $row (@$branches)
	{
		my ($e, $b, $alloc, $exposures, $assigned, $queries, $successes, $sum, @p) = @$row;
		my $l = "branch=$b,datname=postgres,experiment=$e";
		$expect->('abtest_branch_allocation_ratio', $l, $alloc / 100, 1e-12);
		$expect->('abtest_branch_exposures_total', $l, $exposures);
		$expect->('abtest_branch_assigned_users_total', $l, $assigned);
		$expect->('abtest_branch_queries_total', $l, $queries);
		$expect->('abtest_branch_query_successes_total', $l, $successes);
		$expect->('abtest_branch_query_latency_seconds_count', $l, $queries);
		$expect->('abtest_branch_query_latency_seconds_sum', $l, $sum / 1000, 1e-15);
		my @quantiles = ('0.5', '0.95', '0.99');
		$expect->('abtest_branch_query_latency_seconds', "$l,quantile=$quantiles[$_]",
			$queries > 0 ? $p[$_] / 1000 : 'NaN', 1e-15) for 0 .. 2;
	}
	for my $row (@{ sql_rows('SELECT name, state FROM abtest.experiments') })
	{
		$expect->('abtest_experiment_state', "datname=postgres,experiment=$row->[0],state=$_",
			$_ eq $row->[1] ? 1 : 0) for qw(draft active paused completed archived);
	}
	my ($cache) = @{ sql_rows(q{
		SELECT s.entries, s.capacity, a.size, s.hits, s.misses, s.log_lookups, s.evictions,
		       s.hits::float8 / NULLIF(s.hits + s.misses, 0), s.queued, s.flushed, s.sync_writes,
		       coalesce(extract(epoch FROM s.last_flush), 0), s.uncached_writes, s.overflow_writes, s.queue_bytes,
		       s.queue_capacity_bytes
		  FROM ab_sticky_cache_stats() s, pg_shmem_allocations a WHERE a.name = 'abtest sticky cache'}) };
	my @names = qw(entries max_entries size_bytes hits_total misses_total log_lookups_total evictions_total);
	$expect->("abtest_sticky_cache_$names[$_]", '', $cache->[$_]) for 0 .. $#names;
	$expect->('abtest_sticky_cache_hit_ratio', '', $cache->[7] eq '' ? 'NaN' : $cache->[7], 1e-15);
	$expect->('abtest_flush_queued_assignments_total', '', $cache->[8]);
	$expect->('abtest_flush_flushed_assignments_total', '', $cache->[9]);
	$expect->('abtest_flush_sync_writes_total', '', $cache->[10]);
	$expect->('abtest_flush_pending_assignments', '', $cache->[8] - $cache->[9]);
	$expect->('abtest_flush_last_timestamp_seconds', '', $cache->[11], 1e-15);
	$expect->('abtest_flush_uncached_writes_total', '', $cache->[12]);
	$expect->('abtest_flush_overflow_writes_total', '', $cache->[13]);
	$expect->('abtest_flush_queue_bytes', '', $cache->[14]);
	$expect->('abtest_flush_queue_capacity_bytes', '', $cache->[15]);
	is($series, scalar(map { keys %$_ } @$s{ grep { /^abtest_/ } keys %$s }) - 1,
		"$when: every series was compared (but the lag)");
	is(join("\n", @wrong), '', "$when: $series series agree with SQL");
	return $cache;
}

# 1. Assignments wait in the queue: the lag is the age of the oldest one.
usleep(1_500_000);
my $before = time;
my $scrape = scrape();
my $after = time;
my $cache = check_all($scrape, 'queued');
my $lag = $scrape->{samples}{abtest_flush_lag_seconds}{''};
ok($lag >= $before - $t1 && $lag <= $after - $t0,
	sprintf('the lag (%.3f s) is the age of the first queued assignment (%.3f..%.3f s)',
		$lag, $before - $t1, $after - $t0));
is($cache->[9], '0', 'nothing was flushed yet');
is($cache->[8], 3200, 'the sticky experiments queued their 3,200 users');

# Independent of abtest's own reading: the counters are the calls the test made.
my $s = $scrape->{samples};
my $checkout = 'datname=postgres,experiment=checkout';
is($s->{abtest_branch_exposures_total}{"branch=control,$checkout"}
	  + $s->{abtest_branch_exposures_total}{"branch=treatment,$checkout"}, 3500, 'checkout: 3,500 exposures');
is($s->{abtest_branch_assigned_users_total}{"branch=control,$checkout"}
	  + $s->{abtest_branch_assigned_users_total}{"branch=treatment,$checkout"}, 3000, 'checkout: 3,000 users');
for my $row (@{ sql_rows(q{
	SELECT experiment, branch, count(*), count(*) FILTER (WHERE ok), sum(ms) / 1000 FROM recorded GROUP BY 1, 2}) })
{
	my $l = "branch=$row->[1],datname=postgres,experiment=$row->[0]";
	is($s->{abtest_branch_queries_total}{$l} . ' ' . $s->{abtest_branch_query_successes_total}{$l},
		"$row->[2] $row->[3]", "$row->[0]/$row->[1]: the recorded queries and successes");
	ok(abs($s->{abtest_branch_query_latency_seconds_sum}{$l} - $row->[4]) <= 1e-12 * $row->[4],
		"$row->[0]/$row->[1]: the latency sum is the sum of the recorded latencies in seconds");
}
is($s->{abtest_branch_exposures_total}{"branch=a,datname=postgres,experiment=$pricing"} > 0
	  && $s->{abtest_branch_assigned_users_total}{"branch=a,datname=postgres,experiment=$pricing"} == 0,
	1, 'a label value with quotes and UTF-8 comes through; not sticky, no assigned users');

# 2. The worker writes: no lag, nothing pending, the last flush's time.
$node->safe_psql('postgres', q{ALTER SYSTEM SET abtest.flush_interval = '100ms'; SELECT pg_reload_conf()});
$node->poll_query_until('postgres', 'SELECT queued = flushed FROM ab_sticky_cache_stats()')
  or die 'the flush worker did not write the queue';
$scrape = scrape();
$cache = check_all($scrape, 'flushed');
is($scrape->{samples}{abtest_flush_lag_seconds}{''} . ' ' . $scrape->{samples}{abtest_flush_pending_assignments}{''},
	'0 0', 'no lag, nothing pending once the worker wrote everything');
ok($cache->[11] > $t1, 'the last flush is after the routing');

$exporter->pump_nb;
unlike($exporter_err, qr/level=error/, 'the exporter logged no error (until the restart, which it may report)');

# 3. A restart: the exporter is the first to read the counters, which continue.
my %before = map { $_ => $scrape->{samples}{$_} } grep { /^abtest_branch_/ } keys %{ $scrape->{samples} };
$node->restart;
my $deadline = time + 30;
do { $scrape = scrape() } until ($scrape->{samples}{pg_exporter_last_scrape_error}{''} // 1) == 0 || time > $deadline;
is_deeply({ map { $_ => $scrape->{samples}{$_} } keys %before }, \%before,
	'after a restart the exporter reads every branch counter as it was');
check_all($scrape, 'restarted');

# 4. The dashboard: well-formed, importable, and its queries use only what the YAML defines.
my $dashboard = eval { open my $d, '<', $dashboard_file or die $!; local $/; decode_json(<$d>) };
ok($dashboard, 'the dashboard is well-formed JSON') or diag $@;
is(join(',', map { "$_->{name}:$_->{type}:$_->{pluginId}" } @{ $dashboard->{__inputs} }),
	'DS_PROMETHEUS:datasource:prometheus', 'one Prometheus data source input, DS_PROMETHEUS');
ok(!defined $dashboard->{id} && $dashboard->{uid} && $dashboard->{schemaVersion} >= 36 && $dashboard->{title},
	'importable: no id, a uid, a title, schema of Grafana 9 or later');
my ($variable) = grep { $_->{name} eq 'experiment' } @{ $dashboard->{templating}{list} };
is($variable && $variable->{type}, 'query', 'a templated experiment variable');
my @panels = map { ($_, @{ $_->{panels} // [] }) } @{ $dashboard->{panels} };
my %ids;
my @bad = grep { $ids{ $_->{id} }++ } @panels;
is(scalar(@bad), 0, 'panel ids are unique');
my @exprs = ([ 'variable', $variable->{query}, '' ]);
for my $panel (grep { $_->{type} ne 'row' } @panels)
{
	push @bad, "$panel->{title}: datasource" if ($panel->{datasource}{uid} // '') ne '${DS_PROMETHEUS}';
	push @bad, "$panel->{title}: gridPos" unless $panel->{gridPos} && $panel->{gridPos}{w} && $panel->{gridPos}{h};
	push @bad, "$panel->{title}: no query" unless @{ $panel->{targets} // [] };
	for my $target (@{ $panel->{targets} // [] })
	{
		push @bad, "$panel->{title}: target datasource" if ($target->{datasource}{uid} // '') ne '${DS_PROMETHEUS}';
		push @exprs, [ $panel->{title}, $target->{expr}, $target->{legendFormat} // '' ];
	}
}
is("@bad", '', 'every panel has a position, queries and the DS_PROMETHEUS data source');
ok(@exprs > 15, scalar(@exprs) . ' PromQL expressions');

# PromQL names: label names are those of matchers, of by/ignoring/on (...) and of
# label_values(metric, label); what is left without strings, ranges and numbers must be
# functions, keywords or metrics of the YAML. Label names, and the {{labels}} of a
# legend, must be labels of the metrics the expression uses.
my %promql = map { $_ => 1 } qw(sum max min avg count rate irate increase scalar vector time
  group_left group_right and or unless bool label_values topk bottomk clamp_min clamp_max abs);
my (@unknown, %used);
for my $e (@exprs)
{
	my ($where, $expr, $legend) = @$e;
	my $rest = $expr;
	my @label_names = $rest =~ /([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~?|!=|!~)\s*"/g;
	$rest =~ s/\{[^}]*\}//g;
	push @label_names, map { split /\s*,\s*/ } $rest =~ /\b(?:by|without|ignoring|on)\s*\(([^)]*)\)/g;
	$rest =~ s/\b(?:by|without|ignoring|on)\s*\([^)]*\)//g;
	push @label_names, $2 if $rest =~ s/(label_values\([^,]+),\s*(\w+)\)/$1)/;
	$rest =~ s/\[[^\]]*\]//g;
	my @metrics;
	for my $word ($rest =~ /([a-zA-Z_:][a-zA-Z0-9_:]*)/g)
	{
		if (defined $defined{$word}) { push @metrics, $word; $used{$word}++; }
		elsif (!$promql{$word}) { push @unknown, "$where: $word"; }
	}
	push @unknown, "$where: no abtest metric" unless @metrics;
	my %allowed = map { $_ => 1 } map { @{ $labels_of{$_} } } @metrics;
	push @label_names, $legend =~ /\{\{\s*(\w+)\s*\}\}/g;
	push @unknown, map { "$where: label $_" } grep { !$allowed{$_} } map { s/^\s+|\s+$//gr } @label_names;
}
is(join("\n", @unknown), '', 'every PromQL expression names only metrics and labels that the YAML defines');
my @unused = grep { !$used{$_} && !/_count$|_sum$|log_lookups|flush_last/ } sort keys %defined;
note("metrics no panel shows: @unused") if @unused;

$exporter->kill_kill;
undef $exporter;
done_testing();
