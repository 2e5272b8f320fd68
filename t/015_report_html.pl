# ab_report_html in a real browser: an experiment with users, an orders table and metrics
# attached; the page is rendered by headless Chromium and test/render/check_report.py
# counts the pixels of its interval marks, over-time bands and sample-ratio bars.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use IPC::Run;
use lib $FindBin::RealBin;
use AbtestNode;

my $chromium = -x '/usr/bin/chromium' ? '/usr/bin/chromium' : undef;
plan skip_all => 'chromium is not installed (Debian: apt-get install chromium)' unless $chromium;
my $python = -x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3';
my $srcdir = $ENV{ABTEST_SRCDIR} // "$FindBin::RealBin/..";
my $checker = "$srcdir/test/render/check_report.py";

my $node = AbtestNode::new_node('report_html', conf => "abtest.flush_interval = '100ms'\n");
$node->safe_psql('postgres', q{
	SELECT ab_create_experiment('checkout', ARRAY['control', 'one_page', 'two_step'],
	                            description => 'One-page checkout <script>alert(1)</script> & friends');
	SELECT ab_start('checkout');
	SELECT count(ab_route_user('checkout', 'user' || g)) FROM generate_series(1, 3000) g;
});
AbtestNode::wait_for_log($node, 3000);

# Four days of history: the experiment and its users started in the past, so that the
# cumulative analysis has steps and the facts lie before now().
$node->safe_psql('postgres', q{
	UPDATE abtest.experiments SET started_at = now() - interval '4 days' WHERE name = 'checkout';
	UPDATE abtest.assignments
	   SET assigned_at = now() - interval '4 days' + (hashtext(user_id) & 1023) * interval '4 minutes';
	CREATE TABLE orders (customer text, ordered_at timestamptz, amount numeric);
	-- one_page sells more, two_step the same as control; every user has 0..3 orders.
	INSERT INTO orders
	SELECT a.user_id, a.assigned_at + k * interval '11 hours',
	       20 + (hashtext(a.user_id || k) & 255) / 8.0 + CASE a.branch WHEN 'one_page' THEN 9 ELSE 0 END
	  FROM abtest.assignments a, generate_series(1, 3) k
	 WHERE (hashtext(a.user_id) & 3) >= k - 1;
	CREATE TABLE page_loads (customer text, loaded_at timestamptz, ms float8);
	-- two_step is slower: a guardrail (lower is better) that got worse.
	INSERT INTO page_loads
	SELECT a.user_id, a.assigned_at + interval '5 minutes',
	       700 + (hashtext(a.user_id) & 511) + CASE a.branch WHEN 'two_step' THEN 150 ELSE 0 END
	  FROM abtest.assignments a;
	SELECT ab_define_metric('revenue', 'orders', 'customer', 'ordered_at', 'amount',
	                        description => 'Order amount per user');
	SELECT ab_define_metric('load_ms', 'page_loads', 'customer', 'loaded_at', 'ms', aggregation => 'max',
	                        higher_is_better => false);
	SELECT ab_attach_metric('checkout', 'revenue', 'goal');
	SELECT ab_attach_metric('checkout', 'load_ms', 'guardrail');
});

my $html = $node->safe_psql('postgres', q{SELECT ab_report_html('checkout')});
my $page = "$PostgreSQL::Test::Utils::tmp_check/report_html.html";
my $png = "$PostgreSQL::Test::Utils::tmp_check/report_html.png";
open(my $out, '>:raw', $page) or die "cannot write $page: $!";
print $out $html;
close($out);

like($html, qr/^<!DOCTYPE html>/, 'an HTML5 page');
unlike($html, qr/<script/i, 'no script, the description included (it is escaped)');
like($html, qr/&lt;script&gt;alert\(1\)&lt;\/script&gt; &amp; friends/, 'the description is escaped');
unlike($html, qr{https?:|url\(}i, 'no external URL');
like($html, qr/id="verdict"/, 'a verdict');
like($html, qr/id="sample-ratio"/, 'the sample-ratio check');
is(() = $html =~ /<svg class="chart ci-plot"/g, 2, 'an interval plot per metric');
is(() = $html =~ /<svg class="chart over-time"/g, 2, 'an over-time chart per metric');
like($html, qr/Recommend one_page/, 'one_page is recommended on revenue');
like($html, qr/Guardrail load_ms is significantly worse in two_step/, 'the guardrail warning');
cmp_ok(length($html), '<', 200_000, 'the page stays small');

my ($stdout, $stderr) = ('', '');
my $ok = IPC::Run::run([ $python, $checker, $page, '--png', $png ], '>', \$stdout, '2>', \$stderr);
note($stdout);
note($stderr) if $stderr ne '';
ok($ok, 'the charts are drawn in a real browser') or diag($stdout . $stderr);
ok(-s $png, "the rendering is kept in $png");

# Nobody in the experiment yet and no metric: still a valid page with the hint to attach one.
$node->safe_psql('postgres', q{
	SELECT ab_create_experiment('empty', ARRAY['a', 'b']);
	SELECT ab_start('empty');
});
my $empty = $node->safe_psql('postgres', q{SELECT ab_report_html('empty')});
like($empty, qr/ab_attach_metric/, 'an experiment without metrics says how to attach one');
unlike($empty, qr/\b(nan|-?inf(inity)?)\b/i, 'no NaN or infinity on an empty page');

done_testing();
