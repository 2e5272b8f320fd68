# Outcome analysis (issue #16) against an independent reference: ab_analyze and
# ab_analyze_over_time on random data sets built and solved by
# test/reference/outcome_reference.py (NumPy/SciPy, from per-user values), every column
# compared at 1e-9 relative (1e-12 absolute near 0), NULL exactly where expected.
# Then: the CUPED A/A simulation (false-positive rate and variance reduction), the caller's
# privileges on the source (42501), and one large analysis counted in pg_stat_statements.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AbtestNode;
use JSON::PP;
use Time::HiRes qw(time);

my $srcdir = $ENV{ABTEST_SRCDIR} // "$FindBin::RealBin/..";
my $aa_count = 1000;    # A/A experiments of the CUPED check

my $node = AbtestNode::new_node('outcome', conf => <<'CONF');
shared_preload_libraries = 'abtest, pg_stat_statements'
pg_stat_statements.track = all
abtest.max_experiments = 4096
CONF
$node->safe_psql('postgres', 'CREATE EXTENSION pg_stat_statements');

# Every fact lies within 40 days after the anchor, and the anchor 45+ days before now():
# nothing depends on the moment the test runs (a few facts ten years ahead are "future").
my $anchor = $node->safe_psql('postgres',
	q{SELECT ((floor(extract(epoch FROM now()) / 86400) - 45) * 86400)::bigint});
my $dir = PostgreSQL::Test::Utils::tempdir();
my $t0 = time;
system('/usr/bin/python3', "$srcdir/test/reference/outcome_reference.py", $dir, '--anchor', $anchor,
	'--aa', $aa_count) == 0
  or die "the reference script failed";
note sprintf('reference: %.1f s', time - $t0);

sub slurp_json
{
	my ($file) = @_;
	open my $fh, '<', "$dir/$file" or die "$file: $!";
	local $/;
	return decode_json(<$fh>);
}
my $metrics = slurp_json('metrics.json');
my $expected = slurp_json('expected.json');

# SQL literal of a Perl value (undef: NULL).
sub lit
{
	my ($v) = @_;
	return 'NULL' unless defined $v;
	return $v ? 'true' : 'false' if JSON::PP::is_bool($v);
	return $v if $v =~ /^-?[0-9.]+(e-?[0-9]+)?$/i;
	$v =~ s/'/''/g;
	return "'$v'";
}

# ---------------------------------------------------------------------------------------
# Load the data set: fact tables, experiments with their started_at, the assignment log.
# ---------------------------------------------------------------------------------------
my $load = qq{
CREATE TABLE orders (user_id text, created_at timestamptz, amount numeric(12,2), items integer);
CREATE TABLE sessions (uid bigint, ts timestamp without time zone, seconds integer);
CREATE TABLE refunds (user_id text, refunded_at timestamptz, amount numeric(12,2));  -- stays empty
COPY orders FROM '$dir/orders.csv' (FORMAT csv);
COPY sessions FROM '$dir/sessions.csv' (FORMAT csv);
CREATE TEMP TABLE assignments_in (experiment text, user_id text, branch text, assigned_at timestamptz);
COPY assignments_in FROM '$dir/assignments.csv' (FORMAT csv);
};
open my $exps, '<', "$dir/experiments.tsv" or die;
my %started_us;
while (my $line = <$exps>)
{
	chomp $line;
	my ($name, $branches, $level, $min_n, $started) = split /\t/, $line;
	$started_us{$name} = $started;
	my $array = join(', ', map { lit($_) } split /,/, $branches);
	$load .= qq{
SELECT ab_create_experiment('$name', ARRAY[$array]);
SELECT ab_configure('$name', sticky => true, confidence_level => $level, min_sample_size => $min_n);
SELECT ab_start('$name');
UPDATE abtest.experiments
   SET started_at = timestamptz 'epoch' + ($started / 1000000) * interval '1 second'
                                         + ($started % 1000000) * interval '1 microsecond'
 WHERE name = '$name';
};
}
close $exps;
$load .= q{
INSERT INTO abtest.assignments (experiment_id, user_id, branch, assigned_at)
SELECT x.id, a.user_id, a.branch, a.assigned_at FROM assignments_in a JOIN abtest.experiments x ON x.name = a.experiment;
ANALYZE orders; ANALYZE sessions; ANALYZE abtest.assignments;
};
$node->safe_psql('postgres', $load);
is($node->safe_psql('postgres', q{SELECT count(*) FROM abtest.assignments}),
	`wc -l < $dir/assignments.csv` + 0, 'the assignment log is loaded');
