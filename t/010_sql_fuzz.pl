# Bad input from SQL: every SQL function of abtest called ABTEST_FUZZ_CALLS times
# (default 100,000) with generated garbage: NULLs, empty and 1 MB strings, invalid
# UTF-8 escapes, NaN and infinities, extreme numbers, malformed and deeply nested
# jsonb, 10,000 branches, names with quotes and unicode. Every call must end in
# success or an ERROR with a specific SQLSTATE (never XX000), and the server must
# never restart.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AbtestNode;

my $calls = $ENV{ABTEST_FUZZ_CALLS} // 100_000;
srand($ENV{ABTEST_FUZZ_SEED} // 20261125);

my $node = AbtestNode::new_node('sql_fuzz', conf => "abtest.max_experiments = 256\n");
my $started = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');

# Values by SQL type, written as SQL expressions. Heavy ones (1 MB, 10,000 elements)
# are drawn less often: see pick().
my $megabyte = q{repeat('x', 1048576)};
my $many_branches = q{ARRAY(SELECT 'b' || g FROM generate_series(1, 10000) g)};
my %pool = (
	experiment => [ q{'fz'}, q{'fz'}, q{'fz'}, q{'fz_loose'}, q{'fz_loose'}, q{'nope'}, 'NULL', q{''},
		q{'fz '}, q{'FZ'}, q{'it''s'}, q{'"quoted"'}, q{'naïve ☃ 🚀'}, q{E'\\xff'}, q{E'fz\\x00'},
		q{repeat('é', 40)}, q{repeat('n', 64)}, q{'a;DROP TABLE t'} ],
	branch => [ q{'control'}, q{'control'}, q{'treatment'}, q{'third'}, q{'nope'}, 'NULL', q{''},
		q{'Control'}, q{'ctrl"'}, q{'ü'}, q{E'\\xc3\\x28'}, q{repeat('b', 200)} ],
	text => [ 'NULL', q{''}, q{'x'}, q{'user42'}, q{'it''s'}, q{'"'}, q{'naïve ☃ 🚀'}, q{E'\\xff\\xfe'},
		q{E'tab\\there'}, q{repeat('u', 5000)}, q{'   '}, q{'\\'}, q{'%s%n'}, q{'draft'}, q{'active'},
		q{'completed'}, q{'hash'}, q{'modulo'}, q{'attribute'}, q{'group'}, q{'percentage'}, q{'fixed'},
		q{'round_robin'}, q{'bogus'} ],
	float8 => [ 'NULL', '0', q{'-0'::float8}, '1', '-1', '12.5', q{'NaN'}, q{'Infinity'}, q{'-Infinity'},
		'1e308', '-1e308', '1e-308', '4.9e-324', '0.05', '0.95', '0.5', '1.5', '-0.5' ],
	bool => [ 'NULL', 'true', 'false' ],
	bigint => [ 'NULL', '0', '-1', '1', '100', '2147483647', '-9223372036854775808', '9223372036854775807' ],
	numeric_array => [ 'NULL', q{ARRAY[50, 50]}, q{ARRAY[50, 30, 20]}, q{'{}'}, q{ARRAY[NULL::numeric, 50]},
		q{ARRAY['NaN'::numeric, 100]}, q{ARRAY[1e1000, 0]}, q{ARRAY[-1, 101]}, q{ARRAY[33.333, 66.667]},
		q{ARRAY(SELECT 0.01 FROM generate_series(1, 10000))} ],
	text_array => [ 'NULL', q{ARRAY['a', 'b']}, q{ARRAY['control', 'treatment', 'third']}, q{'{}'},
		q{ARRAY[NULL::text]}, q{ARRAY['a', 'a']}, q{ARRAY['', 'x']}, q{ARRAY[repeat('x', 1000), 'y']},
		q{ARRAY['beta', 'staff']}, q{ARRAY['naïve', E'\\xff']}, $many_branches ],
	jsonb => [ 'NULL', q{'{}'}, q{'[]'}, q{'null'}, q{'"string"'}, q{'{"control": 50, "treatment": 50}'},
		q{'{"control": 100}'}, q{'{"control": "NaN"}'}, q{'{"control": 1e1000}'}, q{'{"control": -5, "x": 105}'},
		q{'{"control": 33.333, "treatment": 66.667}'}, q('{'), q{'{"country": "DE", "n": 1.5, "b": true}'},
		q{(repeat('[', 5000) || repeat(']', 5000))::jsonb}, q{(repeat('{"a":', 3000) || '1' || repeat('}', 3000))::jsonb},
		q{'{"attribute": "country", "mapping": {"DE": "treatment"}}'}, q{'{"divisor": 0}'},
		q{'{"divisor": 3}'}, q{'{"coverage": 150}'}, q{'{"coverage": 50}'}, q{'{"branch": "treatment"}'},
		q{'{"mapping": {"beta": "nope"}}'}, q{jsonb_build_object('k', repeat('v', 100000))} ],
	interval => [ 'NULL', q{'1 day'}, q{'-1 day'}, q{'0'}, q{'1000000 years'}, q{'1 microsecond'} ],
);

# Every SQL-callable function of the extension, with its argument types.
my @functions = (
	[ 'ab_create_experiment', qw(experiment text_array numeric_array text text text_array) ],
	[ 'ab_set_allocation', qw(experiment jsonb) ],
	[ 'ab_configure', qw(experiment bool text_array text_array bigint float8 bool bool interval text) ],
	[ 'ab_set_assignment', qw(experiment text jsonb) ],
	[ 'ab_start', qw(experiment) ],
	[ 'ab_pause', qw(experiment) ],
	[ 'ab_complete', qw(experiment branch) ],
	[ 'ab_archive', qw(experiment) ],
	[ 'ab_set_state', qw(experiment text) ],
	[ 'ab_delete_experiment', qw(experiment) ],
	[ 'ab_set_default_experiment', qw(experiment) ],
	[ 'ab_get_experiment', qw(experiment) ],
	[ 'ab_list_experiments' ],
	[ 'ab_route_user', qw(experiment text text_array jsonb text) ],
	[ 'ab_route_user', qw(experiment text) ],
	[ 'ab_route_default', qw(text text_array jsonb text) ],
	[ 'ab_bucket', qw(experiment text) ],
	[ 'ab_clear_sticky_cache', qw(experiment) ],
	[ 'ab_clear_user_cache', qw(text) ],
	[ 'ab_sticky_cache_stats' ],
	[ 'ab_record_query', qw(experiment branch float8 bool) ],
	[ 'ab_record_query', qw(experiment branch float8 bool) ],
	[ 'ab_record_event', qw(experiment branch text float8) ],
	[ 'ab_record_event', qw(experiment branch text) ],
	[ 'ab_branch_metrics', qw(experiment) ],
	[ 'ab_event_metrics', qw(experiment) ],
	[ 'ab_summary', qw(experiment) ],
	[ 'ab_all_summaries' ],
	[ 'ab_stats' ],
	[ 'ab_clear_metrics', qw(experiment) ],
	[ 'ab_clear_all_metrics' ],
	[ 'ab_compare', qw(experiment branch branch) ],
	[ 'ab_compare_event', qw(experiment branch branch text) ],
	[ 'ab_compare_all', qw(experiment) ],
	[ 'ab_srm', qw(experiment) ],
	[ 'ab_sample_size', qw(float8 float8 float8 float8) ],
	[ 'ab_sample_size', qw(float8 float8) ],
	[ 'ab_report', qw(experiment) ],
);

sub pick
{
	my ($type) = @_;
	my $values = $pool{$type};
	for (1 .. 3)    # heavy values come up a third as often
	{
		my $value = $values->[ int(rand(@$values)) ];
		return $value unless ($value eq $megabyte || $value eq $many_branches || $value =~ /100000\)/) && $_ < 3;
	}
	return $values->[0];
}

