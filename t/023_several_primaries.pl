# More than one primary: experiments defined once, on a "control" primary, reach a
# second primary through PostgreSQL's logical replication (a publication of the catalog
# tables, a subscription with copy_data), and both route every user identically. The
# subscriber applies changes with session_replication_role = replica and fires only row
# triggers: its routing caches must still hear of every change, in sessions that were
# already routing. Each primary keeps its own assignment log and counters.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use FindBin;
use lib $FindBin::RealBin;
use AbtestNode;

my $users = 10_000;
my $deadline_s = 10;    # how long a poll waits; the check is that it took under a second
my $within_s = 1;

my $control = AbtestNode::new_node('control', allows_streaming => 'logical');
my $second = AbtestNode::new_node('second', conf => "wal_retrieve_retry_interval = 200ms\n");

# The application's table of facts exists on every primary, before a metric names it.
for my $node ($control, $second)
{
	$node->safe_psql('postgres', q{
		CREATE TABLE orders (user_id text, created_at timestamptz, amount numeric);
		-- Every user's branch in the experiments, as ab_explain says without remembering
		-- anything, as an md5 (or the SQLSTATE of the refusal), and when the statement started.
		CREATE FUNCTION fingerprint(experiments text[], users int) RETURNS text LANGUAGE plpgsql AS $$
		DECLARE
		    result text;
		BEGIN
		    SELECT md5(string_agg(x.branch, ',' ORDER BY e.n, i)) INTO result
		      FROM unnest(experiments) WITH ORDINALITY e(name, n), generate_series(1, users) i,
		           LATERAL ab_explain(e.name, 'u' || i) x;
		    RETURN result || ' ' || extract(epoch FROM statement_timestamp());
		EXCEPTION WHEN OTHERS THEN
		    RETURN SQLSTATE || ' ' || extract(epoch FROM statement_timestamp());
		END
		$$;
	});
}

# Defined before the subscription exists: the initial copy brings it.
$control->safe_psql('postgres', q{
	SELECT ab_create_experiment('checkout', ARRAY['control', 'treatment'], ARRAY[90, 10]);
	SELECT ab_create_experiment('banner', ARRAY['blue', 'green', 'red']);
	SELECT ab_configure('banner', sticky => false);
	SELECT ab_force('checkout', 'u1', 'treatment');
	SELECT ab_start('checkout');
	SELECT ab_start('banner');
	SELECT ab_define_metric('revenue', 'orders', 'user_id', 'created_at', 'amount');
	SELECT ab_attach_metric('checkout', 'revenue');
	CREATE PUBLICATION abtest_catalog FOR TABLE abtest.experiments, abtest.branches, abtest.forced_users,
	    abtest.metrics, abtest.experiment_metrics;
});
my $connstr = $control->connstr . ' dbname=postgres';
$second->safe_psql('postgres',
	"CREATE SUBSCRIPTION abtest_catalog CONNECTION '$connstr' PUBLICATION abtest_catalog WITH (copy_data = true)");
$second->wait_for_subscription_sync($control, 'abtest_catalog');

is($control->safe_psql('postgres',
		q{SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_publication_tables WHERE pubname = 'abtest_catalog'}),
	'branches,experiment_metrics,experiments,forced_users,metrics',
	'the publication holds the definitions, not the log or the counters');
is($second->safe_psql('postgres', q{
	SELECT string_agg(name || ':' || state || ':' || array_to_string(allocation, '/'), ' ' ORDER BY name)
	  FROM abtest.experiment_overview}),
	'banner:active:33.34/33.33/33.33 checkout:active:90.00/10.00', 'copy_data brought the experiments');
is($second->safe_psql('postgres', q{SELECT source::text || ':' || source_exists::text FROM abtest.metric_overview}),
	'orders:true', 'and the metric, its source resolved by name on this server');

# Long-lived sessions on both primaries: the subscriber's must hear of each change.
my %session = (control => $control->background_psql('postgres'), second => $second->background_psql('postgres'));

# Routing for real: sticky users of checkout are remembered by each primary on its own.
sub routed
{
	my ($name, $batch) = @_;
	return $session{$name}->query_safe(qq{
		SELECT md5(string_agg(ab_route_user('checkout', u) || '/' || ab_route_user('banner', u), ',' ORDER BY u))
		  FROM (SELECT 'u' || i AS u FROM generate_series(1, $users) i
		        UNION ALL SELECT '$batch-' || i FROM generate_series(1, 1000) i) s});
}

is(routed('second', 'start'), routed('control', 'start'), "$users users route identically before any change");

