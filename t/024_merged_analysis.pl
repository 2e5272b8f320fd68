# Analysis across primaries: two primaries each record part of one experiment's
# traffic (queries, events, users) in their own counters; an analysis server reads their
# exports through postgres_fdw and merges them. Every analysis of the merged counters
# must equal the analysis on a third server that recorded everything (1e-9 relative,
# counts and percentiles exactly), and the SciPy reference computed from the raw records
# (test/reference/merged_reference.py). The experiment is defined once, on the first
# primary, and reaches the others by logical replication (as in t/023).
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use FindBin;
use lib $FindBin::RealBin;
use AbtestNode;

my $srcdir = $ENV{ABTEST_SRCDIR} // "$FindBin::RealBin/..";
my $dir = PostgreSQL::Test::Utils::tempdir();
system('/usr/bin/python3', "$srcdir/test/reference/merged_reference.py", $dir) == 0
  or die 'the reference script failed';
my $expected = decode_json(slurp_file("$dir/expected.json"));
my $users = $expected->{users};

my $east = AbtestNode::new_node('east', allows_streaming => 'logical');
my $west = AbtestNode::new_node('west');
my $whole = AbtestNode::new_node('whole');
$east->safe_psql('postgres', q{
	SELECT ab_create_experiment('split', ARRAY['control', 'treatment', 'third']);
	SELECT ab_start('split');
	CREATE PUBLICATION abtest_catalog FOR TABLE abtest.experiments, abtest.branches, abtest.forced_users,
	    abtest.metrics, abtest.experiment_metrics;
});
for my $node ($west, $whole)
{
	my $connstr = $east->connstr . ' dbname=postgres';
	my $subscription = 'abtest_catalog_' . $node->name;    # one replication slot each
	$node->safe_psql('postgres', "CREATE SUBSCRIPTION $subscription CONNECTION '$connstr' PUBLICATION abtest_catalog");
	$node->wait_for_subscription_sync($east, $subscription);
}

# Each primary records its part; the third server records both parts.
sub record
{
	my ($node, @parts) = @_;
	$node->safe_psql('postgres', q{
		CREATE TABLE queries (branch text, latency_ms float8, success boolean);
		CREATE TABLE events (branch text, event_name text, value float8);
	});
	for my $part (@parts)
	{
		$node->safe_psql('postgres', qq{
			COPY queries FROM '$dir/queries_$part.csv' CSV;
			COPY events FROM '$dir/events_$part.csv' CSV;
		});
	}
	$node->safe_psql('postgres', q{
		SELECT count(ab_record_query('split', branch, latency_ms, success)) FROM queries;
		SELECT count(ab_record_event('split', branch, event_name, value)) FROM events;
	});
}
record($east, 'east');
record($west, 'west');
record($whole, 'east', 'west');
$east->safe_psql('postgres', "SELECT count(ab_route_user('split', 'u' || i)) FROM generate_series(1, $users) i WHERE i % 3 = 0");
$west->safe_psql('postgres', "SELECT count(ab_route_user('split', 'u' || i)) FROM generate_series(1, $users) i WHERE i % 3 <> 0");
$whole->safe_psql('postgres', "SELECT count(ab_route_user('split', 'u' || i)) FROM generate_series(1, $users) i");

# The analysis server (here the first primary): one foreign table per primary over its
# export views, the first primary's own through a loopback server as well.
for my $peer ([ 'west', $west ], [ 'east_self', $east ])
{
	my ($name, $node) = @$peer;
	my ($host, $port) = ($node->host, $node->port);
	$east->safe_psql('postgres', qq{
		CREATE EXTENSION IF NOT EXISTS postgres_fdw;
		CREATE SERVER $name FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '$host', port '$port', dbname 'postgres');
		CREATE USER MAPPING FOR CURRENT_USER SERVER $name;
		CREATE SCHEMA $name;
		IMPORT FOREIGN SCHEMA abtest LIMIT TO (branch_metrics_export, event_metrics_export) FROM SERVER $name INTO $name;
	});
}
my $branches = q{'{abtest.branch_metrics_export, west.branch_metrics_export}'};
my $events = q{'{abtest.event_metrics_export, west.event_metrics_export}'};
my $foreign_branches = q{'{east_self.branch_metrics_export, west.branch_metrics_export}'};
my $foreign_events = q{'{east_self.event_metrics_export, west.event_metrics_export}'};

