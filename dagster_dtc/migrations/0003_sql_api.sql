-- A SQL API for systems that are not Python: reopen or skip a range of windows with one call, from a
-- role that may read the table and execute these functions but not write the table itself.
--
--   SELECT dtc_tasks_reopen('daily_report', '2026-12-01', '2026-12-08', 'late invoices');
--   SELECT dtc_tasks_skip('daily_report', '2026-12-24', '2026-12-27', 'holiday');
--
-- Each function runs exactly the UPDATE that TaskStore.reopen / TaskStore.skip run, so it goes
-- through the guard trigger: a window held by a live worker is marked reopen_requested instead of
-- being handed to a second worker. It returns the number of windows changed.
--
-- SECURITY DEFINER functions must not resolve names through the caller's search_path, so theirs is
-- pinned to pg_catalog, pg_temp and the table is named with its schema. An unqualified table name
-- is resolved once, here, through the search_path of the migration (where the table was found).

DO $migration$
DECLARE
    target text;
    fn record;
BEGIN
    SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
      INTO STRICT target
      FROM pg_catalog.pg_class AS c
      JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
     WHERE c.oid = '{table}'::regclass;

    -- The two functions differ only in the status they set and the windows they touch.
    FOR fn IN
        SELECT * FROM (VALUES
            -- the same statement as queries.sql "reopen"
            ('{reopen_fn}', 'AVAILABLE',
             $cond$status IN ('COMPLETE', 'SKIP', 'ACQUIRED')
                   OR (status = 'AVAILABLE' AND max_attempts IS NOT NULL AND attempt >= max_attempts)$cond$),
            -- what TaskStore.skip does: every window not yet COMPLETE or SKIP becomes SKIP; a held
            -- window's holder is fenced off by the guard trigger (its token stops working)
            ('{skip_fn}', 'SKIP', $cond$status IN ('AVAILABLE', 'ACQUIRED')$cond$)
        ) AS f (function_name, new_status, applies_to)
    LOOP
        EXECUTE pg_catalog.format($function$
            CREATE OR REPLACE FUNCTION %2$s(
                p_name text, p_start timestamptz, p_end timestamptz, p_reason text DEFAULT NULL
            ) RETURNS integer
            LANGUAGE plpgsql VOLATILE SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS $body$
            DECLARE
                changed integer;
            BEGIN
                IF p_name IS NULL OR p_start IS NULL OR p_end IS NULL THEN
                    RAISE EXCEPTION 'name, start and end must not be NULL'
                        USING ERRCODE = 'null_value_not_allowed';
                END IF;
                IF p_end <= p_start THEN
                    RAISE EXCEPTION 'end %% must be after start %%', p_end, p_start
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                UPDATE %1$s
                   SET status = %3$L, message = coalesce(p_reason, message)
                 WHERE name = p_name AND bucket_time >= p_start AND bucket_time < p_end
                   AND (%4$s);
                GET DIAGNOSTICS changed = ROW_COUNT;
                RETURN changed;
            END
            $body$
        $function$, target, fn.function_name, fn.new_status, fn.applies_to);
    END LOOP;
END
$migration$;

-- New functions are executable by PUBLIC by default: only the roles granted EXECUTE may call these.
REVOKE ALL ON FUNCTION {reopen_fn}(text, timestamptz, timestamptz, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION {skip_fn}(text, timestamptz, timestamptz, text) FROM PUBLIC;