# The statements, one per line, for COPY.
my $file = PostgreSQL::Test::Utils::tempdir() . '/calls.copy';
open my $out, '>', $file or die "cannot write $file: $!";
my %per_function;
for my $i (1 .. $calls)
{
	my ($name, @types) = @{ $functions[ int(rand(@functions)) ] };
	# Now and then a megabyte of text in any text argument.
	my @args = map { $_ eq 'text' && rand() < 0.002 ? $megabyte : pick($_) } @types;
	my $statement = "SELECT * FROM $name(" . join(', ', @args) . ')';
	$per_function{$name}++;
	$statement =~ s/\\/\\\\/g;
	print $out "$statement\n";
}
close $out;
chmod 0644, $file;

$node->safe_psql('postgres', q{
	CREATE TABLE fuzz_calls (id bigserial PRIMARY KEY, statement text NOT NULL, sqlstate text, message text);
	CREATE FUNCTION fuzz_reset() RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
	    -- Keep two experiments to reach deep code paths, whatever the garbage did to them.
	    IF NOT EXISTS (SELECT FROM abtest.experiments WHERE name = 'fz') THEN
	        PERFORM ab_create_experiment('fz', ARRAY['control', 'treatment', 'third']);
	    END IF;
	    IF NOT EXISTS (SELECT FROM abtest.experiments WHERE name = 'fz_loose') THEN
	        PERFORM ab_create_experiment('fz_loose', ARRAY['control', 'treatment']);
	        PERFORM ab_configure('fz_loose', sticky => false);
	    END IF;
	    UPDATE abtest.experiments SET state = 'active', winner = NULL, strategy = 'hash', strategy_params = '{}'
	     WHERE name IN ('fz', 'fz_loose') AND state <> 'active';
	END
	$$;
	CREATE FUNCTION fuzz_run() RETURNS void LANGUAGE plpgsql AS $$
	DECLARE
	    call record;
	    state text;
	    text_of text;
	BEGIN
	    FOR call IN SELECT id, statement FROM fuzz_calls ORDER BY id LOOP
	        IF call.id % 500 = 1 THEN
	            PERFORM fuzz_reset();
	        END IF;
	        BEGIN
	            EXECUTE call.statement;
	            state := '00000';
	            text_of := NULL;
	        EXCEPTION WHEN OTHERS THEN
	            GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, text_of = MESSAGE_TEXT;
	        END;
	        UPDATE fuzz_calls SET sqlstate = state, message = left(text_of, 200) WHERE id = call.id;
	    END LOOP;
	END
	$$;
});
$node->safe_psql('postgres', "COPY fuzz_calls (statement) FROM '$file'");
is($node->safe_psql('postgres', 'SELECT count(*) FROM fuzz_calls'), $calls, "$calls generated calls loaded");

