# The example application (examples/python: Flask, psycopg 3 with a connection pool)
# under load, through PgBouncer in transaction pooling mode, driven by
# examples/python/load.py over HTTP:
#   A. prepare_threshold=None (the documented setting): 10,000 requests from 8 clients;
#      every visitor sees one branch, abtest counted exactly what the driver saw
#      (exposures, assigned users, checkouts, purchases, the orders), the split passes
#      ab_srm, and no server connection carries a setting or a prepared statement from
#      another client's transaction.
#   B. psycopg's default prepare_threshold (5) through PgBouncer 1.18: the failure mode
#      the README documents (prepared statements of one client missing, or another
#      client's, on the server connection), and the application still answers.
#   C. PgBouncer and then the database restarted during traffic: requests meanwhile show
#      the control or get a 503 and are counted, requests succeed again afterwards, and
#      no sticky visitor changed branch.
#   D. The experiment archived, then deleted: pages show the control (55000, 42704) and
#      orders are still taken.
# About a minute on a loaded 2-core machine; ABTEST_APP_REQUESTS changes A's 10,000.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AbtestNode;
use HTTP::Tiny;
use JSON::PP;
use IPC::Run;
use POSIX ();
use Time::HiRes qw(time sleep);

my $python = '/usr/bin/python3';
my ($pgbouncer) = grep { -x $_ } map { "$_/pgbouncer" } (split(/:/, $ENV{PATH}), '/usr/sbin');
plan skip_all => 'pgbouncer is not installed (Debian: apt-get install pgbouncer)' unless $pgbouncer;
plan skip_all => 'psycopg 3, psycopg_pool and Flask are not installed for /usr/bin/python3'
  . ' (Debian: apt-get install python3-psycopg python3-psycopg-pool python3-flask)'
  unless -x $python && system($python, '-c', 'import psycopg, psycopg_pool, flask') == 0;

my $srcdir = $ENV{ABTEST_SRCDIR} // "$FindBin::RealBin/..";
my $example = "$srcdir/examples/python";
my $logdir = $PostgreSQL::Test::Utils::log_path;
my $tmp = PostgreSQL::Test::Utils::tempdir('python_app');
my $test_start = time;

# Every process this test starts leads its own process group; END stops them all.
my %groups;

