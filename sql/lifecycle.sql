-- Experiment catalog and lifecycle: create, inspect, move through the states, delete.

-- Created without an allocation, branches split equally, the remainder on the first.
SELECT ab_create_experiment('three_way', ARRAY['control', 'b', 'c']) IS NOT NULL AS created;
SELECT name, state, branches, allocation, salt, strategy, sticky, min_sample_size, confidence_level
  FROM abtest.experiment_overview WHERE name = 'three_way';

-- With every argument.
SELECT ab_create_experiment('checkout', ARRAY['control', 'treatment'], ARRAY[90, 10],
                            'New checkout flow', 'payments-team', ARRAY['web', 'q4']) IS NOT NULL AS created;
SELECT name, description, owner, tags, branches, allocation, state, started_at IS NULL AS never_started
  FROM ab_get_experiment('checkout');

-- The id is a uuid and agrees with the catalog table.
SELECT (SELECT id FROM abtest.experiments WHERE name = 'checkout') = (ab_get_experiment('checkout')).id AS same_id;

-- draft -> active -> paused -> active -> completed -> archived
SELECT ab_start('checkout');
SELECT state, started_at IS NOT NULL AS started FROM ab_get_experiment('checkout');
CREATE TEMP TABLE first_start AS SELECT started_at FROM abtest.experiments WHERE name = 'checkout';
SELECT ab_pause('checkout');
SELECT state FROM ab_get_experiment('checkout');
SELECT ab_start('checkout');
-- Resuming keeps the original start time.
SELECT e.started_at = f.started_at AS start_kept FROM abtest.experiments e, first_start f WHERE e.name = 'checkout';
SELECT ab_complete('checkout', 'treatment');
SELECT state, winner, completed_at IS NOT NULL AS completed FROM ab_get_experiment('checkout');
SELECT ab_archive('checkout');
SELECT state FROM ab_get_experiment('checkout');
-- Archiving twice changes nothing.
SELECT ab_archive('checkout');

-- ab_set_state: active, paused and archived only.
SELECT ab_set_state('three_way', 'active');
SELECT ab_set_state('three_way', 'paused');
SELECT state FROM ab_get_experiment('three_way');
SELECT ab_set_state('three_way', 'active');
SELECT ab_complete('three_way');
SELECT state, winner IS NULL AS no_winner FROM ab_get_experiment('three_way');

-- Allocation by branch name.
SELECT ab_create_experiment('ramp', ARRAY['control', 'treatment']) IS NOT NULL AS created;
SELECT ab_set_allocation('ramp', '{"control": 80, "treatment": 20}');
SELECT allocation FROM ab_get_experiment('ramp');
SELECT ab_set_allocation('ramp', '{"control": 66.67, "treatment": 33.33}');
SELECT allocation FROM ab_get_experiment('ramp');
-- A branch left out gets 0.
SELECT ab_set_allocation('ramp', '{"treatment": 100}');
SELECT allocation FROM ab_get_experiment('ramp');

-- ab_configure changes only what is given.
SELECT ab_configure('ramp', min_sample_size => 1000, excluded_groups => ARRAY['staff'], max_duration => '14 days');
SELECT sticky, included_groups, excluded_groups, min_sample_size, confidence_level, max_duration
  FROM ab_get_experiment('ramp');
SELECT ab_configure('ramp', sticky => false, included_groups => ARRAY['beta'], confidence_level => 0.99,
                    allow_reassignment => true, auto_complete => true, salt => 'ramp-2026');
SELECT sticky, included_groups, excluded_groups, min_sample_size, confidence_level, allow_reassignment,
       auto_complete, salt FROM ab_get_experiment('ramp');
-- A zero interval lifts the duration limit.
SELECT ab_configure('ramp', max_duration => '0');
SELECT max_duration FROM ab_get_experiment('ramp');

-- Strategy and parameters are stored in canonical form.
SELECT ab_set_assignment('ramp', 'percentage', '{"coverage": 25}');
SELECT strategy, strategy_params FROM ab_get_experiment('ramp');
SELECT ab_set_assignment('ramp', 'hash');
SELECT strategy, strategy_params FROM ab_get_experiment('ramp');

-- The default experiment: one at most.
SELECT ab_set_default_experiment('ramp');
SELECT name FROM abtest.experiments WHERE is_default;
SELECT ab_set_default_experiment('three_way');
SELECT name FROM abtest.experiments WHERE is_default;
SELECT ab_set_default_experiment(NULL);
SELECT count(*) AS defaults FROM abtest.experiments WHERE is_default;

SELECT name, state FROM ab_list_experiments();

-- Deleting removes the experiment and its branches.
SELECT ab_delete_experiment('ramp');
SELECT count(*) AS left_over FROM abtest.branches b
 WHERE NOT EXISTS (SELECT 1 FROM abtest.experiments e WHERE e.id = b.experiment_id);
SELECT name FROM ab_list_experiments();

SELECT ab_delete_experiment('three_way');
SELECT ab_delete_experiment('checkout');
SELECT count(*) AS experiments FROM abtest.experiments;
