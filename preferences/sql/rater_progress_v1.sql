-- The rater's progress per project (preferences_raterprogress), kept by triggers on
-- preferences_assignment (PostgreSQL). Installed by migration preferences 0008, which also
-- fills the table from the history; never edited in place: a change is a new file and a new
-- migration.
--
-- What it holds is what preferences.selectors.rater_progress counts from the history: the
-- rater's submitted (done) items in the project, and the seconds spent on the newest 200 of
-- them (by submitted_at, then id; 200 is selectors.PROGRESS_MEDIAN_ITEMS), oldest first.
-- A submission newer than the newest one so far (nearly every Submit) is added in place;
-- anything else (an undo, a changed or deleted submission, a submission older than the newest)
-- counts the rater's project again from the history, as rarely as those happen.

-- Count (project, rater) again from the history. With p_create a missing row is made; without
-- it (deletes) a missing row stays missing: the project or rater may be being deleted.
CREATE OR REPLACE FUNCTION altpref_rater_progress_recount(
    p_project bigint, p_rater bigint, p_create boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $fn$
BEGIN
    IF p_create THEN
        INSERT INTO preferences_raterprogress
            (project_id, rater_id, items_done, recent_seconds, newest_at, newest_id)
        VALUES (p_project, p_rater, 0, '[]', NULL, NULL)
        ON CONFLICT (rater_id, project_id) DO NOTHING;
    END IF;
    -- Row-locked first, then counted by a new statement: in READ COMMITTED it takes a new
    -- snapshot, which sees every submission committed before the lock was granted (a
    -- concurrent Submit by the same rater adds its item after this, under the same lock).
    PERFORM 1 FROM preferences_raterprogress
    WHERE project_id = p_project AND rater_id = p_rater FOR NO KEY UPDATE;
    UPDATE preferences_raterprogress rp SET
        items_done = (SELECT COUNT(*) FROM preferences_assignment d
                      WHERE d.rater_id = p_rater AND d.project_id = p_project
                      AND d.status = 'done'),
        recent_seconds = COALESCE(n.seconds, '[]'),
        newest_at = n.newest_at,
        newest_id = n.newest_id
    FROM (
        SELECT jsonb_agg(r.seconds ORDER BY r.submitted_at, r.id) AS seconds,
               (array_agg(r.submitted_at ORDER BY r.submitted_at DESC, r.id DESC))[1] AS newest_at,
               (array_agg(r.id ORDER BY r.submitted_at DESC, r.id DESC))[1] AS newest_id
        FROM (SELECT d.id, d.submitted_at,
                     EXTRACT(EPOCH FROM d.submitted_at - d.reserved_at)::float8 AS seconds
              FROM preferences_assignment d
              WHERE d.rater_id = p_rater AND d.project_id = p_project AND d.status = 'done'
              ORDER BY d.submitted_at DESC, d.id DESC LIMIT 200) r
    ) n
    WHERE rp.project_id = p_project AND rp.rater_id = p_rater;
END
$fn$;

-- Inserted or updated assignments, one row at a time (Submit changes one).
CREATE OR REPLACE FUNCTION altpref_rater_progress_row()
RETURNS trigger
LANGUAGE plpgsql VOLATILE
AS $fn$
DECLARE
    v_was boolean := TG_OP = 'UPDATE' AND OLD.status = 'done';
    v_is boolean := NEW.status = 'done';
BEGIN
    IF NOT v_was AND NOT v_is THEN
        RETURN NULL;
    END IF;
    IF v_was AND v_is AND OLD.project_id = NEW.project_id AND OLD.rater_id = NEW.rater_id
       AND OLD.submitted_at IS NOT DISTINCT FROM NEW.submitted_at
       AND OLD.reserved_at IS NOT DISTINCT FROM NEW.reserved_at THEN
        RETURN NULL;  -- nothing the progress reads changed
    END IF;
    IF v_was THEN
        -- Undone, moved or re-timed: count again (the new state included when it is done).
        PERFORM altpref_rater_progress_recount(OLD.project_id, OLD.rater_id, true);
        IF v_is AND (OLD.project_id <> NEW.project_id OR OLD.rater_id <> NEW.rater_id) THEN
            PERFORM altpref_rater_progress_recount(NEW.project_id, NEW.rater_id, true);
        END IF;
        RETURN NULL;
    END IF;
    -- Newly submitted. Newer than the rater's newest item (the usual case): added in place,
    -- the oldest of the 200 dropped. The row comparison is NULL (so no row is updated) when
    -- the rater has no item yet or the submission has no time: counted again instead.
    UPDATE preferences_raterprogress rp SET
        items_done = rp.items_done + 1,
        recent_seconds = jsonb_path_query_array(
            rp.recent_seconds
                || to_jsonb(EXTRACT(EPOCH FROM NEW.submitted_at - NEW.reserved_at)::float8),
            '$[last - 199 to last]'),
        newest_at = NEW.submitted_at,
        newest_id = NEW.id
    WHERE rp.project_id = NEW.project_id AND rp.rater_id = NEW.rater_id
    AND (NEW.submitted_at, NEW.id) > (rp.newest_at, rp.newest_id);
    IF NOT FOUND THEN
        PERFORM altpref_rater_progress_recount(NEW.project_id, NEW.rater_id, true);
    END IF;
    RETURN NULL;
END
$fn$;

-- Deleted assignments, once per statement: deleting a project's thousands of assignments
-- counts each of its raters once, not once per row.
CREATE OR REPLACE FUNCTION altpref_rater_progress_deleted()
RETURNS trigger
LANGUAGE plpgsql VOLATILE
AS $fn$
BEGIN
    PERFORM altpref_rater_progress_recount(g.project_id, g.rater_id, false)
    FROM (SELECT DISTINCT project_id, rater_id FROM gone WHERE status = 'done') g;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER altpref_rater_progress_row
    AFTER INSERT OR UPDATE OF status, project_id, rater_id, reserved_at, submitted_at
    ON preferences_assignment
    FOR EACH ROW EXECUTE FUNCTION altpref_rater_progress_row();

CREATE TRIGGER altpref_rater_progress_deleted
    AFTER DELETE ON preferences_assignment
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION altpref_rater_progress_deleted();

-- Every (project, rater) with submitted items, from the history as it stands.
SELECT altpref_rater_progress_recount(project_id, rater_id, true)
FROM (SELECT DISTINCT project_id, rater_id FROM preferences_assignment
      WHERE status = 'done') g;