like($east->safe_psql('postgres', q{
	EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM west.branch_metrics_export
	 WHERE experiment_id = (SELECT id FROM abtest.experiments WHERE name = 'split')}),
	qr/Remote SQL: .*WHERE \(\(experiment_id = \$1::uuid\)\)/,
	'the experiment is selected on the primary (postgres_fdw ships the condition)');

# The rows of a call, as hashes.
sub rows
{
	my ($node, $call) = @_;
	my $json = $node->safe_psql('postgres', "SELECT coalesce(json_agg(r), '[]') FROM $call r");
	return decode_json($json);
}

# Where two values differ: numbers by more than 1e-9 of the larger, anything else at all. A
# difference (a column named *diff) of two equal means is rounding: 1e-12 absolute there.
sub differs
{
	my ($a, $b, $key) = @_;
	return defined $a != defined $b if !defined $a || !defined $b;
	my $number = qr/^-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;
	if (!ref $a && !ref $b && $a =~ $number && $b =~ $number)
	{
		my $scale = abs($a) > abs($b) ? abs($a) : abs($b);
		return abs($a - $b) > 1e-9 * $scale + (($key // '') =~ /diff$/ ? 1e-12 : 0);
	}
	return "$a" ne "$b";
}

# Every column of every row of two calls, times of recording left out.
sub same_rows
{
	my ($label, $got, $want) = @_;
	my @diff;
	push @diff, sprintf('%d rows, not %d', scalar @$got, scalar @$want) if @$got != @$want;
	for my $i (0 .. $#$want)
	{
		for my $key (sort keys %{ $want->[$i] })
		{
			next if $key =~ /^(first_query|last_query|duration)$/;
			push @diff, "row $i $key: " . ($got->[$i]{$key} // 'NULL') . ' vs ' . ($want->[$i]{$key} // 'NULL')
			  if differs($got->[$i]{$key}, $want->[$i]{$key}, $key);
		}
	}
	ok(!@diff, $label) or diag(join("\n", @diff[ 0 .. ($#diff < 9 ? $#diff : 9) ]));
}

my @calls = (
	[ 'ab_branch_metrics', q{'split'}, $branches, $foreign_branches ],
	[ 'ab_event_metrics', q{'split'}, $events, $foreign_events ],
	[ 'ab_summary', q{'split'}, $branches, $foreign_branches ],
	[ 'ab_compare', q{'split', 'control', 'treatment'}, $branches, $foreign_branches ],
	[ 'ab_compare', q{'split', 'control', 'third'}, $branches, $foreign_branches ],
	[ 'ab_compare', q{'split', 'treatment', 'third'}, $branches, $foreign_branches ],
	[ 'ab_compare_all', q{'split'}, $branches, $foreign_branches ],
	[ 'ab_compare_event', q{'split', 'control', 'treatment', 'purchase'}, $events, $foreign_events ],
	[ 'ab_compare_event', q{'split', 'control', 'third', 'refund'}, $events, $foreign_events ],
	[ 'ab_srm', q{'split'}, $branches, $foreign_branches ]);
my %merged;
for my $call (@calls)
{
	my ($function, $args, $sources, $foreign) = @$call;
	my $whole_rows = rows($whole, "$function($args)");
	my $t0 = time;
	my $merged_rows = rows($east, "$function($args, $sources)");
	my $ms = (time - $t0) * 1000;
	same_rows(sprintf('%s(%s) merged over both primaries equals the server that recorded everything (%.0f ms)',
			$function, $args, $ms),
		$merged_rows, $whole_rows);
	same_rows("$function($args): the same through two foreign tables",
		rows($east, "$function($args, $foreign)"), $merged_rows);
	$merged{"$function($args)"} = $merged_rows;
}

# The persisted counters have the shape of the export too: once the flush worker has
# written them, they analyse like the live export.
$east->poll_query_until('postgres', q{
	SELECT (SELECT (sum(query_count), sum(exposures), sum(assigned_users)) FROM abtest.branch_metrics)
	     = (SELECT (sum(query_count), sum(exposures), sum(assigned_users)) FROM abtest.branch_metrics_export)})
  or die 'the flush worker did not write the counters';
same_rows('abtest.branch_metrics, as of the last flush, is a source like the live export',
	rows($east, q{ab_compare_all('split', '{abtest.branch_metrics, west.branch_metrics_export}')}),
	$merged{q{ab_compare_all('split')}});

# Percentiles come from the summed histograms: exactly those of the whole.
my $whole_metrics = rows($whole, q{ab_branch_metrics('split')});
my $merged_metrics = $merged{q{ab_branch_metrics('split')}};
my @unequal = grep {
	my $i = $_;
	grep { $merged_metrics->[$i]{$_} != $whole_metrics->[$i]{$_} } qw(p50_latency_ms p95_latency_ms p99_latency_ms)
} 0 .. $#$whole_metrics;
ok(!@unequal, 'p50, p95 and p99 of the merged histograms are exactly those of the whole');

# Against the SciPy reference, from the raw records.
sub near
{
	my ($label, $got, $want, $tolerance) = @_;
	my @diff;
	for my $key (sort keys %$want)
	{
		my ($g, $w) = ($got->{$key}, $want->{$key});
		next unless defined $g || exists $got->{$key};
		my $bad = $tolerance->{$key}
		  ? abs($g - $w) > $tolerance->{$key} * abs($w)
		  : differs($g, $w, $key);
		push @diff, "$key: " . ($g // 'NULL') . " vs reference $w" if $bad;
	}
	ok(!@diff, $label) or diag(join("\n", @diff));
}
for my $row (@$merged_metrics)
{
	my $want = $expected->{branch_metrics}{ $row->{branch} };
	near("ab_branch_metrics, $row->{branch}: counts, mean and extremes as the reference; percentiles within 2% of "
		  . 'percentile_disc',
		{ %$row, p50 => $row->{p50_latency_ms}, p95 => $row->{p95_latency_ms}, p99 => $row->{p99_latency_ms} },
		$want, { p50 => 0.02, p95 => 0.02, p99 => 0.02 });
}
for my $want (@{ $expected->{compare} })
{
	my $got = $merged{"ab_compare('split', '$want->{branch_a}', '$want->{branch_b}')"}[0];
	near("ab_compare $want->{branch_a} / $want->{branch_b}: every statistic as SciPy's", $got, $want, {});
}
my %event_rows = map { ("$_->{branch}/$_->{event_name}" => $_) } @{ $merged{q{ab_event_metrics('split')}} };
for my $want (@{ $expected->{events} })
{
	near("ab_event_metrics $want->{branch}/$want->{event_name}: as NumPy's", $event_rows{"$want->{branch}/$want->{event_name}"},
		$want, {});
}
for my $want (@{ $expected->{compare_event} })
{
	my $got = rows($east,
		"ab_compare_event('split', '$want->{branch_a}', '$want->{branch_b}', '$want->{event_name}', $events)")->[0];
	near("ab_compare_event $want->{branch_a} / $want->{branch_b} on $want->{event_name}: Welch as SciPy's", $got,
		$want, {});
}
my $srm = $merged{q{ab_srm('split')}}[0];
near('ab_srm: chi-square and p-value as SciPy\'s, on the users both primaries assigned', $srm,
	{ map { ($_ => $expected->{srm}{$_}) } qw(chi_square p_value degrees_of_freedom) }, {});
is(join(',', map { $_->{assigned_users} } @$merged_metrics), join(',', @{ $expected->{srm}{assigned_users} }),
	'the assigned users per branch are those of the hash formula');

unlike(slurp_file($_->logfile), qr/PANIC|TRAP:|terminated by signal/, 'no crash on ' . $_->name)
  for ($east, $west, $whole);
$_->stop for ($whole, $west, $east);
done_testing();
