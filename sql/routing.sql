-- Routing semantics: states, groups, determinism, the documented hash, independence.

SELECT ab_create_experiment('route_exp', ARRAY['control', 'treatment']) IS NOT NULL AS created;

-- 1. Draft refuses, active splits, paused gives the control, completed the winner or
--    the control, archived refuses.
\set VERBOSITY terse
SELECT ab_route_user('route_exp', 'user1');
SELECT ab_start('route_exp');
SELECT ab_route_user('route_exp', 'user' || i) AS branch, count(*)
  FROM generate_series(1, 10000) i GROUP BY 1 ORDER BY 1;
SELECT ab_pause('route_exp');
SELECT DISTINCT ab_route_user('route_exp', 'user' || i) FROM generate_series(1, 1000) i;
SELECT ab_complete('route_exp', 'treatment');
SELECT DISTINCT ab_route_user('route_exp', 'user' || i) FROM generate_series(1, 1000) i;
SELECT ab_create_experiment('no_winner', ARRAY['control', 'treatment']) IS NOT NULL AS created;
SELECT ab_start('no_winner');
SELECT ab_complete('no_winner');
SELECT DISTINCT ab_route_user('no_winner', 'user' || i) FROM generate_series(1, 1000) i;
SELECT ab_archive('no_winner');
SELECT ab_route_user('no_winner', 'user1');
SELECT ab_route_user('no_such_experiment', 'user1');

-- 2. Groups: an excluded group, or no included group when some are set, gets the control.
SELECT ab_create_experiment('groups_exp', ARRAY['control', 'treatment'], ARRAY[0, 100]) IS NOT NULL AS created;
SELECT ab_start('groups_exp');
SELECT ab_configure('groups_exp', excluded_groups => ARRAY['staff']);
SELECT ab_route_user('groups_exp', 'u1') AS no_groups,
       ab_route_user('groups_exp', 'u1', ARRAY['staff']) AS staff,
       ab_route_user('groups_exp', 'u1', ARRAY['beta', 'staff']) AS beta_and_staff,
       ab_route_user('groups_exp', 'u1', NULL) AS null_groups;
SELECT ab_configure('groups_exp', included_groups => ARRAY['beta']);
SELECT ab_route_user('groups_exp', 'u1') AS no_groups,
       ab_route_user('groups_exp', 'u1', ARRAY['beta']) AS beta,
       ab_route_user('groups_exp', 'u1', ARRAY['other']) AS other;

-- 3. Deterministic: the same user gets the same branch on every call and in every session.
SELECT ab_create_experiment('sticky_exp', ARRAY['control', 'treatment', 'other']) IS NOT NULL AS created;
SELECT ab_start('sticky_exp');
CREATE TABLE routed AS
  SELECT i, ab_route_user('sticky_exp', 'user' || i) AS branch FROM generate_series(1, 5000) i;
SELECT count(*) AS changed FROM routed WHERE branch <> ab_route_user('sticky_exp', 'user' || i);
\c
SELECT count(*) AS changed_in_new_session FROM routed WHERE branch <> ab_route_user('sticky_exp', 'user' || i);
DROP TABLE routed;

-- 4. The hash strategy is the documented formula: the bucket of
--    xxh3_64(user_id, seed => xxh3_64(salt)) mod 10000 against cumulative allocation.
SELECT ab_create_experiment('checkout_v2', ARRAY['control', 'treatment'], ARRAY[80, 20]) IS NOT NULL AS created;
SELECT ab_start('checkout_v2');
SELECT ab_bucket('checkout_v2', 'user42') AS user42, ab_bucket('checkout_v2', 'user1') AS user1,
       ab_bucket('checkout_v2', '') AS empty, ab_bucket('checkout_v2', 'ユーザー') AS unicode;
SELECT count(*) AS mismatches FROM generate_series(1, 20000) i
 WHERE ab_route_user('checkout_v2', 'user' || i)
       <> CASE WHEN ab_bucket('checkout_v2', 'user' || i) < 8000 THEN 'control' ELSE 'treatment' END;
SELECT min(ab_bucket('checkout_v2', 'user' || i)) >= 0 AND max(ab_bucket('checkout_v2', 'user' || i)) <= 9999
       AS in_range FROM generate_series(1, 20000) i;
-- The salt defaults to the name; another salt reshuffles.
SELECT ab_create_experiment('pricing', ARRAY['a', 'b']) IS NOT NULL AS created;
SELECT ab_bucket('pricing', 'user42') AS pricing_user42;
SELECT ab_configure('pricing', salt => 'checkout_v2');
SELECT ab_bucket('pricing', 'user42') AS salted_like_checkout;

-- 5. Independence: two 50/50 experiments put about a quarter of users in treatment of both.
SELECT ab_create_experiment('indep_a', ARRAY['control', 'treatment']) IS NOT NULL AS created;
SELECT ab_create_experiment('indep_b', ARRAY['control', 'treatment']) IS NOT NULL AS created;
SELECT ab_start('indep_a'); SELECT ab_start('indep_b');
SELECT abs(avg((ab_route_user('indep_a', 'u' || i) = 'treatment' AND
                ab_route_user('indep_b', 'u' || i) = 'treatment')::int) - 0.25) < 0.02 AS independent
  FROM generate_series(1, 20000) i;

-- A visitor without a user id is routed by session id; with neither it is refused.
SELECT ab_route_user('indep_a', NULL, session_id => 'sess-9') = ab_route_user('indep_a', 'sess-9') AS by_session;
SELECT ab_route_user('indep_a', NULL);

-- The default experiment: NULL when there is none or it cannot route.
SELECT ab_route_default('u1') IS NULL AS no_default;
SELECT ab_set_default_experiment('indep_a');
SELECT ab_route_default('u' || i) = ab_route_user('indep_a', 'u' || i) AS same FROM generate_series(1, 3) i;
SELECT ab_pause('indep_a');
SELECT ab_route_default('u1') AS paused_default;
SELECT ab_archive('indep_a');
SELECT ab_route_default('u1') IS NULL AS archived_default;

SELECT ab_delete_experiment(name) FROM abtest.experiments ORDER BY name;
