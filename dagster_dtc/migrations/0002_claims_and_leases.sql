-- Widen the Java varchar(32) columns (varchar -> text is binary-coercible: no table rewrite), then
-- add what claiming needs: a claim token (generation), a write counter that tells our own writes from
-- external ones (revision), retry state (attempt, max_attempts, not_before) and a lease.
ALTER TABLE {table}
    ALTER COLUMN name TYPE text,
    ALTER COLUMN status TYPE text,
    ALTER COLUMN created_by TYPE text,
    ALTER COLUMN acquired_by TYPE text;

UPDATE {table} SET fail_count = 0 WHERE fail_count IS NULL;

ALTER TABLE {table}
    ALTER COLUMN fail_count SET DEFAULT 0,
    ALTER COLUMN fail_count SET NOT NULL,
    ALTER COLUMN status SET DEFAULT 'AVAILABLE',
    ALTER COLUMN created_by SET DEFAULT current_user,
    ALTER COLUMN created_at SET DEFAULT now(),
    ADD COLUMN IF NOT EXISTS generation       bigint  NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS revision         bigint  NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS attempt          integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS max_attempts     integer,
    ADD COLUMN IF NOT EXISTS not_before       timestamptz,
    ADD COLUMN IF NOT EXISTS lease_expires_at timestamptz,
    ADD COLUMN IF NOT EXISTS reopen_requested boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS reopened_at      timestamptz,
    ADD CONSTRAINT {status_check}
        CHECK (status IN ('AVAILABLE', 'ACQUIRED', 'COMPLETE', 'SKIP'));

-- Claiming scans only AVAILABLE rows of one name in bucket order: a partial index keeps that flat
-- however many COMPLETE rows pile up.
CREATE INDEX IF NOT EXISTS {available_idx} ON {table} (name, bucket_time) WHERE status = 'AVAILABLE';
-- Finding expired leases scans only ACQUIRED rows. Keyed by (name, bucket_time), not by lease: the
-- planner prefers this small index to the primary key for complete/fail/heartbeat (they filter on
-- status = 'ACQUIRED'), and keyed by lease it had to read every held window of the name for each of
-- them. Without lease_expires_at in any index, a heartbeat is also a HOT update (no index writes).
CREATE INDEX IF NOT EXISTS {lease_idx} ON {table} (name, bucket_time) WHERE status = 'ACQUIRED';

-- External systems reopen windows with a plain UPDATE ... SET status = 'AVAILABLE'. Every write made
-- by dagster-dtc bumps revision, so this trigger runs only for writes from elsewhere, and only when
-- the statement assigns status. It turns such a write into a proper DTC transition.
CREATE OR REPLACE FUNCTION {guard_fn}() RETURNS trigger
LANGUAGE plpgsql AS $guard$
BEGIN
    NEW.revision := OLD.revision + 1;
    IF NEW.status = 'AVAILABLE' THEN
        IF OLD.status = 'ACQUIRED' AND OLD.lease_expires_at IS NOT NULL
           AND OLD.lease_expires_at > now() THEN
            -- A live worker holds it: never hand it to a second worker. Mark it; the holder's
            -- complete/fail/skip then puts it back to AVAILABLE instead of finishing it.
            NEW.status := 'ACQUIRED';
            NEW.reopen_requested := true;
            IF NEW.message IS NOT DISTINCT FROM OLD.message THEN
                NEW.message := 'reopen requested while held by ' || coalesce(OLD.acquired_by, '?');
            END IF;
        ELSE
            IF OLD.status = 'ACQUIRED' THEN
                -- expired or lease-less holder: fence it off with a new generation
                NEW.generation := OLD.generation + 1;
            END IF;
            NEW.attempt := 0;
            NEW.not_before := NULL;
            NEW.lease_expires_at := NULL;
            NEW.reopen_requested := false;
            NEW.reopened_at := now();
            IF NEW.message IS NOT DISTINCT FROM OLD.message AND OLD.status <> 'AVAILABLE' THEN
                NEW.message := 'reopened (was ' || OLD.status || ')';
            END IF;
        END IF;
    ELSIF NEW.status IN ('COMPLETE', 'SKIP') AND OLD.status = 'ACQUIRED' THEN
        -- finished from outside: the holder's token must stop working
        NEW.generation := OLD.generation + 1;
        NEW.lease_expires_at := NULL;
        NEW.reopen_requested := false;
        NEW.completed_at := coalesce(NEW.completed_at, now());
    ELSIF NEW.status = 'ACQUIRED' AND OLD.status <> 'ACQUIRED' THEN
        -- acquired by a non-DTC writer (e.g. the Java library): new token, no lease
        NEW.generation := OLD.generation + 1;
        NEW.lease_expires_at := NULL;
        NEW.acquired_at := coalesce(NEW.acquired_at, now());
    END IF;
    RETURN NEW;
END
$guard$;

DROP TRIGGER IF EXISTS {guard_trigger} ON {table};
CREATE TRIGGER {guard_trigger}
    BEFORE UPDATE OF status ON {table}
    FOR EACH ROW
    WHEN (NEW.revision = OLD.revision)
    EXECUTE FUNCTION {guard_fn}();
