# The psql admin scripts of admin/, run as an operator runs them (psql -v ... -f
# admin/X.sql, no psqlrc): what they print, what they change, and what they refuse. The
# ramp's estimate of who changes branch is checked against routing itself: every user is
# routed before and after, and the users who really changed are counted.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use IPC::Run;
use lib $FindBin::RealBin;
use AbtestNode;

my $srcdir = $ENV{ABTEST_SRCDIR} // "$FindBin::RealBin/..";
my $admin = "$srcdir/admin";

my $node = AbtestNode::new_node('admin', conf => "abtest.flush_interval = '100ms'\n");
my $psql = $node->installed_command('psql');

# Runs admin/$script with the variables given (a hash) and $stdin on standard input, as
# $role if given; returns psql's exit status, its standard output and its standard error.
sub run_script
{
	my ($script, $vars, $stdin, $role) = @_;
	my @cmd = ($psql, '-X', '-d', $node->connstr('postgres'));
	push @cmd, '-U', $role if defined $role;
	push @cmd, '-v', "$_=$vars->{$_}" for sort keys %$vars;
	push @cmd, '-f', "$admin/$script";
	my ($out, $err) = ('', '');
	$stdin //= '';
	IPC::Run::run(\@cmd, '<', \$stdin, '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}

sub query { return $node->safe_psql('postgres', shift); }

# The users $prefix$from .. $prefix$to, as SQL.
sub users
{
	my ($prefix, $from, $to) = @_;
	return "SELECT '$prefix' || g AS u FROM generate_series($from, $to) AS g";
}

# Every user's branch now: user id => branch.
sub route_all
{
	my ($experiment, $users) = @_;
	my %branch = split /[|\n]/, query("SELECT u, ab_route_user('$experiment', u) FROM ($users) AS users");
	return \%branch;
}

sub changed
{
	my ($before, $after) = @_;
	return scalar grep { $before->{$_} ne $after->{$_} } keys %$before;
}

sub wait_for_users
{
	my ($experiment, $count) = @_;
	$node->poll_query_until('postgres',
		"SELECT count(*) >= $count FROM abtest.assignments a JOIN abtest.experiments e ON e.id = a.experiment_id
		  WHERE e.name = '$experiment'")
	  or die "the flush worker did not write $count assignments of $experiment";
}

my ($rc, $out, $err);
my $users2000 = users('u', 1, 2000);

# --- Missing variables: refused with the usage line and a nonzero exit, nothing done.
for my $case (
	[ 'create.sql', { branches => 'a,b' }, 'name' ],
	[ 'create.sql', { name => 'nobranches' }, 'branches' ],
	[ 'ramp.sql', { allocation => '50,50' }, 'name' ],
	[ 'ramp.sql', { name => 'x' }, 'allocation' ],
	[ 'pause.sql', {}, 'name' ],
	[ 'resume.sql', {}, 'name' ],
	[ 'complete.sql', { winner => 'b' }, 'name' ],
	[ 'complete.sql', { name => 'x' }, 'winner' ],
	[ 'report.sql', {}, 'name' ])
{
	my ($script, $vars, $missing) = @$case;
	($rc, $out, $err) = run_script($script, $vars);
	is($rc, 3, "$script without $missing exits with status 3");
	like($err, qr/usage: psql -v name=EXPERIMENT.*-f admin\/\Q$script\E/, "$script without $missing prints its usage");
	like($err, qr/the variable "$missing" is not set/, "$script without $missing names it");
}
is(query("SELECT count(*) FROM ab_list_experiments()"), '0', 'the refused scripts created nothing');

# --- create.sql: every variable, values with quotes stay values.
($rc, $out, $err) = run_script(
	'create.sql',
	{
		name => "it's",
		branches => 'control, treatment',
		allocation => '90, 10',
		description => q{x'); SELECT ab_delete_experiment('victim'); --},
		owner => 'payments',
		tags => 'web, checkout',
		sticky => 'false',
		min_sample_size => '500',
		confidence_level => '0.99',
		max_duration => '28 days'
	});
is($rc, 0, 'create.sql succeeds') or diag($err);
like($out, qr/Created as a draft\. Start it with: psql -v name=it's -f admin\/resume\.sql/, 'create.sql says what is next');
is( query(
		q{SELECT concat_ws(' ', state, branches, allocation, description, owner, tags, sticky, min_sample_size,
		                  confidence_level, max_duration) FROM ab_get_experiment('it''s')}),
	q{draft {control,treatment} {90.00,10.00} x'); SELECT ab_delete_experiment('victim'); -- payments {web,checkout} f 500 0.99 28 days},
	'create.sql stores every variable as given, as a value');

($rc, $out, $err) = run_script('create.sql', { name => 'started', branches => 'control,treatment', start => 1 });
is($rc, 0, 'create.sql with start=1 succeeds');
like($out, qr/Started: ab_route_user\('started', user_id\) routes users now\./, 'create.sql says it started');
is(query("SELECT state || ' ' || allocation::text FROM ab_get_experiment('started')"),
	'active {50.00,50.00}', 'start=1 starts it with an equal split');

# One transaction: a refused setting leaves no experiment behind.
($rc, $out, $err) =
  run_script('create.sql', { name => 'half', branches => 'a,b', confidence_level => '2', start => 1 });
is($rc, 3, 'create.sql with an invalid setting fails');
like($err, qr/confidence_level/, 'the error names the setting');
is(query("SELECT count(*) FROM abtest.experiments WHERE name = 'half'"), '0', 'and the experiment was not created');
($rc, $out, $err) = run_script('create.sql', { name => 'unsure', branches => 'a,b', start => 'maybe' });
is($rc, 3, 'create.sql refuses a start that is no boolean (psql\'s \\if would take it as false)');
like($err, qr/invalid input syntax for type boolean: "maybe"/, 'saying so');
is(query("SELECT count(*) FROM abtest.experiments WHERE name = 'unsure'"), '0', 'before creating anything');

# --- ramp.sql on a sticky hash experiment with 2000 assigned users.
query(q{SELECT ab_create_experiment('sticky', ARRAY['control', 'treatment'], ARRAY[90, 10]);
        SELECT ab_start('sticky');});
my $sticky_before = route_all('sticky', $users2000);
wait_for_users('sticky', 2000);

($rc, $out, $err) = run_script('ramp.sql', { name => 'sticky', allocation => '50,50' }, "n\n");
is($rc, 3, 'a ramp declined at the prompt exits with status 3');
like($out, qr/^Experiment "sticky": active, strategy hash, sticky\.$/m, 'the ramp names the experiment');
like($out, qr/^ control\s+\| 90\.00% \| 50\.00% \| -40\.00\s+\|\s+\d+$/m, 'the ramp shows the control\'s split');
like($out, qr/^ treatment\s+\| 10\.00% \| 50\.00% \| \+40\.00\s+\|\s+\d+$/m, 'and the treatment\'s');
like($out, qr/Sticky: the 2000 users in the assignment log keep their branch; none of them moves\./,
	'the ramp says sticky users keep their branch');
like($out, qr/New users get the new split: 40\.00% of them land in another branch.*\n  control -> treatment: buckets 5000-8999, 40\.00%/,
	'and which buckets move for new users');
like($out, qr/after a ramp the counts mix both splits/, 'the ramp warns that ab_srm will mix both splits');
like($out, qr/Apply the new allocation\? \[y\/N\] Not applied: nothing changed\./, 'the prompt was read from stdin');
like($err, qr/declined, the allocation is unchanged/, 'declining is reported as such');
is(query("SELECT allocation FROM ab_get_experiment('sticky')"), '{90.00,10.00}', 'a declined ramp changes nothing');

($rc, $out, $err) = run_script('ramp.sql', { name => 'sticky', allocation => '50,50' }, '');
is($rc, 3, 'a ramp without an answer exits with status 3');
is(query("SELECT allocation FROM ab_get_experiment('sticky')"), '{90.00,10.00}', 'and changes nothing');

($rc, $out, $err) = run_script('ramp.sql', { name => 'sticky', allocation => '50,50', yes => 1 });
is($rc, 0, 'ramp.sql with yes=1 applies without asking') or diag($err);
unlike($out, qr/Apply the new allocation/, 'yes=1 asks nothing');
like($out, qr/Applied: sticky is now control 50\.00%, treatment 50\.00%\./, 'the ramp reports the new split');
is(query("SELECT allocation FROM ab_get_experiment('sticky')"), '{50.00,50.00}', 'the allocation changed');
is(changed($sticky_before, route_all('sticky', $users2000)), 0, 'no sticky user changed branch, as announced');

# Refusals before the question: abtest's own validation in the dry run.
($rc, $out, $err) = run_script('ramp.sql', { name => 'sticky', allocation => '50,40' }, "y\n");
is($rc, 3, 'an allocation that does not sum to 100 is refused');
like($err, qr/allocation must sum to 100/, 'with abtest\'s message');
unlike($out, qr/Apply/, 'before anyone is asked');
($rc, $out, $err) = run_script('ramp.sql', { name => 'sticky', allocation => '50,40,10' }, "y\n");
is($rc, 3, 'an allocation with one share too many is refused');
like($err, qr/3 shares for the 2 branches \{control,treatment\}/, 'saying why');
($rc, $out, $err) =
  run_script('ramp.sql', { name => q{sticky'); SELECT ab_delete_experiment('started'); --}, allocation => '50,50' });
is($rc, 3, 'a name that is SQL is just an unknown name');
like($err, qr/experiment "sticky'\); SELECT ab_delete_experiment\('started'\); --" does not exist/, 'reported as such');
is(query("SELECT count(*) FROM abtest.experiments WHERE name = 'started'"), '1', 'and nothing was executed');

# --- Not sticky: the share announced is the share of users who really change branch.
query(q{SELECT ab_create_experiment('plain', ARRAY['control', 'treatment'], ARRAY[90, 10]);
        SELECT ab_configure('plain', sticky => false); SELECT ab_start('plain');});
my $plain_before = route_all('plain', $users2000);
($rc, $out, $err) = run_script('ramp.sql', { name => 'plain', allocation => '{"control": 50, "treatment": 50}' }, "y\n");
is($rc, 0, 'a ramp confirmed with y on stdin applies') or diag($err);
like($out,
	qr/Not sticky: every request follows the allocation, so 40\.00% of the users in the experiment change branch at once:\n  control -> treatment: buckets 5000-8999, 40\.00%/,
	'the ramp of a non-sticky experiment announces 40% of the buckets');
my $plain_moved = changed($plain_before, route_all('plain', $users2000));
is($plain_moved,
	query("SELECT count(*) FROM ($users2000) AS users WHERE ab_bucket('plain', u) BETWEEN 5000 AND 8999"),
	"exactly the users of buckets 5000-8999 changed branch ($plain_moved of 2000)");

# --- allow_reassignment: the count announced is the count of users who change.
my $users3000 = users('r', 1, 3000);
query(q{SELECT ab_create_experiment('rebucket', ARRAY['control', 'treatment', 'other'], ARRAY[80, 10, 10]);
        SELECT ab_configure('rebucket', allow_reassignment => true); SELECT ab_start('rebucket');});
my $rebucket_before = route_all('rebucket', $users3000);
wait_for_users('rebucket', 3000);
($rc, $out, $err) = run_script('ramp.sql', { name => 'rebucket', allocation => '40,30,30', yes => 1 });
is($rc, 0, 'the ramp of a re-bucketing experiment applies') or diag($err);
my ($announced) = $out =~ /the 3000 users in the assignment log are re-bucketed at their next request; (\d+) of them change branch/;
ok(defined $announced, 'the ramp announces how many logged users change branch');
is(changed($rebucket_before, route_all('rebucket', $users3000)), $announced // -1,
	'exactly that many changed branch at their next request');

# --- modulo: the values of user_id mod divisor.
my $numbers = users('', 0, 6999);
query(q{SELECT ab_create_experiment('modulo', ARRAY['control', 'treatment']);
        SELECT ab_set_assignment('modulo', 'modulo', '{"divisor": 7}');
        SELECT ab_configure('modulo', sticky => false); SELECT ab_start('modulo');});
my $modulo_before = route_all('modulo', $numbers);
($rc, $out, $err) = run_script('ramp.sql', { name => 'modulo', allocation => '30,70', yes => 1 });
is($rc, 0, 'the ramp of a modulo experiment applies') or diag($err);
like($out, qr/so 14\.29% of the users in the experiment change branch at once:\n  control -> treatment: user_id mod 7 = 2, 14\.29%/,
	'the ramp announces the one value of seven that moves');
is(changed($modulo_before, route_all('modulo', $numbers)), 1000, 'and the 1000 ids with that remainder moved');

# --- growthbook: an estimate over its hash values, checked on 20,000 users.
my $users20000 = users('g', 1, 20000);
query(q{SELECT ab_create_experiment('gb', ARRAY['control', 'treatment', 'other']);
        SELECT ab_set_assignment('gb', 'growthbook', '{"coverage": 0.5}');
        SELECT ab_configure('gb', sticky => false); SELECT ab_start('gb');});
my $gb_before = route_all('gb', $users20000);
($rc, $out, $err) = run_script('ramp.sql', { name => 'gb', allocation => '20,40,40', yes => 1 });
is($rc, 0, 'the ramp of a growthbook experiment applies') or diag($err);
my ($gb_share) = $out =~ /so ([\d.]+)% of the users in the experiment \(of all users GrowthBook hashes/;
ok(defined $gb_share, 'the ramp announces a share for growthbook');
my $gb_moved = changed($gb_before, route_all('gb', $users20000)) / 200;
ok(defined $gb_share && abs($gb_moved - $gb_share) < 1.5,
	"the share announced ($gb_share%) is the share that moved ($gb_moved%) within sampling error");

# --- A change by another session while the question is open: applying fails, nothing of ours is written.
{
	my ($in, $o, $e) = ('', '', '');
	my $h = IPC::Run::start(
		[
			$psql, '-X', '-d', $node->connstr('postgres'), '-v', 'name=plain', '-v', 'allocation=60,40',
			'-f', "$admin/ramp.sql"
		],
		'<', \$in, '>', \$o, '2>', \$e,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	$h->pump until $o =~ /Apply the new allocation\?/;
	query(q{SELECT ab_set_allocation('plain', '{"control": 70, "treatment": 30}')});
	$in = "y\n";
	$h->finish;
	is($h->result(0), 3, 'a ramp whose experiment changed meanwhile fails');
	like($e, qr/could not serialize access due to concurrent update/, 'as a serialization failure');
	is(query("SELECT allocation FROM ab_get_experiment('plain')"), '{70.00,30.00}', 'and keeps the other session\'s change');
}

# --- Strategies that do not use the allocation, and a role with only the operator's grants.
query(q{SELECT ab_create_experiment('by_country', ARRAY['control', 'treatment']);
        SELECT ab_set_assignment('by_country', 'attribute', '{"name": "country", "mapping": {"DE": "treatment"}}');});
($rc, $out, $err) = run_script('ramp.sql', { name => 'by_country', allocation => '20,80' }, "n\n");
like($out, qr/The experiment is a draft: nobody is routed yet\./, 'the ramp of a draft says nobody is routed yet');
like($out, qr/Strategy attribute does not use the allocation to route: nobody changes branch\./,
	'the ramp of an attribute experiment says nobody moves');

# The experiment_admin grants of README's "Privileges": no access to the abtest schema.
query(q{CREATE ROLE operator LOGIN;
        GRANT EXECUTE ON FUNCTION ab_create_experiment(text, text[], numeric[], text, text, text[]),
              ab_set_allocation(text, jsonb),
              ab_configure(text, boolean, text[], text[], bigint, double precision, boolean, boolean, interval, text,
                           jsonb, text, numeric[]),
              ab_start(text), ab_pause(text), ab_complete(text, text), ab_get_experiment(text)
          TO operator;});
($rc, $out, $err) = run_script('ramp.sql', { name => 'rebucket', allocation => '20,40,40' }, "n\n", 'operator');
is($rc, 3, 'the operator role gets to the question of a ramp') or diag($err);
like($out, qr/users already assigned are re-bucketed at their next request \(abtest\.assignments is not readable by this role/,
	'without counting the log it may not read');
like($out, qr/New users get the new split: 30\.00% of them land in another branch/, 'but with the share that moves');
($rc, $out, $err) = run_script('create.sql', { name => 'by_operator', branches => 'a,b', start => 1 }, '', 'operator');
is($rc, 0, 'the operator role creates and starts an experiment') or diag($err);
($rc, $out, $err) = run_script('pause.sql', { name => 'by_operator' }, '', 'operator');
is($rc, 0, 'and pauses it') or diag($err);
($rc, $out, $err) = run_script('complete.sql', { name => 'by_operator', winner => 'b', yes => 1 }, '', 'operator');
is($rc, 0, 'and completes it, without the verdict it may not read') or diag($err);
unlike($out, qr/Verdict/, 'the verdict is left out');

# --- pause.sql, resume.sql.
my $started_at = query("SELECT started_at FROM ab_get_experiment('sticky')");
($rc, $out, $err) = run_script('pause.sql', { name => 'sticky' });
is($rc, 0, 'pause.sql succeeds') or diag($err);
like($out, qr/^sticky: active -> paused\. Every user gets "control" \(the control\)/m, 'pause.sql says what happened');
is(query("SELECT state FROM ab_get_experiment('sticky')"), 'paused', 'the experiment is paused');
is(query("SELECT ab_route_user('sticky', 'u1') || ab_route_user('sticky', 'u7')"), 'controlcontrol', 'and routes to the control');
($rc, $out, $err) = run_script('pause.sql', { name => 'sticky' });
is($rc, 3, 'pausing twice fails');
like($err, qr/cannot pause experiment "sticky": it is paused/, 'with abtest\'s message');

($rc, $out, $err) = run_script('resume.sql', { name => 'sticky' });
is($rc, 0, 'resume.sql succeeds') or diag($err);
like($out, qr/^sticky: paused -> active, running since .*\nUsers are routed by the allocation \(control 50\.00%, treatment 50\.00%\); users assigned before keep their branch\./m,
	'resume.sql says what happened');
is(query("SELECT state || ' ' || (started_at = '$started_at') FROM ab_get_experiment('sticky')"), 'active true',
	'the experiment is active again with its original start');
is(changed($sticky_before, route_all('sticky', $users2000)), 0, 'and every user has the branch of before the pause');

($rc, $out, $err) = run_script('resume.sql', { name => "it's" });
is($rc, 0, 'resume.sql starts a draft');
like($out, qr/^it's: draft -> active, started at /m, 'and says so');

# --- complete.sql.
($rc, $out, $err) = run_script('complete.sql', { name => 'sticky', winner => 'treatment' }, "n\n");
is($rc, 3, 'a completion declined at the prompt exits with status 3');
like($out, qr/Verdict: /, 'complete.sql shows the verdict first');
like($out, qr/sticky is active\. Completing it makes every user get the winner treatment, for good\.\nComplete it\? \[y\/N\] Not completed: nothing changed\./,
	'and asks');
is(query("SELECT state FROM ab_get_experiment('sticky')"), 'active', 'a declined completion changes nothing');
($rc, $out, $err) = run_script('complete.sql', { name => 'sticky', winner => 'nobody' }, "y\n");
is($rc, 3, 'an unknown winner is refused');
like($err, qr/branch "nobody" does not exist/, 'with abtest\'s message');
unlike($out, qr/Complete it\?/, 'before anyone is asked');
($rc, $out, $err) = run_script('complete.sql', { name => 'sticky', winner => 'treatment', yes => 1 });
is($rc, 0, 'complete.sql with yes=1 completes') or diag($err);
like($out, qr/^sticky: active -> completed at .*, winner treatment\.$/m, 'complete.sql says what happened');
is(query("SELECT state || ' ' || winner || ' ' || ab_route_user('sticky', 'u1') FROM ab_get_experiment('sticky')"),
	'completed treatment treatment', 'the experiment is completed and routes to the winner');
($rc, $out, $err) = run_script('complete.sql', { name => 'started', winner => '', yes => 1 });
is($rc, 0, 'complete.sql with an empty winner completes without one') or diag($err);
like($out, qr/every user get the control control \(no winner\)/, 'and says everyone gets the control');
is(query("SELECT state || ' ' || coalesce(winner, '(none)') FROM ab_get_experiment('started')"),
	'completed (none)', 'the experiment is completed without a winner');
($rc, $out, $err) = run_script('ramp.sql', { name => 'sticky', allocation => '60,40' }, "n\n");
like($out, qr/The experiment is completed: everyone gets the winner, the allocation is not used\./,
	'the ramp of a completed experiment says the allocation is not used');
unlike($out, qr/ -> |New users|Sticky/, 'and announces no moves');

# --- status.sql: a board of every experiment.
query(q{SELECT ab_create_experiment('board_winner', ARRAY['control', 'treatment']);
        SELECT ab_start('board_winner');
        SELECT ab_record_query('board_winner', CASE WHEN g % 2 = 0 THEN 'control' ELSE 'treatment' END, 10,
                               CASE WHEN g % 2 = 0 THEN g % 10 < 6 ELSE g % 10 < 9 END)
          FROM generate_series(0, 1999) g;
        SELECT count(ab_route_user('board_winner', 'b' || g)) FROM generate_series(1, 1000) g;
        SELECT ab_create_experiment('board_srm', ARRAY['control', 'treatment']);
        SELECT ab_start('board_srm');
        SELECT count(ab_route_user('board_srm', 's' || g)) FROM generate_series(1, 2000) g;
        SELECT ab_set_allocation('board_srm', '{"control": 90, "treatment": 10}');
        SELECT ab_create_experiment('board_draft', ARRAY['control', 'treatment']);});
($rc, $out, $err) = run_script('status.sql', {});
is($rc, 0, 'status.sql succeeds') or diag($err);
like($out, qr/^ +experiment +\| +state +\| age +\| running +\| allocation +\| exposures +\| assigned +\| queries +\| +srm_p +\| +verdict/m,
	'the board has its columns');
like($out, qr/^ board_winner +\| active +\| \d+m +\| \d+m +\| 50\/50 +\| +1000 \| +1000 \| +2000 \| [01]\.\d{4} +\| treatment beats control by \+20\.00 pp \(Holm p <0\.0001\)$/m,
	'a significant winner with its users, queries, SRM p-value and verdict');
like($out, qr/^ board_srm +\| active .*\| 90\/10 +\| +2000 \| +2000 \| +0 \| <0\.0001 ! \| sample ratio mismatch: find the cause before trusting results$/m,
	'a sample-ratio mismatch');
like($out, qr/^ board_draft +\| draft .*\| not started$/m, 'a draft');
like($out, qr/^ sticky +\| completed .*\| winner treatment$/m, 'a completed experiment with its winner');
like($out, qr/^ started +\| completed .*\| no winner: everyone gets control$/m, 'one completed without a winner');
like($out, qr/^ plain +\| active .*\| 70\/30 +\| /m, 'the allocation after the ramps');
my @rows = $out =~ /^ \S+ +\| (?:draft|active|paused|completed|archived) /mg;
is(scalar @rows, query("SELECT count(*) FROM abtest.experiments"), 'one row per experiment');

# --- report.sql: ab_report, and the HTML page on request.
my $html = "$PostgreSQL::Test::Utils::tmp_check/admin report.html";
($rc, $out, $err) = run_script('report.sql', { name => 'board_winner', html => $html });
is($rc, 0, 'report.sql succeeds') or diag($err);
like($out, qr/^Experiment "board_winner": active, strategy hash, sticky$/m, 'the report starts with the experiment');
like($out, qr/^Verdict: treatment beats control by \+20\.00 pp/m, 'and has the verdict');
like($out, qr/HTML report written to \Q$html\E/, 'report.sql says where the page is');
open(my $fh, '<', $html) or die "cannot read $html: $!";
my $page = do { local $/; <$fh> };
close($fh);
like($page, qr/\A<!DOCTYPE html>.*board_winner/s, 'the page is ab_report_html\'s');

$node->stop;
done_testing();