is($node->safe_psql('postgres', q{SELECT count(*) FROM abtest.experiments WHERE started_at < now() - interval '40 days'}),
	'4', 'the experiments started in the past');

# ---------------------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------------------
my @columns = qw(branch users mean stddev diff diff_ci_low diff_ci_high relative_lift lift_ci_low
  lift_ci_high p_value adjusted_p_value is_significant prob_beats_control sequential_p_value
  variance_reduction);
my @over_time_columns = qw(branch users mean diff diff_ci_low diff_ci_high);

# Whether the text PostgreSQL returned ($got, 'NULL' for NULL) is the expected value.
sub matches
{
	my ($got, $want) = @_;
	return $got eq 'NULL' unless defined $want;
	if (JSON::PP::is_bool($want)) { return $got eq ($want ? 'true' : 'false'); }
	return 1 if $want eq 'any';    # compared elsewhere (see degenerate())
	# Ill-conditioned in the reference (a ratio's variance that is 0 up to cancellation):
	# only "no NaN, no infinity" is promised.
	return $got !~ /nan|inf/i if $want eq 'unstable';
	return $got eq $want if $want !~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/i;    # text (branch)
	return 0 if $got !~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/i;                # NULL, NaN, Infinity
	return abs($got - $want) <= 1e-9 * abs($want) + 1e-12;
}

