# GrowthBook's SDK test cases (test/growthbook/cases.json, spec 0.8.0) through the SQL
# API: every case of evalCondition, hash, getBucketRange, chooseVariation, inNamespace
# and getEqualWeights, and the run cases that need no browser or SDK context, each as
# an experiment with the growthbook strategy routed with ab_explain and ab_route_user.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use FindBin;
use lib $FindBin::RealBin;
use AbtestNode;

my $source = ($ENV{ABTEST_SRCDIR} // "$FindBin::RealBin/..") . '/test/growthbook/cases.json';
open(my $fh, '<:raw', $source) or die "cannot read $source: $!";
my $cases = JSON::PP->new->utf8->decode(do { local $/; <$fh> });
close $fh;
my $json = JSON::PP->new->utf8->canonical->allow_nonref;

my $node = AbtestNode::new_node('growthbook');

# A SQL literal of any text (dollar-quoted with a tag no case contains).
sub literal { my ($text) = @_; return '$gb$' . $text . '$gb$'; }
sub jsonb { my ($value) = @_; return literal($json->encode($value)) . '::jsonb'; }
sub float8 { my ($value) = @_; return defined $value ? "$value\::float8" : 'NULL::float8'; }
sub float8_array
{
	my ($values) = @_;
	return "'{}'::float8[]" unless @$values;
	return 'ARRAY[' . join(', ', map { ref $_ ? 'ARRAY[' . join(', ', map { "$_\::float8" } @$_) . ']' : "$_\::float8" } @$values) . ']';
}

# Runs one query of "i|result" rows and returns {i => result}.
sub results
{
	my ($sql) = @_;
	my %by_case;
	for my $line (split /\n/, $node->safe_psql('postgres', $sql))
	{
		my ($i, $result) = split /\|/, $line, 2;
		$by_case{$i} = $result;
	}
	return \%by_case;
}

sub same_numbers
{
	my ($got, $expected, $digits) = @_;
	return 0 unless @$got == @$expected;
	for my $i (0 .. $#$got)
	{
		return 0 unless sprintf("%.${digits}f", $got->[$i]) eq sprintf("%.${digits}f", $expected->[$i]);
	}
	return 1;
}

# evalCondition: [name, condition, attributes, expected, saved groups?]
{
	my @cases = @{ $cases->{evalCondition} };
	my @rows = map {
		my ($name, $condition, $attributes, $expected, $groups) = @{ $cases[$_] };
		"($_, " . jsonb($condition) . ', ' . jsonb($attributes) . ', ' . jsonb($groups // {}) . ')'
	} 0 .. $#cases;
	my $got = results('SELECT i, ab_eval_condition(c, a, g) FROM (VALUES ' . join(",\n", @rows) . ') v(i, c, a, g)');
	my @failed = grep { ($got->{$_} // '') ne ($cases[$_][3] ? 't' : 'f') } 0 .. $#cases;
	is(scalar(@failed), 0, scalar(@cases) . ' evalCondition cases')
	  or diag(join("\n", map { "$cases[$_][0]: got $got->{$_}" } @failed));
}

# hash: [seed, value, version, expected or null]
{
	my @cases = @{ $cases->{hash} };
	my @rows = map {
		my ($seed, $value, $version) = @{ $cases[$_] };
		"($_, " . literal($seed) . ', ' . literal($value) . ", $version)"
	} 0 .. $#cases;
	my $got = results("SELECT i, coalesce(ab_growthbook_hash(s, v, n)::text, 'null') FROM (VALUES "
		  . join(', ', @rows) . ') x(i, s, v, n)');
	my @failed = grep {
		my $expected = $cases[$_][3];
		defined $expected ? $got->{$_} eq 'null' || $got->{$_} != $expected : $got->{$_} ne 'null'
	} 0 .. $#cases;
	is(scalar(@failed), 0, scalar(@cases) . ' hash cases')
	  or diag(join("\n", map { "@{$cases[$_]}[0..2]: got $got->{$_}" } @failed));
}

# getBucketRange: [name, [num_variations, coverage, weights or null], ranges]
{
	my @cases = @{ $cases->{getBucketRange} };
	my @rows = map {
		my ($count, $coverage, $weights) = @{ $cases[$_][1] };
		"($_, $count, " . float8($coverage) . ', ' . (defined $weights ? float8_array($weights) : 'NULL::float8[]') . ')'
	} 0 .. $#cases;
	my $got = results('SELECT i, array_to_json(ab_growthbook_bucket_ranges(n, c, w)) FROM (VALUES '
		  . join(', ', @rows) . ') x(i, n, c, w)');
	my @failed = grep {
		my $ranges = $json->decode($got->{$_});
		!same_numbers([ map { @$_ } @$ranges ], [ map { @$_ } @{ $cases[$_][2] } ], 8)
	} 0 .. $#cases;
	is(scalar(@failed), 0, scalar(@cases) . ' getBucketRange cases')
	  or diag(join("\n", map { "$cases[$_][0]: got $got->{$_}" } @failed));
}

# chooseVariation: [name, n, ranges, expected]
{
	my @cases = @{ $cases->{chooseVariation} };
	my @rows = map { "($_, " . float8($cases[$_][1]) . ', ' . float8_array($cases[$_][2]) . ')' } 0 .. $#cases;
	my $got = results('SELECT i, ab_growthbook_choose_variation(n, r) FROM (VALUES ' . join(', ', @rows) . ') x(i, n, r)');
	my @failed = grep { $got->{$_} != $cases[$_][3] } 0 .. $#cases;
	is(scalar(@failed), 0, scalar(@cases) . ' chooseVariation cases')
	  or diag(join("\n", map { "$cases[$_][0]: got $got->{$_}" } @failed));
}

# inNamespace: [name, id, [namespace, start, end], expected]
{
	my @cases = @{ $cases->{inNamespace} };
	my @rows = map {
		my ($name, $id, $namespace) = @{ $cases[$_] };
		"($_, " . literal($id) . ', ' . literal($namespace->[0]) . ', ' . float8($namespace->[1]) . ', ' . float8($namespace->[2]) . ')'
	} 0 .. $#cases;
	my $got = results('SELECT i, ab_growthbook_in_namespace(v, n, s, e) FROM (VALUES ' . join(', ', @rows) . ') x(i, v, n, s, e)');
	my @failed = grep { $got->{$_} ne ($cases[$_][3] ? 't' : 'f') } 0 .. $#cases;
	is(scalar(@failed), 0, scalar(@cases) . ' inNamespace cases')
	  or diag(join("\n", map { "$cases[$_][0]: got $got->{$_}" } @failed));
}

# getEqualWeights: [n, weights] (the SDKs compare to 8 decimals)
{
	my @cases = @{ $cases->{getEqualWeights} };
	my $got = results('SELECT i, array_to_json(ab_growthbook_equal_weights(n)) FROM (VALUES '
		  . join(', ', map { "($_, $cases[$_][0])" } 0 .. $#cases) . ') x(i, n)');
	my @failed = grep { !same_numbers($json->decode($got->{$_}), $cases[$_][1], 8) } 0 .. $#cases;
	is(scalar(@failed), 0, scalar(@cases) . ' getEqualWeights cases')
	  or diag(join("\n", map { "$cases[$_][0]: got $got->{$_}" } @failed));
}

# run: [name, context, experiment, value, in_experiment, hash_used]. Left out, because
# they test an SDK's surroundings rather than assignment: URLs and query strings, QA
# mode and forced variations from the context (dev tools), a disabled context,
# prerequisite features, filters, saved groups from the context, and experiments with
# fewer than two variations (abtest needs two branches).
my (@run, @skipped);
for my $case (@{ $cases->{run} })
{
	my ($name, $context, $experiment) = @$case;
	my @context_keys = grep { $_ ne 'attributes' } keys %$context;
	if (@context_keys || $experiment->{filters} || $experiment->{parentConditions}
		|| @{ $experiment->{variations} } < 2)
	{
		push @skipped, $name;
		next;
	}
	push @run, $case;
}
note('run cases left out: ' . join('; ', @skipped));
is(scalar(@run), 59, '59 run cases apply to a database');

my (@setup, @queries);
for my $i (0 .. $#run)
{
	my ($name, $context, $experiment) = @{ $run[$i] };
	my $exp = "run_$i";
	my @branches = map { literal($json->encode($_)) } @{ $experiment->{variations} };
	my %params = (
		seed => $experiment->{seed} // $experiment->{key},
		hash_version => $experiment->{hashVersion} // 1,
		hash_attribute => $experiment->{hashAttribute} // 'id');
	$params{coverage} = $experiment->{coverage} if exists $experiment->{coverage};
	$params{weights} = $experiment->{weights} if exists $experiment->{weights};
	$params{ranges} = $experiment->{ranges} if exists $experiment->{ranges};
	$params{force} = $experiment->{force} if exists $experiment->{force};
	push @setup, "SELECT ab_create_experiment('$exp', ARRAY[" . join(', ', @branches) . ']);',
	  "SELECT ab_set_assignment('$exp', 'growthbook', " . jsonb(\%params) . ');',
	  "SELECT ab_configure('$exp', sticky => false"
	  . ($experiment->{condition} ? ', condition => ' . jsonb($experiment->{condition}) : '')
	  . ($experiment->{namespace}
		? ', namespace => ' . literal($experiment->{namespace}[0])
		  . ", namespace_range => ARRAY[$experiment->{namespace}[1], $experiment->{namespace}[2]]::numeric[]"
		: '')
	  . ');',
	  "SELECT ab_start('$exp');";
	push @setup, "SELECT ab_pause('$exp');" if exists $experiment->{active} && !$experiment->{active};
	my $user = literal($context->{attributes}{id} // 'anonymous');
	push @queries, "SELECT $i, x.branch, x.in_experiment, x.in_experiment AND x.bucket IS NOT NULL, "
	  . "ab_route_user('$exp', $user, attributes => " . jsonb($context->{attributes}) . ') = x.branch '
	  . "FROM ab_explain('$exp', $user, attributes => " . jsonb($context->{attributes}) . ') x';
}
$node->safe_psql('postgres', join("\n", @setup));
my $got = $node->safe_psql('postgres', join("\nUNION ALL ", @queries) . ' ORDER BY 1');
my %rows = map { my @f = split /\|/; ($f[0] => [ @f[1 .. 4] ]) } split /\n/, $got;
my @failed;
for my $i (0 .. $#run)
{
	my ($name, $context, $experiment, $value, $in, $hash_used) = @{ $run[$i] };
	my $row = $rows{$i};
	my $expected = join('|', $json->encode($value), $in ? 't' : 'f', $hash_used ? 't' : 'f', 't');
	push @failed, "$name: expected $expected, got " . join('|', @$row) if join('|', @$row) ne $expected;
}
is(scalar(@failed), 0, 'every applicable run case gives the SDK\'s variation, in_experiment and hash use')
  or diag(join("\n", @failed));

# Nobody routed above counts as an exposure but the users in their experiment.
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM abtest.experiments e, ab_branch_metrics(e.name) m
	 WHERE e.name LIKE 'run\_%' AND m.exposures > 0}),
	$node->safe_psql('postgres', 'SELECT ' . scalar(grep { $_->[4] } @run)),
	'only the users in an experiment are exposures');

$node->stop;
done_testing();
