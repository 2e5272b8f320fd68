# Bad input from SQL: every SQL function of abtest called ABTEST_FUZZ_CALLS times
# (default 100,000) with generated garbage: NULLs, empty, 1 MB and 10 MB strings, user
# ids at and above their 2,048-byte limit, invalid UTF-8 escapes, NaN and infinities,
# numbers at the edges (±1e308, 5e-324, -0, 1e15 and just above, the latency and event
# bounds), malformed and 5,000-deep jsonb, 100,000-element arrays and objects, names
# with quotes and unicode. Every call must end in success or an ERROR with a specific
# SQLSTATE (never XX000), in bounded time, and the server must never restart.
# Afterwards no counter or statistic of any experiment, from any metrics or analysis
# function, may be NaN or infinite.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AbtestNode;

my $calls = $ENV{ABTEST_FUZZ_CALLS} // 100_000;
srand($ENV{ABTEST_FUZZ_SEED} // 20261125);

my $node = AbtestNode::new_node('sql_fuzz', conf => "abtest.max_experiments = 256\nabtest.max_tracked_queries = 20\n");
my $started = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');

# Values by SQL type, written as SQL expressions. Heavy ones (megabytes, 100,000
# elements, 5,000 levels) are drawn less often: see %rarity and pick().
my $megabyte = q{repeat('x', 1048576)};
my $ten_megabytes = q{repeat('u', 10000000)};
my $many_branches = q{ARRAY(SELECT 'b' || g FROM generate_series(1, 100000) g)};
my $many_numbers = q{ARRAY(SELECT 0.001 FROM generate_series(1, 100000))};
my $many_keys = q{(SELECT jsonb_object_agg('k' || g, g) FROM generate_series(1, 100000) g)};
my $many_mapped = q{jsonb_build_object('name', 'k', 'mapping', (SELECT jsonb_object_agg('k' || g, 'treatment') FROM generate_series(1, 100000) g))};
my $deep_array = q{(repeat('[', 5000) || repeat(']', 5000))::jsonb};
my $deep_object = q{(repeat('{"a":', 5000) || '1' || repeat('}', 5000))::jsonb};
my $long_value = q{jsonb_build_object('k', repeat('v', 100000))};
my $ten_megabyte_array = q{ARRAY[repeat('g', 10000000)]};
my $random_2048 = q{(SELECT string_agg(md5(g::text), '') FROM generate_series(1, 64) g)};
my %rarity = (
	$megabyte => 3, $ten_megabytes => 40, $ten_megabyte_array => 40, $many_branches => 40, $many_numbers => 40,
	$many_keys => 40, $many_mapped => 40, $deep_array => 3, $deep_object => 3, $long_value => 3);
my %pool = (
	experiment => [ q{'fz'}, q{'fz'}, q{'fz'}, q{'fz_loose'}, q{'fz_loose'}, q{'nope'}, 'NULL', q{''},
		q{'fz '}, q{'FZ'}, q{'it''s'}, q{'"quoted"'}, q{'naïve ☃ 🚀'}, q{E'\\xff'}, q{E'fz\\x00'},
		q{repeat('é', 40)}, q{repeat('n', 64)}, q{'a;DROP TABLE t'}, q{repeat('e', 200)}, q{repeat('e', 201)} ],
	branch => [ q{'control'}, q{'control'}, q{'treatment'}, q{'third'}, q{'nope'}, 'NULL', q{''},
		q{'Control'}, q{'ctrl"'}, q{'ü'}, q{E'\\xc3\\x28'}, q{repeat('b', 200)}, q{repeat('b', 201)} ],
	text => [ 'NULL', q{''}, q{'x'}, q{'user42'}, q{'it''s'}, q{'"'}, q{'naïve ☃ 🚀'}, q{E'\\xff\\xfe'},
		q{E'tab\\there'}, q{repeat('u', 5000)}, q{'   '}, q{'\\'}, q{'%s%n'}, q{'draft'}, q{'active'},
		q{'completed'}, q{'hash'}, q{'modulo'}, q{'attribute'}, q{'group'}, q{'percentage'}, q{'fixed'}, q{'growthbook'},
		q{'round_robin'}, q{'bogus'}, q{repeat('u', 2048)}, q{repeat('u', 2049)}, $random_2048,
		qq{($random_2048 || 'x')}, q{repeat('ユ', 682)}, q{repeat('ユ', 683)}, q{repeat('e', 63)},
		q{repeat('e', 64)} ],
	float8 => [ 'NULL', '0', q{'-0'::float8}, '1', '-1', '12.5', q{'NaN'}, q{'Infinity'}, q{'-Infinity'},
		'1e308', '-1e308', q{'1.7976931348623157e308'::float8}, '1e-308', '4.9e-324', q{'-5e-324'::float8},
		'1e-160', '0.05', '0.95', '0.5', '1.5', '-0.5', '1e6', '1000000.001', '1e15', '-1e15',
		'1000000000000001', '-1000000000000001', '1e12' ],
	bool => [ 'NULL', 'true', 'false' ],
	bigint => [ 'NULL', '0', '-1', '1', '100', '2147483647', '-9223372036854775808', '9223372036854775807',
		'1000000000000000', '-1000000000000000' ],
	numeric_array => [ 'NULL', q{ARRAY[50, 50]}, q{ARRAY[50, 30, 20]}, q{'{}'}, q{ARRAY[NULL::numeric, 50]},
		q{ARRAY['NaN'::numeric, 100]}, q{ARRAY[1e1000, 0]}, q{ARRAY[-1, 101]}, q{ARRAY[33.333, 66.667]},
		q{ARRAY[1e308, -1e308]}, q{ARRAY[5e-324, 100]}, q{ARRAY[-0.0, 100]}, q{ARRAY[1e15, 50]},
		q{ARRAY(SELECT 0.01 FROM generate_series(1, 10000))}, $many_numbers ],
	text_array => [ 'NULL', q{ARRAY['a', 'b']}, q{ARRAY['control', 'treatment', 'third']}, q{'{}'},
		q{ARRAY[NULL::text]}, q{ARRAY['a', 'a']}, q{ARRAY['', 'x']}, q{ARRAY[repeat('x', 1000), 'y']},
		q{ARRAY['beta', 'staff']}, q{ARRAY['naïve', E'\\xff']}, $many_branches,
		$ten_megabyte_array ],
	jsonb => [ 'NULL', q{'{}'}, q{'[]'}, q{'null'}, q{'"string"'}, q{'{"control": 50, "treatment": 50}'},
		q{'{"control": 100}'}, q{'{"control": "NaN"}'}, q{'{"control": 1e1000}'}, q{'{"control": -5, "x": 105}'},
		q{'{"control": 33.333, "treatment": 66.667}'}, q('{'), q{'{"country": "DE", "n": 1.5, "b": true}'},
		$deep_array, $deep_object, q{'{"control": 1e308, "treatment": -1e308}'},
		q{'{"control": -0.0, "treatment": 100}'}, q{'{"control": 5e-324, "treatment": 100}'},
		q{'{"attribute": "country", "mapping": {"DE": "treatment"}}'}, q{'{"divisor": 0}'},
		q{'{"divisor": 3}'}, q{'{"divisor": 1000000000000}'}, q{'{"divisor": 1000000000001}'},
		q{'{"divisor": 1e308}'}, q{'{"coverage": 150}'}, q{'{"coverage": 50}'}, q{'{"coverage": 5e-324}'},
		q{'{"coverage": -0.0}'}, q{'{"branch": "treatment"}'}, q{'{"mapping": {"beta": "nope"}}'},
		q{'{"hash_version": 1, "seed": "s", "coverage": 0.5}'}, q{'{"hash_attribute": "country", "force": 1}'},
		q{'{"ranges": [[0, 0.5], [0.5, 1]], "weights": [0.5, 0.5]}'}, q{'{"weights": [1e308, -1e308]}'},
		q{'{"ranges": [[5e-324, 1e308], [0, 1]]}'}, q{'{"force": 1e15}'}, q{'{"hash_version": 3}'},
		q{'{"k": 1e308, "n": -1e308, "d": 5e-324}'}, $long_value, $many_keys, $many_mapped ],
	interval => [ 'NULL', q{'1 day'}, q{'-1 day'}, q{'0'}, q{'1000000 years'}, q{'1 microsecond'},
		q{'-0 seconds'}, q{'178000000 years'}, q{'-178000000 years'} ],
	# Valid targets, so that the numbers at the edges reach real counters and comparisons.
	# Targeting: conditions valid and not, GrowthBook's parameters, namespace ranges.
	condition => [ 'NULL', q{'{}'}, q{'{"country": "DE"}'}, q{'{"age": {"$gte": 18, "$lt": 1e308}}'},
		q{'{"v": {"$vgte": "1.2.3-beta.1"}}'}, q{'{"ua": {"$regex": "(Mobile|Tablet)"}}'}, q{'{"ua": {"$regex": "("}}'},
		q{'{"ua": {"$regexi": "[[:alpha:]]+\\d{1,3}"}}'}, q{'{"a": {"$gtt": 1}}'}, q{'{"$or": [{"a": 1}, {"b": {"$in": [1, "1"]}}]}'},
		q{'{"$and": {"a": 1}}'}, q{'{"tags": {"$elemMatch": {"$eq": "x"}}, "tags.length": {"$gt": 1e15}}'},
		q{'{"id": {"$inGroup": "g"}}'}, q{'{"n": {"$size": 5e-324}}'}, q{'{"x": {"$type": "number"}}'},
		q{'[1]'}, q{'"s"'}, q{'{"": 1}'}, q{'{"a..b": 1}'}, $deep_object, $many_keys, $long_value,
		q{(SELECT jsonb_build_object('k', jsonb_build_object('$in', jsonb_agg(g))) FROM generate_series(1, 100000) g)} ],
	float8_array => [ 'NULL', q{'{}'}, q{ARRAY[0.5, 0.5]}, q{ARRAY[[0, 0.5], [0.5, 1]]}, q{ARRAY[NULL::float8]},
		q{ARRAY['NaN', 'Infinity']::float8[]}, q{ARRAY[1e308, -1e308]}, q{ARRAY[5e-324, 1]}, q{ARRAY[0.1]},
		q{ARRAY(SELECT 0.00001 FROM generate_series(1, 100000))} ],
	int => [ 'NULL', '0', '1', '2', '-1', '3', '99', '100', '101', '2147483647', '-2147483648' ],
	# Outcome analysis (1.3): sources, columns and metrics, valid and not.
	regclass => [ 'NULL', q{'fz_facts'}, q{'fz_facts'}, q{'fz_facts_view'}, q{'pg_class'}, q{'abtest.assignments'},
		q{'fz_facts_id_seq'}, q{'1'::oid}, q{'4294967295'::oid} ],
	column => [ 'NULL', q{'user_id'}, q{'user_id'}, q{'at'}, q{'at'}, q{'amount'}, q{'amount'}, q{'ctid'},
		q{'nope'}, q{''}, q{repeat('c', 63)}, q{repeat('c', 100)}, q{'"x'}, q{'tags'}, q{'at_local'} ],
	metric => [ 'NULL', q{'fz_revenue'}, q{'fz_revenue'}, q{'fz_orders'}, q{'fz_ratio'}, q{'nope'}, q{''},
		q{'sum'}, q{repeat('m', 200)}, q{repeat('m', 201)}, q{'it''s'}, q{E'\\xff'} ],
	aggregation => [ 'NULL', q{'sum'}, q{'count'}, q{'any'}, q{'max'}, q{'avg'}, q{''}, q{'SUM'} ],
	role => [ 'NULL', q{'goal'}, q{'guardrail'}, q{'secondary'}, q{'primary'}, q{''} ],
	# Database branches (1.4): settings valid and not (none that would disturb the run).
	settings => [ 'NULL', q{'{}'}, q{'{"work_mem": "64MB"}'}, q{'{"work_mem": "lots"}'}, q{'{"enable_seqscan": false}'},
		q{'{"random_page_cost": 1e308}'}, q{'{"random_page_cost": -1}'}, q{'{"role": "postgres"}'},
		q{'{"shared_buffers": "1GB"}'}, q{'{"log_min_duration_statement": 0}'}, q{'{"nope": 1}'}, q{'{"fz.x": "y"}'},
		q{'{"": "x"}'}, q{'{"work_mem": ""}'}, q{'{"work_mem": null}'}, q{'{"work_mem": [1]}'}, q{'[1]'}, q{'"s"'},
		q{'{"abtest.track_nested": "on"}'}, $long_value, $many_keys, $deep_object ],
	kept_experiment => [ q{'fz'}, q{'fz_loose'} ],
	kept_branch => [ q{'control'}, q{'treatment'} ],
	event => [ q{'revenue'}, q{'signup'} ],
	# Analyses across primaries (1.4): sources of the export views' shape, live, persisted,
	# garbage, of the wrong shape, not relations at all, listed twice, too many.
	sources => [ 'NULL', q{'{}'}, q{'{fz_export}'}, q{'{fz_export}'}, q{'{fz_export, abtest.branch_metrics}'},
		q{'{abtest.branch_metrics_export}'}, q{'{fz_export, fz_export}'}, q{'{fz_garbage}'}, q{'{fz_garbage}'},
		q{'{fz_facts}'}, q{'{fz_events_export}'}, q{'{fz_facts_id_seq}'}, q{ARRAY[NULL::regclass]},
		q{ARRAY['4294967295'::oid::regclass]}, q{ARRAY(SELECT 'fz_export'::regclass FROM generate_series(1, 1001))} ],
	event_sources => [ 'NULL', q{'{}'}, q{'{fz_events_export}'}, q{'{fz_events_export}'},
		q{'{fz_events_export, abtest.event_metrics}'}, q{'{fz_event_garbage}'}, q{'{fz_event_garbage}'},
		q{'{fz_export}'}, q{'{fz_events_export, fz_events_export}'} ],
);

# Every SQL-callable function of the extension, with its argument types.
my @functions = (
	[ 'ab_create_experiment', qw(experiment text_array numeric_array text text text_array) ],
	[ 'ab_set_allocation', qw(experiment jsonb) ],
	[ 'ab_configure', qw(experiment bool text_array text_array bigint float8 bool bool interval text) ],
	[ 'ab_configure', qw(experiment bool text_array text_array bigint float8 bool bool interval text condition text numeric_array) ],
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
	# Targeting (1.2).
	[ 'ab_force', qw(experiment text branch) ],
	[ 'ab_unforce', qw(experiment text) ],
	[ 'ab_explain', qw(experiment text text_array jsonb text) ],
	[ 'ab_explain', qw(experiment text text_array condition text) ],
	[ 'ab_route_user', qw(experiment text text_array condition text) ],
	[ 'ab_eval_condition', qw(condition condition jsonb) ],
	[ 'ab_eval_condition', qw(condition jsonb) ],
	[ 'ab_growthbook_hash', qw(text text int) ],
	[ 'ab_growthbook_bucket_ranges', qw(int float8 float8_array) ],
	[ 'ab_growthbook_choose_variation', qw(float8 float8_array) ],
	[ 'ab_growthbook_in_namespace', qw(text text float8 float8) ],
	[ 'ab_growthbook_equal_weights', qw(int) ],
	# Outcome analysis (1.3).
	[ 'ab_define_metric', qw(metric regclass column column column aggregation interval float8 float8 text bool) ],
	[ 'ab_define_metric', qw(metric regclass column column) ],
	[ 'ab_define_ratio_metric', qw(metric metric metric text bool) ],
	[ 'ab_drop_metric', qw(metric) ],
	[ 'ab_attach_metric', qw(experiment metric role) ],
	[ 'ab_detach_metric', qw(experiment metric) ],
	[ 'ab_analyze', qw(experiment metric bool interval) ],
	[ 'ab_analyze', qw(kept_experiment metric) ],
	[ 'ab_analyze_over_time', qw(experiment metric interval) ],
	[ 'ab_analyze_over_time', qw(kept_experiment metric) ],
	[ 'ab_report_html', qw(experiment) ],
	# Database branches (1.4).
	[ 'ab_set_branch_settings', qw(experiment branch settings) ],
	[ 'ab_set_branch_settings', qw(kept_experiment kept_branch settings) ],
	[ 'ab_enter', qw(experiment text text_array jsonb text) ],
	[ 'ab_enter', qw(kept_experiment text) ],
	[ 'ab_leave' ],
	# Per-query metrics of database branches (1.4): fed by the statements of the run itself
	# once an ab_enter succeeded (abtest.track_nested is on for it, see below).
	[ 'ab_query_metrics', qw(experiment) ],
	[ 'ab_compare_queries', qw(experiment branch branch) ],
	[ 'ab_compare_queries', qw(kept_experiment kept_branch kept_branch) ],
	[ 'ab_query_metrics_stats' ],
	# Edges of every number into counters that exist, and comparisons of what they hold.
	[ 'ab_record_query', qw(kept_experiment kept_branch float8 bool) ],
	[ 'ab_record_query', qw(kept_experiment kept_branch float8 bool) ],
	[ 'ab_record_event', qw(kept_experiment kept_branch event float8) ],
	[ 'ab_record_event', qw(kept_experiment kept_branch event float8) ],
	[ 'ab_compare', qw(kept_experiment kept_branch kept_branch) ],
	[ 'ab_compare_event', qw(kept_experiment kept_branch kept_branch event) ],
	# More than one primary (1.4): the exports, and the analyses over merged sources.
	[ 'ab_export_branch_metrics' ],
	[ 'ab_export_event_metrics' ],
	[ 'ab_branch_metrics', qw(experiment sources) ],
	[ 'ab_event_metrics', qw(experiment event_sources) ],
	[ 'ab_summary', qw(experiment sources) ],
	[ 'ab_compare', qw(experiment branch branch sources) ],
	[ 'ab_compare', qw(kept_experiment kept_branch kept_branch sources) ],
	[ 'ab_compare_all', qw(kept_experiment sources) ],
	[ 'ab_compare_event', qw(kept_experiment kept_branch kept_branch event event_sources) ],
	[ 'ab_srm', qw(experiment sources) ],
);

# A value of the type; a heavy one is kept only 1 in $rarity{$value} times it is drawn.
sub pick
{
	my ($type) = @_;
	my $values = $pool{$type};
	for (1 .. 50)
	{
		my $value = $values->[ int(rand(@$values)) ];
		return $value if rand($rarity{$value} // 1) < 1;
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
	# Now and then a megabyte, or ten, in any text argument.
	my @args = map {
		my $text = $_ eq 'text' || $_ eq 'experiment' || $_ eq 'branch';
		my $dice = rand();
		$text && $dice < 0.0002 ? $ten_megabytes : $text && $dice < 0.002 ? $megabyte : pick($_)
	} @types;
	my $statement = "SELECT * FROM $name(" . join(', ', @args) . ')';
	$per_function{$name}++;
	$statement =~ s/\\/\\\\/g;
	print $out "$statement\n";
}
close $out;
chmod 0644, $file;

$node->safe_psql('postgres', q{
	CREATE TABLE fuzz_calls (id bigserial PRIMARY KEY, statement text NOT NULL, sqlstate text, message text,
	                         ms float8);
	CREATE TABLE fz_facts (id serial, user_id text, at timestamptz, at_local timestamp, amount numeric, tags text[]);
	INSERT INTO fz_facts (user_id, at, at_local, amount)
	SELECT 'user42', now() - g * interval '1 hour', now() - g * interval '1 hour', g FROM generate_series(1, 50) g;
	INSERT INTO fz_facts (user_id, at, amount) VALUES ('x', now(), 1e300), ('x', now(), -1e300), ('', NULL, NULL);
	CREATE VIEW fz_facts_view AS SELECT user_id, at, amount FROM fz_facts;
	-- Sources of analyses across primaries: this server's exports, and rows of their shape
	-- that no server exports (re-aimed at the kept experiments by fuzz_reset).
	CREATE VIEW fz_export AS SELECT * FROM abtest.branch_metrics_export;
	CREATE VIEW fz_events_export AS SELECT * FROM abtest.event_metrics_export;
	CREATE TABLE fz_garbage AS SELECT * FROM abtest.branch_metrics_export WHERE false;
	INSERT INTO fz_garbage (experiment_id, branch, query_count, success_count, latency_sum, latency_mean, latency_m2,
	                        min_latency_ms, max_latency_ms, first_query, last_query, latency_histogram, exposures,
	                        assigned_users)
	VALUES (NULL, 'control', 3, 2, 'NaN', 1, 0, 1, 1, now(), now(), '{0,0,3}', 1, 1),
	       (NULL, 'treatment', 1000000000, 500000000, 5e14, 5e5, 1e20, 0, 1e6, '-infinity', now(), '{1000000000}',
	        9223372036854775807, 9223372036854775807),
	       (NULL, 'treatment', 1, 1, 1e308, 1e308, 1e308, -1, 1e308, now(), now(), '{1}', 1, 1),
	       (NULL, 'control', -1, -5, 0, 0, 0, NULL, NULL, NULL, NULL, '{}', -1, -1),
	       (NULL, 'third', 1, 0, 0, 0, 0, 0, 0, now(), now(), '{{1}}', 0, 0),
	       (NULL, 'nope', 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, '{}', 0, 0),
	       (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
	CREATE TABLE fz_event_garbage AS SELECT * FROM abtest.event_metrics_export WHERE false;
	INSERT INTO fz_event_garbage (experiment_id, branch, event_name, count, sum, mean, m2)
	VALUES (NULL, 'control', 'revenue', 2, 'Infinity', 1, 0), (NULL, 'control', 'revenue', 1, 1e15, 1e15, 0),
	       (NULL, 'treatment', repeat('e', 64), 1, 1, 1, 0), (NULL, 'treatment', 'signup', -1, 0, 0, 0),
	       (NULL, 'control', 'signup', 3, 3e15, 1e15, 1e300), (NULL, 'control', NULL, NULL, NULL, NULL, NULL);
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
	    -- And metrics over a table of facts, so that the analysis runs for real.
	    IF NOT EXISTS (SELECT FROM abtest.metrics WHERE name = 'fz_revenue') THEN
	        PERFORM ab_define_metric('fz_revenue', 'fz_facts', 'user_id', 'at', 'amount', cap_percentile => 0.9);
	    END IF;
	    IF NOT EXISTS (SELECT FROM abtest.metrics WHERE name = 'fz_orders') THEN
	        PERFORM ab_define_metric('fz_orders', 'fz_facts', 'user_id', 'at', aggregation => 'count',
	                                 conversion_window => '1 day');
	    END IF;
	    IF NOT EXISTS (SELECT FROM abtest.metrics WHERE name = 'fz_ratio') THEN
	        PERFORM ab_define_ratio_metric('fz_ratio', 'fz_revenue', 'fz_orders');
	    END IF;
	    UPDATE fz_garbage SET experiment_id = (SELECT id FROM abtest.experiments
	                                            WHERE name = CASE WHEN query_count = 3 THEN 'fz_loose' ELSE 'fz' END);
	    UPDATE fz_event_garbage SET experiment_id = (SELECT id FROM abtest.experiments WHERE name = 'fz');
	END
	$$;
	-- What every metrics and analysis function says about every experiment, every ordered
	-- pair of branches and every event, as (call, column, value); a call that fails gives
	-- one row (call, 'error', its SQLSTATE and message).
	CREATE FUNCTION fuzz_values(call text) RETURNS TABLE (source text, key text, value jsonb) LANGUAGE plpgsql AS $$
	BEGIN
	    IF call LIKE 'ab_report(%' THEN
	        RETURN QUERY EXECUTE format('SELECT %L, ''line'', to_jsonb(line) FROM %s line', call, call);
	    ELSE
	        RETURN QUERY EXECUTE format('SELECT %L, j.key, j.value FROM %s r, jsonb_each(to_jsonb(r)) j', call, call);
	    END IF;
	EXCEPTION WHEN OTHERS THEN
	    RETURN QUERY SELECT call, 'error', to_jsonb(SQLSTATE || ': ' || SQLERRM);
	END
	$$;
	CREATE FUNCTION fuzz_outputs() RETURNS TABLE (source text, key text, value jsonb) LANGUAGE plpgsql AS $$
	DECLARE
	    e record;
	    pair record;
	    ev text;
	BEGIN
	    FOR e IN SELECT id, name FROM abtest.experiments ORDER BY name LOOP
	        RETURN QUERY SELECT * FROM fuzz_values(format('ab_branch_metrics(%L)', e.name));
	        RETURN QUERY SELECT * FROM fuzz_values(format('ab_event_metrics(%L)', e.name));
	        RETURN QUERY SELECT * FROM fuzz_values(format('ab_summary(%L)', e.name));
	        RETURN QUERY SELECT * FROM fuzz_values(format('ab_compare_all(%L)', e.name));
	        RETURN QUERY SELECT * FROM fuzz_values(format('ab_srm(%L)', e.name));
	        RETURN QUERY SELECT * FROM fuzz_values(format('ab_report(%L)', e.name));
	        RETURN QUERY SELECT * FROM fuzz_values(format('ab_branch_metrics(%L, %L)', e.name, '{fz_export}'));
	        RETURN QUERY SELECT * FROM fuzz_values(format('ab_compare_all(%L, %L)', e.name, '{fz_export}'));
	        RETURN QUERY SELECT * FROM fuzz_values(format('ab_srm(%L, %L)', e.name, '{fz_export}'));
	        RETURN QUERY SELECT * FROM fuzz_values(format('ab_query_metrics(%L)', e.name));
	        FOR pair IN SELECT a.name AS a, b.name AS b FROM abtest.branches a JOIN abtest.branches b USING (experiment_id)
	                     WHERE experiment_id = e.id AND a.name <> b.name LOOP
	            RETURN QUERY SELECT * FROM fuzz_values(format('ab_compare(%L, %L, %L)', e.name, pair.a, pair.b));
	            RETURN QUERY SELECT * FROM fuzz_values(format('ab_compare_queries(%L, %L, %L)', e.name, pair.a, pair.b));
	            FOR ev IN SELECT DISTINCT event_name FROM ab_event_metrics(e.name) LOOP
	                RETURN QUERY SELECT * FROM fuzz_values(
	                    format('ab_compare_event(%L, %L, %L, %L)', e.name, pair.a, pair.b, ev));
	            END LOOP;
	        END LOOP;
	    END LOOP;
	    RETURN QUERY SELECT * FROM fuzz_values('ab_all_summaries()');
	    RETURN QUERY SELECT * FROM fuzz_values('ab_stats()');
	    RETURN QUERY SELECT * FROM fuzz_values('ab_query_metrics_stats()');
	END
	$$;
	-- A float8 that is NaN or infinite becomes a JSON string; a report line spells it out.
	-- An error of any of these functions is a finding too.
	CREATE TABLE fuzz_findings (after_call bigint, source text, key text, value text);
	CREATE TABLE fuzz_checks (after_call bigint, n_values bigint, comparisons bigint, event_comparisons bigint,
	                          query_rows bigint, query_comparisons bigint,
	                          report_lines bigint);
	CREATE FUNCTION fuzz_check(checked_after bigint) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
	    CREATE TEMP TABLE outputs ON COMMIT DROP AS SELECT * FROM fuzz_outputs();
	    INSERT INTO fuzz_findings
	      SELECT checked_after, source, key, value::text FROM outputs
	       WHERE CASE WHEN key = 'error' THEN true
	                  WHEN key = 'line' THEN value #>> '{}' ~* '\m(-?inf(inity)?|nan)\M'
	                  ELSE jsonb_typeof(value) = 'string' AND value #>> '{}' IN ('NaN', 'Infinity', '-Infinity')
	                       AND key NOT IN ('branch', 'branch_a', 'branch_b', 'event_name', 'experiment', 'best_branch', 'query')
	                  END;
	    INSERT INTO fuzz_checks
	      SELECT checked_after, count(*), count(*) FILTER (WHERE source LIKE 'ab_compare(%' AND key = 'p_value'),
	             count(*) FILTER (WHERE source LIKE 'ab_compare_event(%' AND key = 'p_value'),
	             count(*) FILTER (WHERE source LIKE 'ab_query_metrics(%' AND key = 'calls'),
	             count(*) FILTER (WHERE source LIKE 'ab_compare_queries(%' AND key = 'p_value'),
	             count(*) FILTER (WHERE source LIKE 'ab_report(%')
	        FROM outputs;
	    DROP TABLE outputs;
	EXCEPTION WHEN OTHERS THEN
	    INSERT INTO fuzz_findings VALUES (checked_after, 'error', SQLSTATE, SQLERRM);
	END
	$$;
	CREATE FUNCTION fuzz_run() RETURNS void LANGUAGE plpgsql AS $$
	DECLARE
	    call record;
	    state text;
	    text_of text;
	    started timestamptz;
	BEGIN
	    FOR call IN SELECT id, statement FROM fuzz_calls ORDER BY id LOOP
	        IF call.id % 250 = 1 AND call.id > 1 THEN
	            PERFORM fuzz_check(call.id - 1);
	        END IF;
	        IF call.id % 500 = 1 THEN
	            PERFORM fuzz_reset();
	        END IF;
	        started := clock_timestamp();
	        BEGIN
	            EXECUTE call.statement;
	            state := '00000';
	            text_of := NULL;
	        EXCEPTION WHEN OTHERS THEN
	            GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, text_of = MESSAGE_TEXT;
	        END;
	        UPDATE fuzz_calls SET sqlstate = state, message = left(text_of, 200),
	               ms = extract(epoch FROM clock_timestamp() - started) * 1000
	         WHERE id = call.id;
	    END LOOP;
	END
	$$;
});
$node->safe_psql('postgres', "COPY fuzz_calls (statement) FROM '$file'");
is($node->safe_psql('postgres', 'SELECT count(*) FROM fuzz_calls'), $calls, "$calls generated calls loaded");

my ($stdout, $stderr);
# Nested statements are measured: after a successful ab_enter, every call of the run (a
# statement inside fuzz_run, failing ones in their subtransaction's abort) is recorded
# into the branch and the query store, which fills up (20 entries) and evicts.
my $ran = $node->psql('postgres', 'SET statement_timeout = 0; SET abtest.track_nested = on; SELECT fuzz_run()',
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

# The query store's rows seen by the checks during the run (clears take them all away at
# its commit), and what eviction took.
diag('figures: query store: ' . $node->safe_psql('postgres', q{
	SELECT format('%s rows of ab_query_metrics and %s query comparisons checked; %s entries evicted in %s batches, %s statements not counted',
	              (SELECT sum(query_rows) FROM fuzz_checks), (SELECT sum(query_comparisons) FROM fuzz_checks),
	              evicted, evictions, not_counted)
	  FROM ab_query_metrics_stats()}));
my $outcomes = $node->safe_psql('postgres', q{
	SELECT string_agg(sqlstate || ' ' || n, ', ' ORDER BY n DESC) FROM (
	  SELECT sqlstate, count(*) AS n FROM fuzz_calls GROUP BY sqlstate) s});
# On stderr, so that the test command's output shows the figures the README quotes.
diag("figures: $calls calls fuzzed, outcomes by SQLSTATE: $outcomes");
note('calls per function: ' . join(', ', map { "$_ $per_function{$_}" } sort keys %per_function));
ok($node->safe_psql('postgres', q{SELECT count(DISTINCT sqlstate) FROM fuzz_calls}) > 5,
	"calls fuzzed: $calls; outcomes: $outcomes");

# Time per call: bounded, however large the input. The slowest calls, and the slowest
# call that passed 100,000 elements, are shown with the figures.
my $bound_ms = 60_000;
is($node->safe_psql('postgres', "SELECT count(*) FROM fuzz_calls WHERE ms IS NULL OR ms > $bound_ms"), '0',
	"every call took less than $bound_ms ms");
my $slowest = $node->safe_psql('postgres', q{
	SELECT string_agg(format('%s ms %s: %s', round(ms::numeric, 1), sqlstate, left(statement, 110)), E'\n#   '
	                  ORDER BY ms DESC)
	  FROM (SELECT * FROM fuzz_calls ORDER BY ms DESC LIMIT 3) s});
diag("figures: slowest calls:\n#   $slowest");
my $largest = $node->safe_psql('postgres', q{
	SELECT format('%s calls with 100,000 elements, the slowest %s ms (%s: %s)', count(*) OVER (),
	              round(ms::numeric, 1), sqlstate, left(statement, 90))
	  FROM fuzz_calls WHERE statement LIKE '%generate_series(1, 100000)%' ORDER BY ms DESC LIMIT 1});
diag("figures: $largest");
diag('figures: mean ' . $node->safe_psql('postgres', 'SELECT round(avg(ms)::numeric, 2) FROM fuzz_calls')
	  . ' ms per call');

# A call with 100,000 groups and 100,000 attribute keys gets to the end of routing: the
# experiment looks at both (excluded groups, the attribute strategy).
$node->safe_psql('postgres', q{
	SELECT ab_create_experiment('fz_wide', ARRAY['control', 'treatment']);
	SELECT ab_configure('fz_wide', sticky => false, excluded_groups => ARRAY['staff']);
	SELECT ab_set_assignment('fz_wide', 'attribute', '{"name": "k99999", "mapping": {"99999": "treatment"}}');
	SELECT ab_start('fz_wide');
});
my $wide = $node->safe_psql('postgres', q{
	CREATE TEMP TABLE wide AS
	  SELECT ARRAY(SELECT 'g' || g FROM generate_series(1, 100000) g) AS groups,
	         (SELECT jsonb_object_agg('k' || g, g) FROM generate_series(1, 100000) g) AS attributes;
	SELECT clock_timestamp() AS t0 \gset
	SELECT ab_route_user('fz_wide', 'u1', groups, attributes) FROM wide;
	SELECT round(extract(epoch FROM clock_timestamp() - :'t0') * 1000) FROM wide;
});
my ($wide_branch, $wide_ms) = split /\n/, $wide;
is($wide_branch, 'treatment', 'a call with 100,000 groups and 100,000 attribute keys routes');
cmp_ok($wide_ms, '<', $bound_ms, "... in bounded time: $wide_ms ms");
diag("figures: a call with 100,000 groups and 100,000 attribute keys: $wide_ms ms");

# No counter or statistic is NaN or infinite: checked every 250 calls during the run
# (the garbage deletes and clears experiments often) and once more at its end.
$node->safe_psql('postgres', "SELECT fuzz_check($calls + 1)");
my $checked = $node->safe_psql('postgres', q{
	SELECT format('%s checks of %s values (%s comparisons, %s of events, %s report lines)', count(*), sum(n_values),
	              sum(comparisons), sum(event_comparisons), sum(report_lines))
	  FROM fuzz_checks});
is($node->safe_psql('postgres', 'SELECT count(*) FROM fuzz_findings'), '0', "no NaN or infinity among $checked")
  or diag($node->safe_psql('postgres',
	q{SELECT string_agg(format('after call %s: %s.%s = %s', after_call, source, key, left(value, 200)), E'\n')
	    FROM (SELECT DISTINCT ON (split_part(source, '(', 1), key) * FROM fuzz_findings
	           ORDER BY split_part(source, '(', 1), key, after_call LIMIT 20) f}));
diag("figures: checked for NaN and infinity: $checked");
cmp_ok($node->safe_psql('postgres', 'SELECT sum(comparisons) FROM fuzz_checks'), '>', 0, 'branches were compared');
cmp_ok($node->safe_psql('postgres', 'SELECT sum(event_comparisons) FROM fuzz_checks'), '>', 0, 'events were compared');

$node->stop;
done_testing();