# Compares rows (arrays of text) with expected rows (hashes); returns the differences.
sub differences
{
	my ($got_rows, $want_rows, $cols, $label) = @_;
	my @diff;
	push @diff, sprintf('%s: %d rows, expected %d', $label, scalar @$got_rows, scalar @$want_rows)
	  if @$got_rows != @$want_rows;
	for my $i (0 .. $#$want_rows)
	{
		my $got = $got_rows->[$i] // [];
		for my $c (0 .. $#$cols)
		{
			my $want = $want_rows->[$i]{ $cols->[$c] };
			next if matches($got->[$c] // 'missing', $want);
			push @diff, sprintf('%s row %d %s: got %s, expected %s', $label, $i, $cols->[$c],
				$got->[$c] // 'missing', defined $want ? $want : 'NULL');
		}
	}
	return @diff;
}

# Rows with a diff but no interval (a branch with one user, or both variances 0):
# diff = mean(branch) - mean(control) is still a point estimate, and so is relative_lift
# (NULL only when mean_c = 0), and with n >= 2 in both its delta-method interval. These
# columns of such rows are checked on their own, by the test after the comparisons, so
# that its failure names the case; every other column is compared with the rest.
my @lenient = qw(diff relative_lift lift_ci_low lift_ci_high);
sub degenerate
{
	my ($rows, $cols) = @_;
	my (@strict, @checks);
	for my $i (0 .. $#$rows)
	{
		my %r = %{ $rows->[$i] };
		if ($i > 0 && defined $r{diff} && $r{diff} ne 'unstable' && !defined $r{diff_ci_low})
		{
			for my $c (0 .. $#$cols)
			{
				next unless grep { $_ eq $cols->[$c] } @lenient;
				push @checks, [ $i, $c, $cols->[$c], $r{ $cols->[$c] } ];
				$r{ $cols->[$c] } = 'any';
			}
		}
		push @strict, \%r;
	}
	return (\@strict, \@checks);
}

# The test of those columns: $got_rows are the rows returned (arrays).
my @degenerate_diffs;
sub check_degenerate_diffs
{
	my ($label, $got_rows, $checks) = @_;
	for my $d (@$checks)
	{
		my ($i, $c, $name, $want) = @$d;
		my $got = $got_rows->[$i][$c] // 'missing';
		push @degenerate_diffs, "$label row $i: $name $got, expected " . ($want // 'NULL') . ' (no interval for diff)'
		  unless matches($got, $want);
	}
}

sub text_list
{
	return join(', ', map { "coalesce(r.${_}::text, 'NULL')" } @_);
}

# ---------------------------------------------------------------------------------------
# The reference's per-user values against hand-written queries (no abtest involved): users
# and mean of every analysis (CUPED-adjusted, capped, ratios) from a LEFT JOIN ... GROUP BY
# user with FILTERed aggregates. This checks the reference itself (windows and boundaries,
# NULL values, the timestamp column read in TimeZone, percentile_cont caps, CUPED's theta),
# so that a difference further down is the implementation's.
# ---------------------------------------------------------------------------------------
my %by_name = map { $_->{args}{name} => $_->{args} } @{ $metrics->{metrics} };

# A query of user_id, branch, y, x (capped; x the CUPED covariate when $cuped_window is given).
sub per_user_sql
{
	my ($experiment, $m, $cuped_window) = @_;
	my ($u, $t) = ("f.$m->{user_column}", "f.$m->{time_column}");
	my $v = $m->{value_column} ? "f.$m->{value_column}" : undef;
	my $in_y = "$t >= a.assigned_at" . (defined $m->{conversion_window} ? " AND $t < a.assigned_at + interval '$m->{conversion_window}'" : '');
	my $in_x = "$t < a.assigned_at";
	my $agg = sub {
		my ($cond) = @_;
		my $rows = "count($t) FILTER (WHERE $cond)";
		return {
			sum => defined $v ? "coalesce(sum($v) FILTER (WHERE $cond), 0)" : $rows,
			count => $rows,
			any => "($rows > 0)::int",
			max => defined $v ? "coalesce(max($v) FILTER (WHERE $cond), 0)" : undef }->{ $m->{aggregation} };
	};
	my $lower = defined $cuped_window ? "a.assigned_at - interval '$cuped_window'" : 'a.assigned_at';
	my $x = defined $cuped_window ? $agg->($in_x) : '0';
	my $cap = defined $m->{cap} ? "$m->{cap}::float8"
	  : defined $m->{cap_percentile} ? "(SELECT percentile_cont($m->{cap_percentile}) WITHIN GROUP (ORDER BY yraw::float8) FROM raw WHERE rows > 0)"
	  : 'NULL::float8';
	return qq{(WITH raw AS (
	SELECT a.user_id, a.branch, @{[ $agg->($in_y) ]} AS yraw, count($t) FILTER (WHERE $in_y) AS rows, $x AS xraw
	  FROM abtest.assignments a JOIN abtest.experiments e ON e.id = a.experiment_id AND e.name = '$experiment'
	  LEFT JOIN $m->{source} f ON ${u}::text = a.user_id AND $t >= $lower AND $t < now()
	 GROUP BY a.user_id, a.branch), cap AS (SELECT $cap AS c)
	SELECT user_id, branch, least(yraw::float8, c) AS y, least(xraw::float8, c) AS x FROM raw, cap)};
}

{
	my $tz = $metrics->{timezone};
	my ($sql, @checks) = ("SET TimeZone = '$tz';\n");
	for my $c (@{ $expected->{analyze} })
	{
		my $m = $by_name{ $c->{metric} };
		my $order = 'JOIN (SELECT branch, o FROM unnest(ARRAY[' . join(', ', map { lit($_->{branch}) } @{ $c->{rows} })
		  . ']) WITH ORDINALITY b(branch, o)) b USING (branch)';
		my $per_branch;
		if ($m->{numerator})
		{
			$per_branch = 'SELECT branch, min(o) o, count(*) n, sum(nu.y) / nullif(sum(de.y), 0) m FROM '
			  . per_user_sql($c->{experiment}, $by_name{ $m->{numerator} }) . ' nu JOIN '
			  . per_user_sql($c->{experiment}, $by_name{ $m->{denominator} }) . " de USING (user_id, branch) $order GROUP BY branch";
		}
		elsif ($c->{cuped})
		{
			my $pu = per_user_sql($c->{experiment}, $m, $c->{cuped_window} // '14 days');
			$per_branch = qq{SELECT branch, min(o) o, count(*) n, avg(y - t.theta * (x - t.mx)) m FROM $pu v
	CROSS JOIN (SELECT coalesce(covar_samp(x, y) / nullif(var_samp(x), 0), 0) theta, avg(x) mx FROM $pu w) t
	$order GROUP BY branch};
		}
		else
		{
			$per_branch = 'SELECT branch, min(o) o, count(*) n, avg(y) m FROM ' . per_user_sql($c->{experiment}, $m) . " v $order GROUP BY branch";
		}
		$sql .= "SELECT " . scalar(@checks) . ", string_agg(branch || ':' || n || ':' || coalesce(m::text, 'NULL'), ' ' ORDER BY o) FROM ($per_branch) s;\n";
		push @checks, $c;
	}
	my @lines = split /\n/, $node->safe_psql('postgres', $sql);
	my @bad;
	for my $line (@lines)
	{
		my ($i, $text) = split /\|/, $line;
		my $c = $checks[$i];
		my @got = map { [ split /:/ ] } split / /, $text;
		for my $r (0 .. $#{ $c->{rows} })
		{
			my $want = $c->{rows}[$r];
			push @bad, sprintf('%s %s%s %s: got %s, reference %s users, mean %s', $c->{experiment}, $c->{metric},
				$c->{cuped} ? ' cuped' : '', $want->{branch}, join(' ', @{ $got[$r] // [] }), $want->{users}, $want->{mean} // 'NULL')
			  unless $got[$r] && $got[$r][0] eq $want->{branch} && $got[$r][1] == $want->{users} && matches($got[$r][2], $want->{mean});
		}
	}
	is(scalar @lines, scalar @checks, 'a hand-written query per analysis');
	ok(!@bad, 'the reference\'s users and means are those of hand-written LEFT JOIN ... GROUP BY user queries')
	  or diag(join("\n", @bad[0 .. ($#bad < 19 ? $#bad : 19)]));
}

# Metrics: every one defined (by name, every argument named) and attached to every experiment.
$load = '';
for my $m (@{ $metrics->{metrics} })
{
	my $args = join(', ', map { "$_ => " . lit($m->{args}{$_}) } grep { defined $m->{args}{$_} } sort keys %{ $m->{args} });
	$load .= "SELECT $m->{function}($args);\n";
	$load .= "SELECT ab_attach_metric(x, '$m->{args}{name}', 'secondary') FROM unnest(ARRAY['checkout', 'pricing', 'tiny', 'sparse']) x;\n";
}
$node->safe_psql('postgres', $load);

# ---------------------------------------------------------------------------------------
# ab_analyze: every experiment x metric, with and without CUPED (several windows).
# One session, TimeZone fixed: the sessions table's timestamps are local times of it.
# ---------------------------------------------------------------------------------------
my $tz = $metrics->{timezone};
my $sql = "SET TimeZone = '$tz';\n";
my @cases = @{ $expected->{analyze} };
for my $i (0 .. $#cases)
{
	my $c = $cases[$i];
	my $args = "'$c->{experiment}', '$c->{metric}'";
	$args .= ', cuped => true' if $c->{cuped};
	$args .= ", cuped_window => '$c->{cuped_window}'" if defined $c->{cuped_window};
	$sql .= "SELECT $i, " . text_list(@columns) . " FROM ab_analyze($args) r;\n";
}
$t0 = time;
my $out = $node->safe_psql('postgres', $sql);
note sprintf('%d ab_analyze calls: %.1f s', scalar @cases, time - $t0);
my %got;
for my $line (split /\n/, $out)
{
	my ($i, @values) = split /\|/, $line, -1;
	push @{ $got{$i} }, \@values;
}
for my $i (0 .. $#cases)
{
	my $c = $cases[$i];
	my $label = sprintf('ab_analyze(%s, %s%s)', $c->{experiment}, $c->{metric},
		$c->{cuped} ? ', cuped' . (defined $c->{cuped_window} ? " $c->{cuped_window}" : '') : '');
	my ($strict, $checks) = degenerate($c->{rows}, \@columns);
	my @diff = differences($got{$i} // [], $strict, \@columns, $label);
	check_degenerate_diffs($label, $got{$i} // [], $checks);
	ok(!@diff, "$label: every column as the reference") or diag(join("\n", @diff[0 .. ($#diff < 9 ? $#diff : 9)]));
}

# ---------------------------------------------------------------------------------------
# ab_analyze_over_time: the boundaries started_at + k*step while < now(), then now(); now()
# is read in the same statement. Boundaries after the last fact equal the final state.
# ---------------------------------------------------------------------------------------
$sql = "SET TimeZone = '$tz';\n";
my @timelines = @{ $expected->{over_time} };
for my $i (0 .. $#timelines)
{
	my $c = $timelines[$i];
	$sql .= "SELECT $i, (extract(epoch FROM now()) * 1000000)::bigint, (extract(epoch FROM r.at) * 1000000)::bigint, "
	  . text_list(@over_time_columns)
	  . " FROM ab_analyze_over_time('$c->{experiment}', '$c->{metric}', '$c->{step}') r;\n";
}
$t0 = time;
$out = $node->safe_psql('postgres', $sql);
note sprintf('%d ab_analyze_over_time calls: %.1f s', scalar @timelines, time - $t0);
my (%rows_at, %now_of);
for my $line (split /\n/, $out)
{
	my ($i, $now, $at, @values) = split /\|/, $line, -1;
	$now_of{$i} = $now;
	push @{ $rows_at{$i} }, [ $at, @values ];
}
for my $i (0 .. $#timelines)
{
	my $c = $timelines[$i];
	my $label = "ab_analyze_over_time($c->{experiment}, $c->{metric}, $c->{step})";
	my (@want_at, @want_rows);
	my $now = $now_of{$i} // 0;
	for (my $k = 1;; $k++)
	{
		my $at = $c->{started_at_us} + $k * $c->{step_us};
		last if $at >= $now;
		my $rows = $k <= @{ $c->{steps} } ? $c->{steps}[ $k - 1 ] : $c->{final};
		push @want_at, ($at) x @$rows;
		push @want_rows, @$rows;
	}
	push @want_at, ($now) x @{ $c->{final} };
	push @want_rows, @{ $c->{final} };
	my @got = @{ $rows_at{$i} // [] };
	my @diffs;
	for (my $start = 0; $start < @want_rows; $start += @{ $c->{final} })
	{
		my @step = @want_rows[ $start .. $start + $#{ $c->{final} } ];
		my ($strict, $d) = degenerate(\@step, \@over_time_columns);
		@want_rows[ $start .. $start + $#{ $c->{final} } ] = @$strict;
		push @diffs, map { [ $start + $_->[0], @$_[ 1 .. 3 ] ] } @$d;
	}
	check_degenerate_diffs($label, [ map { [ @$_[ 1 .. $#$_ ] ] } @got ], \@diffs);
	my @diff;
	for my $r (0 .. $#want_at)
	{
		next if defined $got[$r] && $got[$r][0] eq $want_at[$r];
		push @diff, sprintf('row %d: at %s, expected %s', $r, $got[$r] ? $got[$r][0] : 'missing', $want_at[$r]);
		last;
	}
	push @diff, differences([ map { [ @$_[ 1 .. $#$_ ] ] } @got ], \@want_rows, \@over_time_columns, $label);
	ok(!@diff, "$label: every boundary and column as the reference")
	  or diag(join("\n", @diff[0 .. ($#diff < 9 ? $#diff : 9)]));
}

ok(!@degenerate_diffs, 'diff and relative_lift are defined where only the interval is degenerate')
  or diag(join("\n", scalar(@degenerate_diffs) . ' values differ, the first ones:',
	@degenerate_diffs[0 .. ($#degenerate_diffs < 9 ? $#degenerate_diffs : 9)]));

# ---------------------------------------------------------------------------------------
# CUPED A/A: $aa_count experiments, users split 50/50 at random, a pre-period correlated 0.7
# with the outcome, no true effect. The false-positive rate stays nominal and the variance
# drops; each experiment's numbers are also the reference's.
# ---------------------------------------------------------------------------------------
my $aa_expected = slurp_json('aa_expected.json');
$node->safe_psql('postgres', qq{
CREATE TABLE aa_facts (user_id text, ts timestamptz, value numeric(10,2));
COPY aa_facts FROM '$dir/aa_facts.csv' (FORMAT csv);
CREATE INDEX ON aa_facts (user_id, ts);
CREATE TEMP TABLE aa_in (experiment text, user_id text, branch text, assigned_at timestamptz);
COPY aa_in FROM '$dir/aa_assignments.csv' (FORMAT csv);
SELECT count(ab_create_experiment('aa' || g, ARRAY['control', 'treatment'])) FROM generate_series(0, $aa_count - 1) g;
SELECT count(ab_start('aa' || g)) FROM generate_series(0, $aa_count - 1) g;
INSERT INTO abtest.assignments (experiment_id, user_id, branch, assigned_at)
SELECT x.id, a.user_id, a.branch, a.assigned_at FROM aa_in a JOIN abtest.experiments x ON x.name = a.experiment;
ANALYZE aa_facts; ANALYZE abtest.assignments;
SELECT ab_define_metric('aa_value', 'aa_facts', 'user_id', 'ts', 'value', 'sum', '7 days');
});
$t0 = time;
$out = $node->safe_psql('postgres', qq{
SELECT g, coalesce(r.p_value::text, 'NULL'), coalesce(r.variance_reduction::text, 'NULL'), coalesce(r.diff::text, 'NULL')
  FROM generate_series(0, $aa_count - 1) g, LATERAL ab_analyze('aa' || g, 'aa_value', cuped => true) r
 WHERE r.branch = 'treatment' ORDER BY g});
my $aa_seconds = time - $t0;
note sprintf('%d A/A analyses with CUPED in one statement: %.1f s', $aa_count, $aa_seconds);
my ($positives, $reduction, @aa_diff) = (0, 0);
for my $line (split /\n/, $out)
{
	my ($g, $p, $vr, $d) = split /\|/, $line;
	my $want = $aa_expected->[$g];
	push @aa_diff, "aa$g: p $p, expected $want->{p_value}" unless matches($p, $want->{p_value});
	push @aa_diff, "aa$g: variance_reduction $vr, expected $want->{variance_reduction}"
	  unless matches($vr, $want->{variance_reduction});
	push @aa_diff, "aa$g: diff $d, expected $want->{diff}" unless matches($d, $want->{diff});
	$positives++ if $p ne 'NULL' && $p < 0.05;
	$reduction += $vr if $vr ne 'NULL';
}
my @aa_lines = split /\n/, $out;
is(scalar @aa_lines, $aa_count, 'one treatment row per A/A experiment');
ok(!@aa_diff, 'every A/A p-value, variance reduction and diff as the reference')
  or diag(join("\n", @aa_diff[0 .. ($#aa_diff < 9 ? $#aa_diff : 9)]));
my $rate = $positives / $aa_count;
ok($rate >= 0.03 && $rate <= 0.07, "CUPED A/A false-positive rate $rate is within 5% +- 2%");
my $mean_reduction = $reduction / $aa_count;
ok($mean_reduction > 0.3, sprintf('CUPED reduces the variance (mean variance_reduction %.3f, correlation 0.7)',
	$mean_reduction));

# ---------------------------------------------------------------------------------------
# Privileges: the source is read as the caller. An analyst with the grants of the README
# but no SELECT on orders is refused with 42501; with SELECT on sessions, that metric works.
# ---------------------------------------------------------------------------------------
$node->safe_psql('postgres', q{
CREATE ROLE analyst;
GRANT USAGE ON SCHEMA abtest TO analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA abtest TO analyst;
GRANT EXECUTE ON FUNCTION ab_analyze(text, text, boolean, interval), ab_analyze_over_time(text, text, interval)
  TO analyst;
GRANT SELECT ON sessions TO analyst;
});
for my $call ("ab_analyze('checkout', 'revenue')", "ab_analyze('checkout', 'revenue', cuped => true)",
	"ab_analyze('pricing', 'revenue_per_order')", "ab_analyze('checkout', 'items_per_session')",
	"ab_analyze_over_time('checkout', 'converted')")
{
	my ($ret, $stdout, $stderr) = $node->psql('postgres', "\\set VERBOSITY verbose\nSET ROLE analyst;\nSELECT * FROM $call;");
	like($stderr, qr/ERROR:\s+42501/, "$call without SELECT on orders: 42501");
}
is($node->safe_psql('postgres', q{SET ROLE analyst; SELECT count(*) FROM ab_analyze('checkout', 'session_seconds')}),
	'2', 'the same analyst analyses the table it may read');

# ---------------------------------------------------------------------------------------
# One set-based statement: 200,000 users and 1,000,000 facts, pg_stat_statements counts the
# statements ab_analyze and ab_analyze_over_time run (track = all: nested ones too).
# ---------------------------------------------------------------------------------------
$node->safe_psql('postgres', q{
CREATE TABLE big_facts (user_id text, ts timestamptz, amount numeric(10,2));
SELECT ab_create_experiment('big', ARRAY['control', 'treatment']);
SELECT ab_start('big');
UPDATE abtest.experiments SET started_at = now() - interval '20 days' WHERE name = 'big';
INSERT INTO abtest.assignments (experiment_id, user_id, branch, assigned_at)
SELECT x.id, 'b' || g, CASE WHEN g % 2 = 0 THEN 'control' ELSE 'treatment' END,
       now() - interval '20 days' + g * interval '5 seconds'
  FROM abtest.experiments x, generate_series(1, 200000) g WHERE x.name = 'big';
INSERT INTO big_facts
SELECT 'b' || (1 + (g::bigint * 7919) % 200000), now() - interval '30 days' + (g % 2500000) * interval '1 second', (g % 1000) / 10.0
  FROM generate_series(1, 1000000) g;
ANALYZE big_facts; ANALYZE abtest.assignments;
SELECT ab_define_metric('big_revenue', 'big_facts', 'user_id', 'ts', 'amount', 'sum', '7 days');
});
for my $call ("ab_analyze('big', 'big_revenue')", "ab_analyze('big', 'big_revenue', cuped => true)",
	"ab_analyze_over_time('big', 'big_revenue', '12 hours')")
{
	$t0 = time;
	my $counted = $node->safe_psql('postgres', qq{
SELECT pg_stat_statements_reset();
SELECT count(*) FROM $call;
SELECT coalesce(sum(calls), 0) || '|' || coalesce(max(calls), 0) || '|' || count(*)
  FROM pg_stat_statements WHERE NOT toplevel;
});
	my (undef, $rows, $stats) = split /\n/, $counted;
	my ($calls, $max_calls, $distinct) = split /\|/, $stats;
	note sprintf('%s over 200,000 users: %.1f s, %d rows, %d nested statement executions (%d distinct)',
		$call, time - $t0, $rows, $calls, $distinct);
	# At least one: pg_stat_statements sees the nested statements (the count is not vacuous).
	ok($rows >= 2 && $calls >= 1 && $calls <= 20, "$call runs $calls nested statements, not one per user or per step");
}

done_testing();
