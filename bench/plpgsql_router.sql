-- The hand-written alternative to ab_route_user, for bench/run.sh: a sticky
-- assignment table plus hashtext() bucketing in PL/pgSQL.

CREATE TABLE IF NOT EXISTS plpgsql_experiments (
    name     text PRIMARY KEY,
    branches text[] NOT NULL,
    alloc    int[]  NOT NULL   -- percentages, summing to 100
);

CREATE TABLE IF NOT EXISTS plpgsql_assignments (
    exp    text NOT NULL,
    uid    text NOT NULL,
    branch text NOT NULL,
    PRIMARY KEY (exp, uid)
);

CREATE OR REPLACE FUNCTION plpgsql_route(exp text, uid text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    b      text;
    e      plpgsql_experiments;
    bucket int;
    acc    int := 0;
BEGIN
    SELECT a.branch INTO b
      FROM plpgsql_assignments a
     WHERE a.exp = plpgsql_route.exp AND a.uid = plpgsql_route.uid;
    IF FOUND THEN
        RETURN b;
    END IF;

    SELECT * INTO e FROM plpgsql_experiments x WHERE x.name = plpgsql_route.exp;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown experiment "%"', plpgsql_route.exp;
    END IF;

    -- hashtext() is signed: fold into 0..99.
    bucket := ((hashtext(plpgsql_route.exp || plpgsql_route.uid)::bigint % 100) + 100) % 100;
    FOR i IN 1 .. array_length(e.branches, 1) LOOP
        acc := acc + e.alloc[i];
        IF bucket < acc THEN
            b := e.branches[i];
            EXIT;
        END IF;
    END LOOP;

    INSERT INTO plpgsql_assignments (exp, uid, branch)
    VALUES (plpgsql_route.exp, plpgsql_route.uid, b)
    ON CONFLICT DO NOTHING;
    RETURN b;
END
$$;

INSERT INTO plpgsql_experiments (name, branches, alloc)
VALUES ('e', ARRAY['control', 'treatment'], ARRAY[50, 50])
ON CONFLICT (name) DO UPDATE SET branches = EXCLUDED.branches, alloc = EXCLUDED.alloc;
