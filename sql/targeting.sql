-- Targeting: who is in an experiment. Conditions, namespaces, forced users, coverage,
-- ab_explain for every reason, and the rule that users outside an experiment leave no
-- trace in its exposures, its assignment log or its sample-ratio check.

-- sqlstate_of(statement): the SQLSTATE and message of the error it raises, or 'ok'.
CREATE FUNCTION sqlstate_of(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- Assignments are written in the routing transaction, so the log can be counted at once.
SET abtest.sticky_durability = sync;

-- 1. The exposure fix. 10% coverage, 50/50: of 20,000 routed users only those in the
--    rollout are exposures and log rows; the split of those passes the ratio check.
SELECT ab_create_experiment('rollout', ARRAY['control', 'treatment']) IS NOT NULL AS created;
SELECT ab_set_assignment('rollout', 'percentage', '{"coverage": 10}');
SELECT ab_start('rollout');
SELECT ab_route_user('rollout', 'user' || i) AS branch, count(*)
  FROM generate_series(1, 20000) i GROUP BY 1 ORDER BY 1;
SELECT branch, exposures, assigned_users FROM ab_branch_metrics('rollout') ORDER BY branch;
SELECT count(*) AS logged, count(*) BETWEEN 1800 AND 2200 AS about_ten_percent
  FROM abtest.assignments a JOIN abtest.experiments e ON e.id = a.experiment_id WHERE e.name = 'rollout';
SELECT mismatch, p_value > 0.01 AS passes FROM ab_srm('rollout');
CREATE TABLE rollout_before AS
SELECT a.user_id, a.branch FROM abtest.assignments a JOIN abtest.experiments e ON e.id = a.experiment_id
 WHERE e.name = 'rollout';

-- Raising coverage to 50% brings new users in, and nobody already in changes branch.
SELECT ab_set_assignment('rollout', 'percentage', '{"coverage": 50}');
SELECT count(*) AS routed FROM (SELECT ab_route_user('rollout', 'user' || i) FROM generate_series(1, 20000) i) s;
SELECT count(*) BETWEEN 9500 AND 10500 AS about_half_logged
  FROM abtest.assignments a JOIN abtest.experiments e ON e.id = a.experiment_id WHERE e.name = 'rollout';
SELECT count(*) AS changed_branch FROM rollout_before b
 WHERE ab_route_user('rollout', b.user_id) <> b.branch;
SELECT mismatch FROM ab_srm('rollout');

-- 2. Excluded and not-included groups leave no trace in metrics or log.
SELECT ab_create_experiment('grouped', ARRAY['control', 'treatment']) IS NOT NULL AS created;
SELECT ab_configure('grouped', excluded_groups => ARRAY['staff']);
SELECT ab_start('grouped');
SELECT DISTINCT ab_route_user('grouped', 'staff' || i, ARRAY['staff']) FROM generate_series(1, 500) i;
SELECT coalesce(sum(exposures), 0) AS exposures, coalesce(sum(assigned_users), 0) AS assigned
  FROM ab_branch_metrics('grouped');
SELECT count(*) AS logged FROM abtest.assignments a JOIN abtest.experiments e ON e.id = a.experiment_id
 WHERE e.name = 'grouped';
SELECT ab_configure('grouped', excluded_groups => '{}', included_groups => ARRAY['beta']);
SELECT DISTINCT ab_route_user('grouped', 'other' || i) FROM generate_series(1, 500) i;
SELECT coalesce(sum(exposures), 0) AS exposures FROM ab_branch_metrics('grouped');
SELECT count(DISTINCT ab_route_user('grouped', 'beta' || i, ARRAY['beta'])) AS branches_seen
  FROM generate_series(1, 500) i;
SELECT sum(exposures) AS exposures, sum(assigned_users) AS assigned FROM ab_branch_metrics('grouped');

-- A paused experiment counts nobody.
SELECT ab_pause('grouped');
SELECT DISTINCT ab_route_user('grouped', 'beta' || i, ARRAY['beta']) FROM generate_series(1, 100) i;
SELECT sum(exposures) AS exposures FROM ab_branch_metrics('grouped');

-- 3. Conditions (GrowthBook's condition language) over the attributes argument.
SELECT ab_create_experiment('targeted', ARRAY['control', 'treatment'], ARRAY[0, 100]) IS NOT NULL AS created;
SELECT ab_configure('targeted', sticky => false,
                    condition => '{"country": {"$in": ["DE", "AT"]}, "os": "iOS",
                                   "os_version": {"$vgte": "17.0"}}');
SELECT ab_start('targeted');
SELECT a AS attributes, ab_route_user('targeted', 'u1', attributes => a::jsonb) AS branch
  FROM unnest(ARRAY[
    '{"country": "DE", "os": "iOS", "os_version": "17.2.1"}',
    '{"country": "AT", "os": "iOS", "os_version": "17.0"}',
    '{"country": "DE", "os": "iOS", "os_version": "16.7"}',
    '{"country": "FR", "os": "iOS", "os_version": "17.2"}',
    '{"country": "DE", "os": "Android", "os_version": "17.2"}',
    '{"country": "DE"}',
    '{}']) a;
SELECT ab_route_user('targeted', 'u1') AS no_attributes, ab_route_user('targeted', 'u1', attributes => NULL) AS null_attributes;
SELECT condition FROM abtest.experiment_overview WHERE name = 'targeted';
-- Regular expressions are PostgreSQL's, compiled once per backend.
SELECT ab_configure('targeted', condition => '{"email": {"$regex": "@example\\.(com|org)$"}}');
SELECT ab_route_user('targeted', 'u1', attributes => '{"email": "ann@example.org"}') AS matches,
       ab_route_user('targeted', 'u1', attributes => '{"email": "ann@example.net"}') AS no_match;
-- '{}' removes the condition.
SELECT ab_configure('targeted', condition => '{}');
SELECT ab_route_user('targeted', 'u1', attributes => '{"email": "ann@example.net"}') AS everyone;
SELECT condition IS NULL AS removed FROM abtest.experiment_overview WHERE name = 'targeted';

-- Invalid conditions are refused when set, with the path inside the condition.
SELECT c AS condition, sqlstate_of(format('SELECT ab_configure(%L, condition => %L)', 'targeted', c)) AS result
  FROM unnest(ARRAY[
    '{"age": {"$gtt": 5}}',
    '{"$and": [{"a": 1}, {"b": {"$in": 5}}]}',
    '{"ua": {"$regex": "("}}',
    '{"ua": {"$regex": 5}}',
    '{"a": {"$type": "float"}}',
    '{"$or": {"a": 1}}',
    '{"a": {"$not": 5}}',
    '{"id": {"$inGroup": "beta"}}',
    '[1, 2]',
    '"text"']) c;
SELECT sqlstate_of($$SELECT ab_configure('targeted', condition => (repeat('{"a": ', 100) || '1' || repeat('}', 100))::jsonb)$$) AS too_deep;

-- Attributes must be an object when the experiment reads them.
SELECT ab_configure('targeted', condition => '{"country": "DE"}');
SELECT sqlstate_of($$SELECT ab_route_user('targeted', 'u1', attributes => '[1]')$$) AS array_attributes;

-- 4. ab_eval_condition: GrowthBook's evaluation, lenient as the SDKs are.
SELECT ab_eval_condition('{"tags": {"$elemMatch": {"$eq": "a"}}}', '{"tags": ["b", "a"]}') AS elem_match,
       ab_eval_condition('{"n": {"$gt": 5, "$lt": 10}}', '{"n": "8"}') AS number_vs_string,
       ab_eval_condition('{"v": {"$vlt": "1.10.0"}}', '{"v": "1.9.9"}') AS versions,
       ab_eval_condition('{"id": {"$inGroup": "qa"}}', '{"id": 7}', '{"qa": [1, 7]}') AS in_group,
       ab_eval_condition('{"age": {"$gtt": 5}}', '{"age": 7}') AS unknown_operator,
       ab_eval_condition('{"name": {"$regexi": "^ANN"}}', '{"name": "anne"}') AS regex_ci,
       ab_eval_condition('{}', NULL) AS empty_condition;
SELECT sqlstate_of($$SELECT ab_eval_condition(NULL, '{}')$$) AS null_condition;

-- 5. Namespaces: disjoint ranges never share a user; overlapping ones are refused.
SELECT ab_create_experiment('ns_a', ARRAY['control', 'treatment']) IS NOT NULL AS created;
SELECT ab_create_experiment('ns_b', ARRAY['control', 'treatment']) IS NOT NULL AS created;
SELECT ab_create_experiment('ns_c', ARRAY['control', 'treatment']) IS NOT NULL AS created;
SELECT ab_create_experiment('ns_overlap', ARRAY['control', 'treatment']) IS NOT NULL AS created;
SELECT ab_configure('ns_a', sticky => false, namespace => 'checkout', namespace_range => '{0, 0.3}');
SELECT ab_configure('ns_b', sticky => false, namespace => 'checkout', namespace_range => '{0.3, 0.6}');
SELECT ab_configure('ns_c', sticky => false, namespace => 'checkout', namespace_range => '{0.6, 1}');
SELECT ab_configure('ns_overlap', sticky => false, namespace => 'checkout', namespace_range => '{0.5, 0.7}');
SELECT ab_start('ns_a'), ab_start('ns_b'), ab_start('ns_c');
SELECT sqlstate_of($$SELECT ab_start('ns_overlap')$$) AS start_overlapping;
SELECT state FROM abtest.experiments WHERE name = 'ns_overlap';
SELECT sqlstate_of($$SELECT ab_configure('ns_c', namespace_range => '{0.5, 1}')$$) AS widen_while_active;
SELECT * FROM abtest.namespace_overview;
-- Pausing ns_b frees its range; resuming it while ns_overlap holds part of it is refused.
SELECT ab_pause('ns_b');
SELECT ab_configure('ns_overlap', namespace_range => '{0.4, 0.6}');
SELECT ab_start('ns_overlap');
SELECT sqlstate_of($$SELECT ab_start('ns_b')$$) AS resume_overlapping;
SELECT ab_archive('ns_overlap');
SELECT ab_start('ns_b');
-- 100,000 users across the three: nobody is in two, and together they cover everyone.
CREATE TABLE ns_routed AS
SELECT i, (SELECT in_experiment FROM ab_explain('ns_a', 'user' || i)) AS a,
          (SELECT in_experiment FROM ab_explain('ns_b', 'user' || i)) AS b,
          (SELECT in_experiment FROM ab_explain('ns_c', 'user' || i)) AS c
  FROM generate_series(1, 100000) i;
SELECT count(*) FILTER (WHERE a::int + b::int + c::int > 1) AS in_two,
       count(*) FILTER (WHERE a::int + b::int + c::int = 0) AS in_none,
       count(*) FILTER (WHERE a) BETWEEN 28000 AND 32000 AS a_about_30_percent
  FROM ns_routed;
-- Routing agrees with ab_explain, and users outside the range are not exposures.
SELECT count(*) FILTER (WHERE NOT a) AS outside_a FROM ns_routed WHERE i <= 2000;
SELECT count(*) AS routed FROM (SELECT ab_route_user('ns_a', 'user' || i) FROM generate_series(1, 2000) i) s;
SELECT 2000 - sum(exposures) AS not_exposed FROM ab_branch_metrics('ns_a');
-- The range must be valid and belongs to a namespace.
SELECT r AS namespace_range, sqlstate_of(format('SELECT ab_configure(%L, namespace => %L, namespace_range => %L)',
                                                'ns_overlap', 'checkout', r)) AS result
  FROM unnest(ARRAY['{0.5, 0.5}', '{-0.1, 0.5}', '{0.5, 1.5}', '{0.7, 0.2}', '{0.1}', '{0.1, 0.2, 0.3}',
                    '{NaN, 1}']) r;
SELECT sqlstate_of($$SELECT ab_configure('ns_archive_free', namespace_range => '{0, 1}')$$) AS unknown_experiment;
SELECT ab_create_experiment('ns_none', ARRAY['control', 'treatment']) IS NOT NULL AS created;
SELECT sqlstate_of($$SELECT ab_configure('ns_none', namespace_range => '{0, 0.5}')$$) AS range_without_namespace;
-- '' leaves the namespace.
SELECT ab_configure('ns_c', namespace => '');
SELECT namespace, namespace_range FROM abtest.experiment_overview WHERE name = 'ns_c';

-- 6. Forced users: for QA, they win over everything but a draft/archived refusal, and
--    are not counted.
SELECT ab_create_experiment('forced', ARRAY['control', 'treatment'], ARRAY[100, 0]) IS NOT NULL AS created;
SELECT ab_force('forced', 'qa42', 'treatment');
SELECT sqlstate_of($$SELECT ab_route_user('forced', 'qa42')$$) AS draft_refuses;
SELECT ab_start('forced');
SELECT ab_route_user('forced', 'qa42') AS forced, ab_route_user('forced', 'qa43') AS other;
SELECT branch, exposures, assigned_users FROM ab_branch_metrics('forced') ORDER BY branch;
SELECT forced_users FROM abtest.experiment_overview WHERE name = 'forced';
SELECT ab_pause('forced');
SELECT ab_route_user('forced', 'qa42') AS forced_while_paused;
SELECT ab_start('forced');
SELECT ab_force('forced', 'qa42', 'control');
SELECT ab_route_user('forced', 'qa42') AS forced_again;
SELECT ab_unforce('forced', 'qa42');
SELECT ab_unforce('forced', 'never_forced');
SELECT ab_route_user('forced', 'qa42') AS unforced;
SELECT sqlstate_of($$SELECT ab_force('forced', 'qa42', 'nope')$$) AS unknown_branch,
       sqlstate_of($$SELECT ab_force('nope', 'qa42', 'control')$$) AS unknown_experiment,
       sqlstate_of($$SELECT ab_force('forced', NULL, 'control')$$) AS null_user,
       sqlstate_of($$SELECT ab_force('forced', repeat('u', 2049), 'control')$$) AS long_user;

-- 7. ab_explain: every reason, counting and writing nothing.
SELECT ab_create_experiment('explained', ARRAY['control', 'treatment']) IS NOT NULL AS created;
SELECT sqlstate_of($$SELECT * FROM ab_explain('explained', 'u1')$$) AS draft;
SELECT ab_configure('explained', excluded_groups => ARRAY['staff'], included_groups => ARRAY['beta', 'staff'],
                    condition => '{"country": "DE"}', namespace => 'explain_ns', namespace_range => '{0, 0.5}');
SELECT ab_set_assignment('explained', 'percentage', '{"coverage": 50}');
SELECT ab_force('explained', 'qa', 'treatment');
SELECT ab_start('explained');
CREATE TABLE explain_users AS
SELECT 'user' || i AS user_id, (SELECT reason FROM ab_explain('explained', 'user' || i, ARRAY['beta'], '{"country": "DE"}')) AS reason
  FROM generate_series(1, 200) i;
SELECT reason, count(*) > 0 AS seen FROM explain_users GROUP BY reason ORDER BY reason;
SELECT 'forced' AS case, * FROM ab_explain('explained', 'qa')
UNION ALL SELECT 'excluded_group', * FROM ab_explain('explained', 'u1', ARRAY['staff'], '{"country": "DE"}')
UNION ALL SELECT 'not_included_group', * FROM ab_explain('explained', 'u1', ARRAY['other'], '{"country": "DE"}')
UNION ALL SELECT 'condition', * FROM ab_explain('explained', 'u1', ARRAY['beta'], '{"country": "FR"}');
SELECT e.reason, x.branch, x.in_experiment, x.reason = e.reason AS same_reason, x.bucket IS NOT NULL AS has_bucket,
       x.sticky
  FROM (SELECT DISTINCT ON (reason) user_id, reason FROM explain_users ORDER BY reason, user_id) e,
       ab_explain('explained', e.user_id, ARRAY['beta'], '{"country": "DE"}') x ORDER BY e.reason;
-- Nothing was counted or written by explaining.
SELECT coalesce(sum(exposures), 0) AS exposures FROM ab_branch_metrics('explained');
SELECT count(*) AS logged FROM abtest.assignments a JOIN abtest.experiments e ON e.id = a.experiment_id
 WHERE e.name = 'explained';
-- Routing the assigned users makes them sticky; explain then says so.
SELECT count(*) AS routed FROM explain_users
 WHERE reason = 'assigned' AND ab_route_user('explained', user_id, ARRAY['beta'], '{"country": "DE"}') IS NOT NULL;
SELECT x.reason, x.sticky, x.in_experiment
  FROM (SELECT user_id FROM explain_users WHERE reason = 'assigned' ORDER BY user_id LIMIT 1) e,
       ab_explain('explained', e.user_id, ARRAY['beta'], '{"country": "DE"}') x;
-- Stickiness wins over a later change of targeting.
SELECT ab_configure('explained', condition => '{"country": "FR"}');
SELECT count(*) FILTER (WHERE x.reason = 'sticky') = count(*) AS all_still_sticky
  FROM explain_users e, ab_explain('explained', e.user_id, ARRAY['beta'], '{"country": "DE"}') x
 WHERE e.reason = 'assigned';
SELECT ab_pause('explained');
SELECT * FROM ab_explain('explained', 'u1');
SELECT ab_complete('explained', 'treatment');
SELECT * FROM ab_explain('explained', 'u1');
SELECT ab_archive('explained');
SELECT sqlstate_of($$SELECT * FROM ab_explain('explained', 'u1')$$) AS archived;
SELECT sqlstate_of($$SELECT * FROM ab_explain('explained', NULL)$$) AS null_user;

-- 8. The growthbook strategy and hash: the same variation as GrowthBook's SDKs.
SELECT ab_growthbook_hash('', 'a', 1) AS v1_a, ab_growthbook_hash('seed', 'a', 2) AS v2,
       ab_growthbook_hash('a', 'b', 99) AS unknown_version, ab_growthbook_hash('', '😀', 2) AS astral;
SELECT ab_create_experiment('gb', ARRAY['0', '1']) IS NOT NULL AS created;
SELECT ab_set_assignment('gb', 'growthbook', '{"seed": "my-test", "hash_version": 1}');
SELECT ab_configure('gb', sticky => false);
SELECT ab_start('gb');
SELECT ab_route_user('gb', i::text) AS variation, count(*) FROM generate_series(1, 1000) i GROUP BY 1 ORDER BY 1;
SELECT * FROM ab_explain('gb', '1');
SELECT sqlstate_of(format('SELECT ab_set_assignment(%L, %L, %L)', 'gb', 'growthbook', p)) AS result
  FROM unnest(ARRAY['{"hash_version": 3}', '{"coverage": 1.5}', '{"ranges": [[0, 0.5]]}', '{"weights": [1]}',
                    '{"bogus": 1}']) p;
-- A hash attribute: users without it are not in the experiment.
SELECT ab_set_assignment('gb', 'growthbook', '{"hash_attribute": "device_id", "coverage": 0.5}');
SELECT * FROM ab_explain('gb', 'u1', attributes => '{}');
SELECT count(*) FILTER (WHERE x.in_experiment) BETWEEN 400 AND 600 AS about_half_in
  FROM generate_series(1, 1000) i, ab_explain('gb', 'u1', attributes => jsonb_build_object('device_id', 'd' || i)) x;

-- 9. Routing finds a condition's top-level attributes in one pass over the jsonb object
-- (one search each past a size): the same answers as ab_eval_condition, whatever the
-- object's size (offsets stored every 32 entries), whichever keys are missing (first,
-- between, last), for nested paths, array lengths and keys under $or and $not.
CREATE TABLE key_cases AS
  SELECT n, coalesce((SELECT jsonb_object_agg('k' || i, i) FROM generate_series(1, n) i), '{}')
            || CASE n % 4 WHEN 0 THEN '{"nested": {"a": {"b": 2}}, "tags": [1, 2], "app": "1.3.0"}'
                          WHEN 1 THEN '{"nested": {"a": 1}, "tags": [1], "app": "1.1.0", "zz": null}'
                          WHEN 2 THEN '{"tags": "ab", "app": "v1.2.0", "a": true}'
                          ELSE '{"nested": {"a": {"b": "3"}}, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": [1, 2]}' END::jsonb AS attrs
    FROM generate_series(0, 90) n;
CREATE TABLE key_conditions (name text, condition jsonb);
INSERT INTO key_conditions VALUES
  ('many', '{"k07": {"$exists": false}, "k3": 3, "nested.a.b": {"$gt": 1}, "tags.length": 2,
             "zz": {"$exists": false}, "$or": [{"k12": {"$lt": 50}}, {"app": {"$vgte": "1.2.0"}}]}'),
  ('one', '{"k5": {"$gte": 5}}'),
  ('first_last', '{"$not": {"a": true}, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": {"$size": {"$gt": 1}}}'),
  ('late', '{"k40": {"$in": [40, 41]}, "k70": {"$exists": true}, "k80": {"$type": "number"}}');
SELECT count(ab_create_experiment('keys_' || name, ARRAY['control', 'treatment'])) AS created FROM key_conditions;
SELECT count(*) AS configured
  FROM key_conditions, LATERAL ab_configure('keys_' || name, sticky => false, condition => condition);
SELECT count(*) AS started FROM key_conditions, LATERAL ab_start('keys_' || name);
SELECT k.name, count(*) FILTER (WHERE ab_eval_condition(k.condition, c.attrs)) AS matching,
       count(*) FILTER (WHERE (x.reason <> 'condition') <> ab_eval_condition(k.condition, c.attrs)) AS disagreeing
  FROM key_conditions k, key_cases c, ab_explain('keys_' || k.name, 'u1', attributes => c.attrs) x
 GROUP BY k.name ORDER BY k.name;
-- Keys of the sought key's length that differ from it in one byte (the first, the last, one
-- in the middle), and keys one byte shorter and longer, at the lengths the lookup compares
-- in words of 8, 4, 2 and 1 bytes: only the exact key is found (a near key's value, 2,
-- would fail the condition; the exact key's, 1, passes it, as does no key at all).
CREATE TABLE near_cases AS
  SELECT l, n, coalesce((SELECT jsonb_object_agg(key, value) FROM (VALUES
           (CASE WHEN n & 1 <> 0 THEN 'j' || repeat('k', l - 1) END, 2),
           (CASE WHEN n & 2 <> 0 AND l > 1 THEN repeat('k', l - 1) || 'l' END, 2),
           (CASE WHEN n & 4 <> 0 AND l > 2 THEN repeat('k', l / 2) || 'j' || repeat('k', l - l / 2 - 1) END, 2),
           (CASE WHEN n & 8 <> 0 THEN repeat('k', l) END, 1),
           (CASE WHEN n & 16 <> 0 THEN repeat('k', l + 1) END, 2),
           (CASE WHEN n & 32 <> 0 AND l > 1 THEN repeat('k', l - 1) END, 2)) v(key, value)
         WHERE key IS NOT NULL), '{}') AS attrs
    FROM unnest(ARRAY[1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17]) l, generate_series(0, 63) n;
SELECT count(*) AS started
  FROM (SELECT DISTINCT l FROM near_cases) c,
       LATERAL ab_create_experiment('near_' || l, ARRAY['control', 'treatment']),
       LATERAL ab_configure('near_' || l, sticky => false, condition => jsonb_build_object(repeat('k', l), '{"$ne": 2}'::jsonb)),
       LATERAL ab_start('near_' || l);
SELECT c.l, count(*) FILTER (WHERE x.reason <> 'condition') AS matching,
       count(*) FILTER (WHERE (x.reason <> 'condition') <> ab_eval_condition(jsonb_build_object(repeat('k', c.l), '{"$ne": 2}'::jsonb), c.attrs)) AS disagreeing
  FROM near_cases c, ab_explain('near_' || c.l, 'u1', attributes => c.attrs) x
 GROUP BY c.l ORDER BY c.l;

SELECT count(ab_delete_experiment(name)) AS deleted FROM abtest.experiments;
DROP TABLE rollout_before, ns_routed, explain_users, key_cases, key_conditions, near_cases;
DROP FUNCTION sqlstate_of(text);
RESET abtest.sticky_durability;