my ($stdout, $stderr);
my $ran = $node->psql('postgres', 'SET statement_timeout = 0; SELECT fuzz_run()',
	stdout => \$stdout, stderr => \$stderr, timeout => 1800);
is($ran, 0, 'the run finished in one session (no backend died)') or diag($stderr);
is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'), $started, 'the server never restarted');
is($node->safe_psql('postgres', 'SELECT count(*) FROM fuzz_calls WHERE sqlstate IS NULL'), '0',
	'every call has an outcome');
is($node->safe_psql('postgres', q{SELECT count(*) FROM fuzz_calls WHERE sqlstate = 'XX000'}), '0',
	'no call ended in an internal error (XX000)')
  or diag($node->safe_psql('postgres',
	q{SELECT statement || ' => ' || message FROM fuzz_calls WHERE sqlstate = 'XX000' LIMIT 10}));
is($node->safe_psql('postgres', q{SELECT count(*) FROM fuzz_calls WHERE sqlstate LIKE '58%' OR sqlstate LIKE 'XX%'}),
	'0', 'no system or internal error class at all');
my $log = slurp_file($node->logfile);
unlike($log, qr/PANIC|server process .* was terminated|TRAP:|unknown C\+\+ exception/, 'no crash, no stray exception');

my $outcomes = $node->safe_psql('postgres', q{
	SELECT string_agg(sqlstate || ' ' || n, ', ' ORDER BY n DESC) FROM (
	  SELECT sqlstate, count(*) AS n FROM fuzz_calls GROUP BY sqlstate) s});
# On stderr, so that the test command's output shows the figures the README quotes.
diag("figures: $calls calls fuzzed, outcomes by SQLSTATE: $outcomes");
note('calls per function: ' . join(', ', map { "$_ $per_function{$_}" } sort keys %per_function));
ok($node->safe_psql('postgres', q{SELECT count(DISTINCT sqlstate) FROM fuzz_calls}) > 5,
	"calls fuzzed: $calls; outcomes: $outcomes");

$node->stop;
done_testing();
