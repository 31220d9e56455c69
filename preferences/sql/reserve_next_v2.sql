-- Next's search and reservation in one call (PostgreSQL). Installed by migration
-- preferences 0006 (v1, 0004, planned every statement on every call and was costed at 1000 rows);
-- never edited in place: a change is a new file and a new migration.
--
-- The most useful open pair for the rater, from the queue floor up (every pair below it has N
-- submitted assignments): pairs other raters have started, then pairs without a known answer,
-- then the rest, in id order. Never a gold pair (served by the gold draw), never one the rater
-- has submitted, skipped or judged. Rows other raters are locking are skipped (SKIP LOCKED).
-- Under the pair's row lock the active raters are counted again: in a VOLATILE function each
-- statement takes a new snapshot (READ COMMITTED), so the count sees every reservation
-- committed before the lock was granted, and two raters can never push a pair past N.
-- Returns the reservation, or no row when nothing was free (the caller then waits on locks).
CREATE OR REPLACE FUNCTION altpref_reserve_next(
    p_project bigint, p_user integer, p_now timestamptz, p_until timestamptz,
    p_overlap integer, p_floor bigint, p_order varchar, p_token uuid, p_attempts integer)
RETURNS TABLE (r_id bigint, r_pair bigint, r_order varchar, r_at timestamptz,
               r_until timestamptz)
LANGUAGE plpgsql VOLATILE
-- At most one row: the planner then joins the judge page's rows to it by index (judge_page.py).
ROWS 1
-- Generic plans, made once per connection: the statements below are index-ordered scans from
-- the floor up, whatever the parameters, and planning them afresh on every call (PL/pgSQL's
-- default, as the custom plans looked cheaper) cost three times what running them did.
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    v_tried bigint[] := '{}';
    v_pair bigint;
    v_top bigint;
BEGIN
    -- A crash can lose a just-made reservation (the pair is simply free again), never
    -- push a pair past N: no need to wait for the WAL flush.
    PERFORM set_config('synchronous_commit', 'off', true);
    FOR attempt IN 1..p_attempts LOOP
        v_pair := NULL;
        IF p_overlap > 1 THEN
            -- The started pairs lie between the floor and the project's last assignment. A
            -- closed range: the generic plan reads it from the (project, pair) index, where
            -- an open one (from the floor up) is costed as a third of the table and scanned.
            SELECT MAX(a.pair_id) INTO v_top FROM preferences_assignment a
            WHERE a.project_id = p_project;
            SELECT p.id INTO v_pair FROM preferences_candidatepair p
            WHERE p.id IN (SELECT a.pair_id FROM preferences_assignment a
                           WHERE a.project_id = p_project
                           AND a.pair_id BETWEEN p_floor AND v_top
                           AND (a.status = 'done'
                                OR (a.status = 'reserved' AND a.reserved_until > p_now))
                           GROUP BY a.pair_id HAVING COUNT(*) < p_overlap)
            -- Stated on p too: the pair scan then starts at the floor.
            AND p.id BETWEEN p_floor AND v_top AND p.source <> 'gold'
            AND NOT EXISTS (SELECT 1 FROM preferences_assignment o
                            WHERE o.pair_id = p.id AND o.pair_id >= p_floor
                            AND o.rater_id = p_user AND o.status <> 'reserved')
            AND NOT EXISTS (SELECT 1 FROM preferences_judgement j
                            WHERE j.pair_id = p.id AND j.pair_id >= p_floor
                            AND j.rater_user_id = p_user AND j.kind = 'human')
            AND NOT (p.id = ANY(v_tried))
            ORDER BY p.id LIMIT 1 FOR NO KEY UPDATE OF p SKIP LOCKED;
        END IF;
        IF v_pair IS NULL THEN
            SELECT p.id INTO v_pair FROM preferences_candidatepair p
            JOIN annotate_post po ON po.id = p.post_id
            WHERE po.project_id = p_project AND p.id >= p_floor
            AND p.known_preference IS NULL
            AND NOT EXISTS (SELECT 1 FROM preferences_assignment a
                            WHERE a.pair_id = p.id AND a.pair_id >= p_floor
                            AND (a.status = 'done'
                                 OR (a.status = 'reserved' AND a.reserved_until > p_now)))
            AND p.source <> 'gold'
            AND NOT EXISTS (SELECT 1 FROM preferences_assignment o
                            WHERE o.pair_id = p.id AND o.pair_id >= p_floor
                            AND o.rater_id = p_user AND o.status <> 'reserved')
            AND NOT EXISTS (SELECT 1 FROM preferences_judgement j
                            WHERE j.pair_id = p.id AND j.pair_id >= p_floor
                            AND j.rater_user_id = p_user AND j.kind = 'human')
            AND NOT (p.id = ANY(v_tried))
            ORDER BY p.id LIMIT 1 FOR NO KEY UPDATE OF p SKIP LOCKED;
        END IF;
        IF v_pair IS NULL THEN
            SELECT p.id INTO v_pair FROM preferences_candidatepair p
            JOIN annotate_post po ON po.id = p.post_id
            WHERE po.project_id = p_project AND p.id >= p_floor
            AND p.known_preference IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM preferences_assignment a
                            WHERE a.pair_id = p.id AND a.pair_id >= p_floor
                            AND (a.status = 'done'
                                 OR (a.status = 'reserved' AND a.reserved_until > p_now)))
            AND p.source <> 'gold'
            AND NOT EXISTS (SELECT 1 FROM preferences_assignment o
                            WHERE o.pair_id = p.id AND o.pair_id >= p_floor
                            AND o.rater_id = p_user AND o.status <> 'reserved')
            AND NOT EXISTS (SELECT 1 FROM preferences_judgement j
                            WHERE j.pair_id = p.id AND j.pair_id >= p_floor
                            AND j.rater_user_id = p_user AND j.kind = 'human')
            AND NOT (p.id = ANY(v_tried))
            ORDER BY p.id LIMIT 1 FOR NO KEY UPDATE OF p SKIP LOCKED;
        END IF;
        EXIT WHEN v_pair IS NULL;
        -- Reserve if the pair is still open, counted again under its lock. The rater's own
        -- expired or skipped row for the pair is reused (one row per pair and rater).
        RETURN QUERY
        INSERT INTO preferences_assignment AS n
            (project_id, pair_id, rater_id, status, shown_order, token, reserved_at,
             reserved_until, submitted_at)
        SELECT p_project, v_pair, p_user, 'reserved', p_order, p_token, p_now, p_until, NULL
        WHERE (SELECT COUNT(*) FROM preferences_assignment a
               WHERE a.pair_id = v_pair AND a.rater_id <> p_user
               AND (a.status = 'done'
                    OR (a.status = 'reserved' AND a.reserved_until > p_now))) < p_overlap
        ON CONFLICT (pair_id, rater_id) DO UPDATE SET
            project_id = EXCLUDED.project_id, status = EXCLUDED.status,
            shown_order = EXCLUDED.shown_order, token = EXCLUDED.token,
            reserved_at = EXCLUDED.reserved_at, reserved_until = EXCLUDED.reserved_until,
            submitted_at = NULL
        RETURNING n.id, n.pair_id, n.shown_order::varchar, n.reserved_at, n.reserved_until;
        IF FOUND THEN
            RETURN;
        END IF;
        v_tried := v_tried || v_pair;
    END LOOP;
END
$fn$;