my (@delays, @poll_seconds);
# Runs `change` on the control primary, then polls the subscriber's session until its
# routing of every user of the experiments equals the control's; the delay is from the
# commit to the start of the first poll that saw it.
sub propagates
{
	my ($label, $change, @experiments) = @_;
	my $both = !@experiments;
	@experiments = ('checkout', 'banner') if $both;
	my $probe = "SELECT fingerprint('{" . join(',', @experiments) . "}', $users)";
	# The control's own routing is taken inside the transaction (it sees its own change),
	# so that the first poll starts right after the commit.
	my @output = split /\n/, $session{control}->query_safe(qq{
		BEGIN;
		$change;
		$probe;
		COMMIT;
		SELECT extract(epoch FROM clock_timestamp())});
	my ($expected) = split / /, $output[-2];
	my $committed = $output[-1];
	my ($delay, $polls) = (undef, 0);
	my $until = time + $deadline_s;
	while (time < $until)
	{
		my $asked = time;
		my ($fingerprint, $at) = split / /, $session{second}->query_safe($probe);
		push @poll_seconds, time - $asked;
		$polls++;
		if ($fingerprint eq $expected)
		{
			$delay = $at - $committed;
			last;
		}
		usleep(5_000);
	}
	ok(defined $delay, "$label: the subscriber's session routes every user as the control");
	return unless defined $delay;
	push @delays, $delay;
	cmp_ok($delay, '<', $within_s, sprintf('%s: within %.3f s of the commit (%d polls)', $label, $delay, $polls));
	return unless $both;
	is(routed('second', $label), routed('control', $label), "$label: $users users and 1,000 new ones route identically");
}

propagates('ramp', q{SELECT ab_set_allocation('checkout', '{"control": 50, "treatment": 50}');
	SELECT ab_set_allocation('banner', '{"blue": 20, "green": 30, "red": 50}')});
propagates('forced users', q{SELECT ab_force('checkout', 'u' || i, 'control') FROM generate_series(2, 40) i;
	SELECT ab_unforce('checkout', 'u1')});
propagates('hand edit of a branch', q{UPDATE abtest.branches SET allocation = CASE position WHEN 0 THEN 0 ELSE 50 END
	WHERE experiment_id = (SELECT id FROM abtest.experiments WHERE name = 'banner')});
propagates('pause', q{SELECT ab_pause('checkout'); SELECT ab_pause('banner')});
propagates('resume', q{SELECT ab_start('checkout'); SELECT ab_start('banner')});
propagates('complete', q{SELECT ab_complete('checkout', winner => 'treatment'); SELECT ab_complete('banner')});

# A branch's settings (ab_enter applies them) are part of the replicated catalog too: the
# subscriber's session that already entered the branch enters it with the new ones.
my $enter = q{BEGIN; SELECT ab_enter('checkout', 'u500') IS NOT NULL; SELECT current_setting('work_mem'); COMMIT};
$session{second}->query_safe($enter);
$session{control}->query_safe(q{SELECT ab_set_branch_settings('checkout', 'treatment', '{"work_mem": "7MB"}')});
my $entered = '';
for (my $until = time + $deadline_s; time < $until; usleep(5_000))
{
	$entered = (split /\n/, $session{second}->query_safe($enter))[-1];
	last if $entered eq '7MB';
}
is($entered, '7MB', 'a change of branch settings reaches the subscriber\'s ab_enter');

# An experiment created after the subscription, and one deleted.
propagates('a new experiment', q{SELECT ab_create_experiment('late', ARRAY['a', 'b']); SELECT ab_start('late')},
	'late');
propagates('a deleted experiment', q{SELECT ab_delete_experiment('banner')}, 'banner');
like($session{second}->query_safe(q{SELECT fingerprint('{banner}', 1)}), qr/^42704 /,
	'the session that routed it no longer knows it');
# The pending purge of its log (catalog 1.6) is the control's own, not published: the
# delete a subscriber applies records none (README: clear its log there first).
$control->poll_query_until('postgres', q{SELECT NOT EXISTS (SELECT FROM abtest.deleted_experiments)})
  or die 'the control did not finish the purge of the deleted experiment';
is($second->safe_psql('postgres', q{SELECT count(*) FROM abtest.deleted_experiments}), '0',
	'the subscriber\'s applied delete records no purge');

# Each primary keeps its own assignment log and counters.
for my $node ($control, $second)
{
	$node->poll_query_until('postgres', q{
		SELECT count(*) = (SELECT sum(assigned_users) FROM ab_branch_metrics('checkout'))
		  FROM abtest.assignments a JOIN abtest.experiments e ON e.id = a.experiment_id AND e.name = 'checkout'})
	  or die 'the flush worker did not write the log';
}
my $log = q{SELECT count(*) FROM abtest.assignments a JOIN abtest.experiments e ON e.id = a.experiment_id
	WHERE e.name = 'checkout'};
my $logged = $control->safe_psql('postgres', $log);
cmp_ok($logged, '>=', $users, "the control's log holds its own users ($logged)");
is($second->safe_psql('postgres', $log), $logged, 'the second primary logged the same users itself');
is($second->safe_psql('postgres', q{SELECT sum(assigned_users) FROM ab_branch_metrics('checkout')}),
	$control->safe_psql('postgres', q{SELECT sum(assigned_users) FROM ab_branch_metrics('checkout')}),
	'and counted them in its own shared memory');

