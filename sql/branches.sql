-- Database branches: a branch's settings, checked by PostgreSQL's GUC machinery when
-- set and applied like SET LOCAL by ab_enter; the transaction's statements measured
-- by the executor hooks as the branch's queries.

-- sqlstate_of(statement): the SQLSTATE and message of the error it raises, or 'ok'.
CREATE FUNCTION sqlstate_of(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- Everyone goes to 'index_v2' (allocation 0/100), so the outputs do not depend on hashes.
SELECT ab_create_experiment('db_change', ARRAY['baseline', 'index_v2'], ARRAY[0, 100]) IS NOT NULL AS created;
SELECT ab_start('db_change');
CREATE SCHEMA app_v2;

-- 1. Validation: PostgreSQL decides what is a parameter and a valid value; abtest adds
--    what no branch may set. Nothing is stored when refused.
SELECT sqlstate_of($$SELECT ab_set_branch_settings('db_change', 'index_v2', '{"no_such_parameter": "1"}')$$);
SELECT sqlstate_of($$SELECT ab_set_branch_settings('db_change', 'index_v2', '{"work_mem": "lots"}')$$);
SELECT sqlstate_of($$SELECT ab_set_branch_settings('db_change', 'index_v2', '{"enable_seqscan": "maybe"}')$$);
SELECT sqlstate_of($$SELECT ab_set_branch_settings('db_change', 'index_v2', '{"log_min_duration_statement": "0"}')$$);
SELECT sqlstate_of($$SELECT ab_set_branch_settings('db_change', 'index_v2', '{"shared_buffers": "1GB"}')$$);
SELECT sqlstate_of($$SELECT ab_set_branch_settings('db_change', 'index_v2', '{"role": "postgres"}')$$);
SELECT sqlstate_of($$SELECT ab_set_branch_settings('db_change', 'index_v2', '{"session_authorization": "x"}')$$);
SELECT sqlstate_of($$SELECT ab_set_branch_settings('db_change', 'index_v2', '{"transaction_isolation": "serializable"}')$$);
SELECT sqlstate_of($$SELECT ab_set_branch_settings('db_change', 'index_v2', '{"abtest.sticky_durability": "sync"}')$$);
SELECT sqlstate_of($$SELECT ab_set_branch_settings('db_change', 'index_v2', '{"work_mem": ["64MB"]}')$$);
SELECT sqlstate_of($$SELECT ab_set_branch_settings('db_change', 'index_v2', '{"work_mem": "64MB", "WORK_MEM": "1MB"}')$$);
SELECT sqlstate_of($$SELECT ab_set_branch_settings('db_change', 'index_v2', '[1, 2]')$$);
SELECT sqlstate_of($$SELECT ab_set_branch_settings('db_change', 'no_branch', '{}')$$);
SELECT sqlstate_of($$SELECT ab_set_branch_settings('no_experiment', 'index_v2', '{}')$$);
SELECT sqlstate_of($$SELECT ab_set_branch_settings('db_change', 'index_v2', NULL)$$);
SELECT branch_settings FROM abtest.experiment_overview WHERE name = 'db_change';

-- Valid settings: planner settings, a search path, a statement timeout, a custom
-- parameter the application can read. Numbers and booleans become SET's text.
SELECT ab_set_branch_settings('db_change', 'index_v2',
    '{"search_path": "app_v2, public", "work_mem": "64MB", "enable_seqscan": false,
      "random_page_cost": 1.1, "statement_timeout": "5s", "myapp.variant": "v2"}');
SELECT branch_settings FROM abtest.experiment_overview WHERE name = 'db_change';

-- 2. Applied for the rest of the transaction, like SET LOCAL, and gone after COMMIT.
BEGIN;
SELECT ab_enter('db_change', 'alice');
SELECT current_setting('search_path') AS search_path, current_setting('work_mem') AS work_mem,
       current_setting('enable_seqscan') AS enable_seqscan, current_setting('random_page_cost') AS rpc,
       current_setting('statement_timeout') AS timeout, current_setting('myapp.variant') AS variant;
COMMIT;
SELECT current_setting('search_path') AS search_path, current_setting('work_mem') AS work_mem,
       current_setting('enable_seqscan') AS enable_seqscan, current_setting('myapp.variant', true) AS variant;

-- ... gone after ROLLBACK,
BEGIN;
SELECT ab_enter('db_change', 'alice');
ROLLBACK;
SELECT current_setting('work_mem') AS work_mem;

-- ... gone after the rollback of the savepoint it was entered in, and entering again
-- afterwards is allowed (the first entering never happened),
BEGIN;
SAVEPOINT before_enter;
SELECT ab_enter('db_change', 'alice');
SELECT current_setting('work_mem') AS work_mem;
ROLLBACK TO SAVEPOINT before_enter;
SELECT current_setting('work_mem') AS work_mem;
SELECT ab_enter('db_change', 'bob');
SELECT current_setting('work_mem') AS work_mem;
COMMIT;

-- ... and kept through a released savepoint.
BEGIN;
SAVEPOINT s;
SELECT ab_enter('db_change', 'alice');
RELEASE SAVEPOINT s;
SELECT current_setting('work_mem') AS work_mem;
COMMIT;
SELECT current_setting('work_mem') AS work_mem;

-- 3. A second ab_enter: the same experiment and user is idempotent; anything else is
--    refused. ab_leave keeps the settings.
BEGIN;
SELECT ab_enter('db_change', 'alice');
SELECT ab_enter('db_change', 'alice');
SELECT sqlstate_of($$SELECT ab_enter('db_change', 'carol')$$);
SELECT ab_leave();
SELECT current_setting('work_mem') AS work_mem_after_leave;
COMMIT;

-- Autocommit: the settings last for the statement that called ab_enter.
SELECT ab_enter('db_change', 'alice') AS branch, current_setting('work_mem') AS work_mem_in_statement;
SELECT current_setting('work_mem') AS work_mem;

-- 4. Measurement. Every statement after ab_enter is one query of the branch: not the
--    statement that entered, not COMMIT, not after ab_leave.
SELECT ab_clear_metrics('db_change');
BEGIN;
SELECT ab_enter('db_change', 'dave');
SELECT 1 AS one;
SELECT count(*) FROM pg_class WHERE relname = 'pg_class';
SELECT ab_leave();
SELECT 'not measured' AS after_leave;
COMMIT;
SELECT branch, query_count, success_count FROM ab_branch_metrics('db_change');

-- A failing statement is a failure of the branch; one in a rolled-back savepoint too.
-- (The divisor comes from a table: 1 / 0 written as constants fails while it is
-- planned, before there is an executor to time, and is not counted.)
CREATE TABLE zero (x int);
INSERT INTO zero VALUES (0);
BEGIN;
SELECT ab_enter('db_change', 'dave');
SAVEPOINT s;
SELECT 1 / x FROM zero;
ROLLBACK TO SAVEPOINT s;
SELECT 2 AS two;
SELECT 1 / 0 AS not_counted;
ROLLBACK;
BEGIN;
SELECT ab_enter('db_change', 'dave');
SELECT 1 / x FROM zero;
ROLLBACK;
-- statement_timeout: the branch's own 5 s does not fire; a shorter one does.
SET statement_timeout = '100ms';
BEGIN;
SELECT ab_enter('db_change', 'dave');
SET LOCAL statement_timeout = '100ms';
SELECT pg_sleep(1);
ROLLBACK;
RESET statement_timeout;
SELECT branch, query_count, success_count, failure_count
  FROM ab_branch_metrics('db_change');

-- Nested statements are not counted unless abtest.track_nested; utility statements
-- unless abtest.track_utility.
CREATE FUNCTION two_queries() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1;
    PERFORM 2;
    RETURN 2;
END
$$;
CREATE TABLE branch_scratch (x int);
SELECT ab_clear_metrics('db_change');
BEGIN;
SELECT ab_enter('db_change', 'erin');
SELECT two_queries();
TRUNCATE branch_scratch;
COMMIT;
SET abtest.track_nested = on;
SET abtest.track_utility = on;
BEGIN;
SELECT ab_enter('db_change', 'erin');
SELECT two_queries();
TRUNCATE branch_scratch;
COMMIT;
RESET abtest.track_nested;
RESET abtest.track_utility;
SELECT branch, query_count FROM ab_branch_metrics('db_change');

-- 5. A user outside the experiment gets the control's settings and is not measured.
SELECT ab_set_branch_settings('db_change', 'baseline', '{"work_mem": "2MB"}');
SELECT ab_configure('db_change', excluded_groups => ARRAY['staff']);
SELECT ab_clear_metrics('db_change');
BEGIN;
SELECT ab_enter('db_change', 'frank', ARRAY['staff']);
SELECT current_setting('work_mem') AS control_work_mem;
SELECT 1;
COMMIT;
SELECT branch, exposures, query_count FROM ab_branch_metrics('db_change');

-- '{}' clears; an archived experiment's settings cannot change.
SELECT ab_set_branch_settings('db_change', 'baseline', '{}');
SELECT branch_settings FROM abtest.experiment_overview WHERE name = 'db_change';
SELECT ab_complete('db_change', 'index_v2');
SELECT ab_archive('db_change');
SELECT sqlstate_of($$SELECT ab_set_branch_settings('db_change', 'index_v2', '{}')$$);
SELECT ab_delete_experiment('db_change');
DROP FUNCTION two_queries();
DROP TABLE branch_scratch, zero;
DROP SCHEMA app_v2;
DROP FUNCTION sqlstate_of(text);