# spawn({ out => FILE, err => FILE (default: out), env => {...} }, COMMAND...)
sub spawn
{
	my ($opt, @cmd) = @_;
	my $pid = fork() // die "fork: $!";
	if ($pid == 0)
	{
		POSIX::setsid();
		@ENV{ keys %{ $opt->{env} // {} } } = values %{ $opt->{env} // {} };
		open(STDIN, '<', '/dev/null');
		open(STDOUT, '>>', $opt->{out}) or POSIX::_exit(126);
		open(STDERR, '>>', $opt->{err} // $opt->{out}) or POSIX::_exit(126);
		exec(@cmd) or POSIX::_exit(127);
	}
	$groups{$pid} = 1;
	return $pid;
}

# Signals a process group and waits for its leader; KILL after $timeout seconds.
sub stop_group
{
	my ($pid, $signal, $timeout) = @_;
	return unless $groups{$pid};
	kill $signal // 'TERM', -$pid;
	my $deadline = time + ($timeout // 10);
	while (waitpid($pid, POSIX::WNOHANG()) == 0)
	{
		if (time > $deadline)
		{
			kill 'KILL', -$pid;
			waitpid($pid, 0);
			last;
		}
		sleep 0.05;
	}
	kill 'KILL', -$pid;    # whatever of the group is left
	delete $groups{$pid};
	return $?;
}

END
{
	local $?;
	stop_group($_, 'TERM', 5) for keys %groups;
}

sub slurp { PostgreSQL::Test::Utils::slurp_file($_[0]) }

# --- The database: abtest, the example's schema ------------------------------------
my $node = AbtestNode::new_node('python_app', conf => "abtest.flush_interval = '200ms'\n");
my $user = $node->safe_psql('postgres', 'SELECT current_user');
$node->safe_psql('postgres', 'CREATE DATABASE shop');
$node->safe_psql('shop', slurp("$example/schema.sql"));

# --- PgBouncer: transaction pooling on a free loopback port ---------------------------
my $bouncer_port = PostgreSQL::Test::Cluster::get_free_port();
my $pool_size = 4;    # fewer server connections than the application's 8: they are shared
my ($pg_host, $pg_port) = ($node->host, $node->port);
open(my $ini, '>', "$tmp/pgbouncer.ini") or die;
print $ini <<"EOF";
[databases]
shop = host=$pg_host port=$pg_port dbname=shop
; one server connection: what one client leaves on it, the next one gets
shop_one = host=$pg_host port=$pg_port dbname=shop pool_size=1

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
unix_socket_dir = $tmp
auth_type = trust
auth_file = $tmp/userlist.txt
admin_users = $user
pool_mode = transaction
default_pool_size = $pool_size
max_client_conn = 200
server_login_retry = 1
query_wait_timeout = 5
EOF
close($ini);
open(my $users, '>', "$tmp/userlist.txt") or die;
print $users qq{"$user" ""\n};
close($users);

my $bouncer_log = "$logdir/022_pgbouncer.log";
my $bouncer;

sub start_bouncer
{
	$bouncer = spawn({ out => $bouncer_log }, $pgbouncer, "$tmp/pgbouncer.ini");
	for (1 .. 100)
	{
		return if (bouncer_psql('shop', 'SELECT 1'))[0] eq '1';
		sleep 0.1;
	}
	die "PgBouncer did not start: " . slurp($bouncer_log);
}
start_bouncer();

sub bouncer_psql
{
	my ($db, $sql) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'psql', '-X', '-A', '-t', '-h', '127.0.0.1', '-p', $bouncer_port, '-U', $user,
		'-d', $db, '-c', $sql ], '>', \$out, '2>', \$err);
	chomp $out;
	return ($out, $err);
}

# What the application must avoid, shown: a session-level SET and a PREPARE of one
# client stay on the server connection, and the next client on it gets them.
bouncer_psql('shop_one', "SET app.visitor = 'someone else'");
is((bouncer_psql('shop_one', "SELECT current_setting('app.visitor', true)"))[0], 'someone else',
	'through PgBouncer, a session-level SET leaks into the next client\'s session');
bouncer_psql('shop_one', 'PREPARE _pg3_0 AS SELECT 1');
is((bouncer_psql('shop_one', 'EXECUTE _pg3_0'))[0], '1',
	'and so does a prepared statement, under a name psycopg also uses');
bouncer_psql('shop_one', 'DISCARD ALL');

# --- The application ---------------------------------------------------------------
my $http = HTTP::Tiny->new(timeout => 30);
my ($app, $app_port, $app_log);

sub start_app
{
	my ($name, %env) = @_;
	$app_port = PostgreSQL::Test::Cluster::get_free_port();
	$app_log = "$logdir/022_app_$name.log";
	$app = spawn({ out => $app_log, env => {
			ABTEST_DSN => "host=127.0.0.1 port=$bouncer_port dbname=shop user=$user connect_timeout=3",
			ABTEST_PORT => $app_port,
			ABTEST_POOL_MIN => 2,
			ABTEST_POOL_MAX => 8,
			ABTEST_DEBUG => 1,
			%env } },
		$python, "$example/app.py");
	wait_healthy(30) or die "the application did not start: " . slurp($app_log);
}

sub stop_app { stop_group($app, 'TERM', 10) if $app; undef $app; }

sub url { "http://127.0.0.1:$app_port$_[0]" }

sub wait_healthy
{
	my ($seconds) = @_;
	my $deadline = time + $seconds;
	while (time < $deadline)
	{
		return 1 if $http->get(url('/healthz'))->{status} == 200;
		sleep 0.1;
	}
	return 0;
}

# Runs the driver to its end, or starts it in the background (returns its pid and the
# file its summary goes to); its summary is the JSON it prints.
my $drives = 0;

sub drive
{
	my (%opt) = @_;
	my $background = delete $opt{background};
	my $out = "$tmp/drive" . ++$drives . '.json';
	my @args = ('--url', url(''), '--branches-out', "$out.branches", '--seed', $drives,
		map { ("--$_", $opt{$_}) } sort keys %opt);
	my $pid = spawn({ out => $out, err => "$out.err" }, $python, "$example/load.py", @args);
	return ($pid, $out) if $background;
	return finish_drive($pid, $out);
}

sub finish_drive
{
	my ($pid, $out) = @_;
	waitpid($pid, 0);
	my $rc = $?;
	delete $groups{$pid};
	die "load.py failed ($rc): " . slurp("$out.err") if $rc != 0;
	diag(slurp("$out.err")) if -s "$out.err";
	my $summary = decode_json(slurp($out));
	$summary->{branch_of} = decode_json(slurp("$out.branches"));
	return $summary;
}

sub summary_note
{
	my ($what, $s) = @_;
	my %brief = map { $_ => $s->{$_} } grep { $_ ne 'branch_of' && $_ ne 'timeline' } keys %$s;
	note("$what: " . JSON::PP->new->canonical->encode(\%brief));
	note("$what, per second [answered by abtest, shown the control, failed]: "
		  . encode_json($s->{timeline})) if $s->{timeline};
}

# Per branch, as a hash, from a query returning (branch, value) rows.
sub per_branch
{
	my ($sql) = @_;
	my %h;
	for (split /\n/, $node->safe_psql('shop', $sql))
	{
		my ($branch, $value) = split /\|/;
		$h{$branch} = $value;
	}
	return zero_missing(\%h);
}

# The example's experiments have these branches; a branch without data counts 0.
my @branches = ('control', 'one_page');

sub zero_missing
{
	my ($h) = @_;
	return { map { $_ => $h->{$_} // 0 } @branches };
}

sub sum_values
{
	my ($h) = @_;
	my $sum = 0;
	$sum += $_ for values %$h;
	return $sum;
}

# The branch the assignment log holds for every visitor of an experiment.
sub logged_branches
{
	my ($experiment) = @_;
	my %log = map { split /\|/ } split /\n/, $node->safe_psql('shop', qq{
		SELECT a.user_id, a.branch FROM abtest.assignments a
		  JOIN abtest.experiments e ON e.id = a.experiment_id WHERE e.name = '$experiment'});
	return \%log;
}

sub wait_for_log_of
{
	my ($experiment, $count) = @_;
	$node->poll_query_until('shop', qq{
		SELECT count(*) >= $count FROM abtest.assignments a
		  JOIN abtest.experiments e ON e.id = a.experiment_id WHERE e.name = '$experiment'})
	  or die "the flush worker did not write $count assignments of $experiment";
}

# Visitors who got two different branches over several runs.
sub branch_changes
{
	my (@runs) = @_;
	my %seen;
	for my $run (@runs)
	{
		while (my ($visitor, $list) = each %{ $run->{branch_of} })
		{
			$seen{$visitor}{$_} = 1 for @$list;
		}
	}
	return (scalar(grep { keys %{ $seen{$_} } > 1 } keys %seen), \%seen);
}

# --- A. prepare_threshold=None: the documented setting, 10,000 requests ---------------
my $requests = $ENV{ABTEST_APP_REQUESTS} // 10000;
start_app('no_prepare', ABTEST_PREPARE_THRESHOLD => 'none');
my $run_a = drive(requests => $requests, clients => 8, visitors => 2000, prefix => 'v', 'debug-share' => 0.03);
summary_note('A (prepare_threshold=None)', $run_a);

is($run_a->{answered}, $requests, "A: all $requests requests were answered");
is_deeply($run_a->{errors}, {}, 'A: no request failed to connect or timed out');
is_deeply([ sort keys %{ $run_a->{status} } ], [ '200', '402' ], 'A: only pages and declined payments (200, 402)');
is_deeply($run_a->{degraded}, {}, 'A: no page fell back to the control');
is($run_a->{conflicts}, 0, "A: each of the $run_a->{visitors} visitors saw one branch on every request");

my $metrics = $node->safe_psql('shop', q{
	SELECT branch, exposures, assigned_users, query_count, success_count FROM ab_branch_metrics('checkout_v2')});
my (%exposures, %assigned, %attempts, %successes);
for (split /\n/, $metrics)
{
	my ($branch, @values) = split /\|/;
	($exposures{$branch}, $assigned{$branch}, $attempts{$branch}, $successes{$branch}) = @values;
}
is_deeply(\%exposures, zero_missing($run_a->{exposures}),
	'A: exposures per branch equal the pages and checkouts abtest routed');
is_deeply(\%assigned, zero_missing($run_a->{visitors_per_branch}),
	'A: assigned users per branch equal the distinct visitors the driver saw in it');
is_deeply(\%attempts, zero_missing($run_a->{attempts}), 'A: checkout attempts (ab_record_query) per branch');
is_deeply(\%successes, zero_missing($run_a->{paid}), 'A: successful payments per branch');
is_deeply(per_branch(q{SELECT branch, count FROM ab_event_metrics('checkout_v2') WHERE event_name = 'purchase'}),
	zero_missing($run_a->{paid}), 'A: purchase events per branch (ab_record_event)');
is_deeply(per_branch(q{SELECT branch, sum FROM ab_event_metrics('checkout_v2') WHERE event_name = 'purchase'}),
	zero_missing($run_a->{amount}), 'A: purchase amounts per branch');

wait_for_log_of('checkout_v2', $run_a->{visitors});
my $log = logged_branches('checkout_v2');
is(scalar(grep { ($log->{$_} // '') ne $run_a->{branch_of}{$_}[0] } keys %{ $run_a->{branch_of} }), 0,
	'A: the assignment log holds the branch each visitor saw');
is(scalar(keys %$log), $run_a->{visitors}, 'A: and no visitor more');
is_deeply(per_branch(q{
	SELECT a.branch, count(*) FROM orders o
	  JOIN abtest.assignments a ON a.user_id = o.visitor
	  JOIN abtest.experiments e ON e.id = a.experiment_id AND e.name = 'checkout_v2'
	 GROUP BY a.branch}), zero_missing($run_a->{orders}), 'A: orders in the table, per branch');
is_deeply(per_branch(q{
	SELECT a.branch, sum(o.amount)::bigint FROM orders o
	  JOIN abtest.assignments a ON a.user_id = o.visitor
	  JOIN abtest.experiments e ON e.id = a.experiment_id AND e.name = 'checkout_v2'
	 GROUP BY a.branch}), zero_missing($run_a->{order_amount}), 'A: order amounts per branch');

my $srm = $node->safe_psql('shop', q{SELECT p_value, mismatch FROM ab_srm('checkout_v2')});
note("A: ab_srm p_value|mismatch = $srm");
like($srm, qr/\|f$/, 'A: the split passes the sample-ratio check');

cmp_ok($run_a->{debug}{requests} // 0, '>=', $requests / 100,
	"A: $run_a->{debug}{requests} requests looked at their server connection");
is($run_a->{debug}{inherited_visitor} // 0, 0,
	'A: none found the transaction-local app.visitor of an earlier transaction');
is($run_a->{debug}{prepared_seen} // 0, 0, 'A: none found a prepared statement');
cmp_ok($run_a->{debug_server_connections}, '<=', $pool_size,
	"A: at most $pool_size server connections served the application's connections");
cmp_ok($run_a->{debug_shared_server_connections}, '>=', 1,
	'A: and a server connection served several client connections (transaction pooling at work)');

my $admin = $http->get(url('/admin'));
is($admin->{status}, 200, 'A: the admin page answers');
like($admin->{content}, qr/Experiment &#34;checkout_v2&#34;: active/, 'A: with ab_report');
like($admin->{content}, qr/^one_page\s+50\.00%/m, 'A: the report has a row per branch');
like($admin->{content}, qr/Metric revenue: goal/, 'A: and the per-visitor revenue of the orders');
like($admin->{content}, qr/id="srm">Sample ratio/, 'A: and the sample-ratio check');
unlike(slurp($app_log), qr/Traceback|ERROR/, 'A: the application logged no error');
stop_app();

# --- B. psycopg's default prepare_threshold through PgBouncer 1.18 --------------------
# First step by step and deterministic, on the one server connection of shop_one
# (test/app/prepared_swap.py): three clients, psycopg's default threshold, then None.
sub prepared_swap
{
	my @args = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $python, "$srcdir/test/app/prepared_swap.py",
			"host=127.0.0.1 port=$bouncer_port dbname=shop_one user=$user", @args ], '>', \$out, '2>', \$err)
	  or die "prepared_swap.py failed: $err";
	note("prepared_swap.py @args: $out");
	return decode_json($out);
}
my $swap = prepared_swap();
is_deeply($swap->{'2_errors'}, ['42P05'],
	'B: a client preparing its query finds the name taken by another client\'s statement (42P05)');
is_deeply($swap->{'3_prepared'}, [],
	'B: psycopg\'s DEALLOCATE ALL after a rollback removes the other clients\' prepared statements');
is($swap->{'5_got'}, 8, 'B: a client executes another client\'s statement: 8 instead of 70, and no error');
$swap = prepared_swap('none');
is(join(' ', (map { scalar @{ $swap->{$_} } } qw(1_prepared 2_prepared 4_prepared 2_errors)), $swap->{'5_got'}),
	'0 0 0 0 70', 'B: with prepare_threshold=None nothing is prepared, nothing fails, each client gets its answer');

$node->safe_psql('shop', q{
	SELECT ab_create_experiment('checkout_prepared', ARRAY['control', 'one_page']);
	SELECT ab_start('checkout_prepared');
});
start_app('prepare', ABTEST_PREPARE_THRESHOLD => 5, ABTEST_EXPERIMENT => 'checkout_prepared');
my $b_requests = 2000;
my $run_b = drive(requests => $b_requests, clients => 8, visitors => 2000, prefix => 'p', 'debug-share' => 0.03);
summary_note('B (prepare_threshold=5)', $run_b);
my $b_failed = ($run_b->{degraded}{26000} // 0) + ($run_b->{degraded}{'42P05'} // 0);
cmp_ok($b_failed, '>', 0,
	"B: prepared statements fail through PgBouncer: $b_failed pages fell back to the control with 26000 "
	  . '(another server connection lacks the statement) or 42P05 (another client\'s statement has its name)');
cmp_ok($run_b->{debug}{prepared_seen} // 0, '>', 0,
	'B: server connections carry psycopg\'s prepared statements from client to client');
is($run_b->{answered}, $b_requests, 'B: the application still answered every request');
is($run_b->{degraded_not_control}, 0, 'B: each page that fell back showed the control');
note(sprintf('B: %d of %d requests fell back to the control (%s), %d checkouts failed with 503',
	sum_values($run_b->{degraded}), $b_requests, encode_json($run_b->{degraded}), $run_b->{status}{503} // 0));
# A statement that failed counted nothing: abtest still has exactly what the driver was told.
is_deeply(per_branch(q{SELECT branch, exposures FROM ab_branch_metrics('checkout_prepared')}),
	zero_missing($run_b->{exposures}), 'B: exposures equal the pages abtest answered');
stop_app();

# --- C. PgBouncer, then the database, restarted during traffic ------------------------
start_app('restart', ABTEST_PREPARE_THRESHOLD => 'none');
my $duration = 14;
my $c_start = time;
my ($driver, $c_out) = drive(background => 1, duration => $duration, clients => 8, visitors => 2500, prefix => 'v');
sleep 3;
my $t_bouncer = time - $c_start;
stop_group($bouncer, 'INT', 20);    # safe shutdown: running transactions finish
start_bouncer();
my $t_bouncer_back = time - $c_start;
sleep(($t_bouncer_back < 6) ? 6 - $t_bouncer_back : 0.5);
my $t_db = time - $c_start;
$node->restart;
my $t_db_back = time - $c_start;
my $run_c = finish_drive($driver, $c_out);
note(sprintf('C: PgBouncer restarted at %.1f-%.1f s, the database at %.1f-%.1f s of the run',
	$t_bouncer, $t_bouncer_back, $t_db, $t_db_back));
summary_note('C (restarts)', $run_c);

is_deeply($run_c->{errors}, {}, 'C: every request got an HTTP answer, during the restarts too');
is_deeply([ grep { !/^(200|402|503)$/ } keys %{ $run_c->{status} } ], [],
	'C: pages, declined payments or 503 for orders that could not be taken');
is($run_c->{degraded_not_control}, 0, 'C: each page that fell back showed the control');
my $c_trouble = sum_values($run_c->{degraded}) + ($run_c->{status}{503} // 0);
note("C: requests that fell back to the control or got a 503: $c_trouble; fallbacks by reason: "
	  . encode_json($run_c->{degraded}));
my ($recovered_at) = grep { $_ > $t_db_back && $run_c->{timeline}[$_][0] > 0 } 0 .. $#{ $run_c->{timeline} };
note(defined $recovered_at
	? sprintf('C: abtest answered again within %.1f s of the database being back', $recovered_at + 1 - $t_db_back)
	: 'C: abtest did not answer again before the run ended');

ok(wait_healthy(30), 'C: the application reaches the database again');
my $run_r = drive(requests => 1000, clients => 8, visitors => 2500, prefix => 'v');
summary_note('C (after the restarts)', $run_r);
is($run_r->{answered}, 1000, 'C: after the restarts every request is answered');
is_deeply($run_r->{degraded}, {}, 'C: by abtest, none falls back to the control');
is_deeply([ sort keys %{ $run_r->{status} } ], [ '200', '402' ], 'C: and none fails');

my ($changed, $seen) = branch_changes($run_a, $run_c, $run_r);
is($changed, 0, 'C: no visitor changed branch, from the first run through both restarts');
wait_for_log_of('checkout_v2', scalar(keys %$seen));
$log = logged_branches('checkout_v2');
is(scalar(grep { !$log->{$_} || !$seen->{$_}{ $log->{$_} } } keys %$seen), 0,
	'C: the assignment log holds the branch every visitor saw');

# The server may have counted a routing call whose answer was lost in a restart: the
# page then showed the control, or the application routed again on another connection.
# Between what the driver saw and that plus the fallbacks and the application's retries.
my $retried = decode_json($http->get(url('/healthz'))->{content})->{retried};
my $seen_exposures = sum_values($run_a->{exposures}) + sum_values($run_c->{exposures}) + sum_values($run_r->{exposures});
my $exposed = $node->safe_psql('shop', q{SELECT sum(exposures) FROM ab_branch_metrics('checkout_v2')});
ok($exposed >= $seen_exposures && $exposed <= $seen_exposures + $c_trouble + $retried,
	"C: exposures $exposed: the $seen_exposures the driver saw, at most $c_trouble + $retried (retried) more");
ok($node->poll_query_until('shop', q{
	SELECT (SELECT count(*) FROM abtest.assignments a JOIN abtest.experiments e ON e.id = a.experiment_id
	         WHERE e.name = 'checkout_v2')
	     = (SELECT sum(assigned_users) FROM ab_branch_metrics('checkout_v2'))}),
	'C: assigned users equal the visitors in the assignment log');
unlike(slurp($app_log), qr/Traceback/, 'C: the application raised nothing unhandled');

# --- D. The experiment archived, then deleted, while the application serves it -------
my %page = (headers => { Cookie => 'visitor=v00001' });
my %buy = (headers => { Cookie => 'visitor=v00001', 'Content-Type' => 'application/x-www-form-urlencoded' },
	content => 'amount=10.00&card=4242424242424242');
my $purchases = q{SELECT sum(count) FROM ab_event_metrics('checkout_v2') WHERE event_name = 'purchase'};
my $purchases_before = $node->safe_psql('shop', $purchases);
my $orders_before = $node->safe_psql('shop', 'SELECT count(*) FROM orders');
for my $step ([ 'archived', q{SELECT ab_archive('checkout_v2')}, '55000' ],
	[ 'deleted', q{SELECT ab_delete_experiment('checkout_v2')}, '42704' ])
{
	my ($what, $sql, $sqlstate) = @$step;
	$node->safe_psql('shop', $sql);
	my $got = $http->get(url('/checkout'), \%page);
	is(join(' ', $got->{status}, map { $got->{headers}{$_} // '-' } qw(x-abtest-branch x-abtest-degraded)),
		"200 control $sqlstate", "D: the experiment $what, the page shows the control ($sqlstate)");
	$got = $http->post(url('/checkout'), \%buy);
	is(join(' ', $got->{status}, $got->{headers}{'x-abtest-degraded'} // '-'), "200 $sqlstate",
		"D: the experiment $what, the order is still taken");
	is($node->safe_psql('shop', $purchases), $purchases_before, 'D: and not recorded in the experiment')
	  if $what eq 'archived';
}
is($node->safe_psql('shop', 'SELECT count(*) FROM orders'), $orders_before + 2, 'D: both orders are in the table');
my $health = decode_json($http->get(url('/healthz'))->{content});
is(join(' ', map { $health->{fallbacks}{$_} // 0 } qw(55000 42704)), '2 2',
	'D: the application counts the fallbacks by SQLSTATE');
like(slurp($app_log), qr/WARNING checkout: routing 'checkout_v2': 55000: .*not active/,
	'D: and logs them');
stop_app();
stop_group($bouncer, 'INT', 20);

note(sprintf('the test took %.1f s; A: %d requests in %.1f s, %.0f requests/s', time - $test_start,
	$run_a->{requests}, $run_a->{elapsed_s}, $run_a->{requests_per_s}));
$node->stop;
done_testing();