# The metric, replicated with the definitions, analyses each primary's own log.
for my $node ($control, $second)
{
	$node->safe_psql('postgres', q{INSERT INTO orders SELECT 'u' || i, now(), i % 7 FROM generate_series(1, 5000) i});
}
my $analysis = q{SELECT string_agg(branch || ':' || users || ':' || round(mean::numeric, 9), ' ' ORDER BY branch)
	FROM ab_analyze('checkout', 'revenue')};
is($second->safe_psql('postgres', $analysis), $control->safe_psql('postgres', $analysis),
	'ab_analyze gives the same on both primaries (same users, same facts)');

# The apply worker ran abtest's trigger function: no crash, no error.
is($second->safe_psql('postgres', q{SELECT apply_error_count + sync_error_count FROM pg_stat_subscription_stats}),
	'0', 'the subscription never failed');
unlike(slurp_file($second->logfile), qr/PANIC|TRAP:|terminated by signal|was terminated|abtest.*ERROR/,
	'the subscriber never crashed');

# Auto-completion is the control primary's: a subscriber does not complete an experiment
# on its own share of the counters (its copy of the catalog would part from the control's).
$control->safe_psql('postgres', q{
	SELECT ab_create_experiment('auto', ARRAY['control', 'treatment']);
	SELECT ab_configure('auto', auto_complete => true, sticky => false, min_sample_size => 100);
	SELECT ab_start('auto');
});
$second->poll_query_until('postgres', q{SELECT state = 'active' FROM abtest.experiments WHERE name = 'auto'})
  or die 'the experiment did not arrive';
my $decisive = q{
	SELECT count(ab_record_query('auto', 'control', 10, i % 10 <> 0)) FROM generate_series(1, 2000) i;
	SELECT count(ab_record_query('auto', 'treatment', 10, i % 10 = 0)) FROM generate_series(1, 2000) i;
};
my $persisted = q{SELECT coalesce(sum(query_count), 0) = 4000 FROM abtest.branch_metrics m
	JOIN abtest.experiments e ON e.id = m.experiment_id WHERE e.name = 'auto'};
$second->safe_psql('postgres', $decisive);
# The flush worker looks right after writing the counters: give it two more intervals.
$second->poll_query_until('postgres', $persisted) or die 'the counters were not flushed';
sleep 2;
is($second->safe_psql('postgres', q{SELECT state FROM abtest.experiments WHERE name = 'auto'}), 'active',
	'a subscriber does not auto-complete an experiment, however clear its own counters');
$control->safe_psql('postgres', $decisive);
ok($control->poll_query_until('postgres', q{SELECT state = 'completed' FROM abtest.experiments WHERE name = 'auto'}),
	'the control primary does, on the same counters');
ok($second->poll_query_until('postgres',
		q{SELECT state || '/' || winner = 'completed/control' FROM abtest.experiments WHERE name = 'auto'}),
	'and its decision reaches the subscriber');

my $offset = -s $second->logfile;
# A metric over a table that a primary lacks stops the apply worker there (its source is
# a regclass, sent by name) until the table is created; nothing is lost.
$control->safe_psql('postgres', q{
	CREATE TABLE refunds (user_id text, at timestamptz, amount numeric);
	SELECT ab_define_metric('refunds', 'refunds', 'user_id', 'at', 'amount');
	SELECT ab_pause('late');
});
$second->wait_for_log(qr/relation "(public\.)?refunds" does not exist/, $offset);
is($second->safe_psql('postgres', q{SELECT state FROM abtest.experiments WHERE name = 'late'}), 'active',
	'a metric over a missing table holds up the catalog on that primary');
$second->safe_psql('postgres', q{CREATE TABLE refunds (user_id text, at timestamptz, amount numeric)});
ok($second->poll_query_until('postgres', q{SELECT state = 'paused' FROM abtest.experiments WHERE name = 'late'}),
	'creating the table there lets it continue');
is($session{second}->query_safe(q{SELECT ab_route_user('late', 'u7')}), 'a', 'and routing follows');

# Each delay is an upper bound: the start of the first poll that saw the change; a poll
# that came too early costs one poll's time more.
my @sorted = sort { $a <=> $b } @delays;
my @polls = sort { $a <=> $b } @poll_seconds;
diag(sprintf('figures: from the commit on the control primary to the subscriber\'s session routing %d users the '
	  . 'new way: median %.3f s, max %.3f s over %d changes (upper bounds; one poll takes %.3f s)',
	$users, $sorted[ int($#sorted / 2) ], $sorted[-1], scalar @sorted, $polls[ int($#polls / 2) ]))
  if @sorted;

$_->quit for values %session;
$second->stop;
$control->stop;
done_testing();
