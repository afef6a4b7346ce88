-- Named queries of the window store. `{table}` is the validated table identifier; every value is a
-- bound parameter. Every write made here bumps `revision`: that is how the guard trigger tells our
-- transitions from external UPDATEs. Every state change is guarded by status and claim token.

-- name: columns
-- The column list every read returns (kept in one place so records parse one way).
name, bucket_time, bucket_interval::text AS bucket_interval, status, created_by, created_at,
acquired_by, acquired_at, completed_at, fail_count, message, generation, attempt, max_attempts,
not_before, lease_expires_at, reopen_requested, reopened_at

-- name: interval_of_name
SELECT bucket_interval::text FROM {table} WHERE name = %(name)s LIMIT 1

-- name: create_window
INSERT INTO {table} (name, bucket_time, bucket_interval, status, created_by, created_at, max_attempts)
VALUES (%(name)s, %(bucket_time)s, %(interval)s::interval, 'AVAILABLE', %(worker)s, now(), %(max_attempts)s)
ON CONFLICT (name, bucket_time) DO NOTHING

-- name: create_windows
-- One set-based statement for a whole range; existing rows are left untouched. The anti-join skips
-- them at a fraction of the cost of ON CONFLICT, whose speculative insertion doubles the time of a
-- large insert. A concurrent creator can still insert some of these first: the statement then fails
-- with a unique violation, having inserted nothing, and the store runs create_windows_racing.
INSERT INTO {table} (name, bucket_time, bucket_interval, status, created_by, created_at, max_attempts)
SELECT %(name)s, g, %(interval)s::interval, 'AVAILABLE', %(worker)s, now(), %(max_attempts)s
FROM generate_series(%(first)s::timestamptz, %(last)s::timestamptz, %(interval)s::interval) AS g
WHERE NOT EXISTS (SELECT 1 FROM {table} AS x WHERE x.name = %(name)s AND x.bucket_time = g)

-- name: create_windows_racing
-- create_windows when another creator raced it: the same, but tolerating rows that appear meanwhile.
INSERT INTO {table} (name, bucket_time, bucket_interval, status, created_by, created_at, max_attempts)
SELECT %(name)s, g, %(interval)s::interval, 'AVAILABLE', %(worker)s, now(), %(max_attempts)s
FROM generate_series(%(first)s::timestamptz, %(last)s::timestamptz, %(interval)s::interval) AS g
WHERE NOT EXISTS (SELECT 1 FROM {table} AS x WHERE x.name = %(name)s AND x.bucket_time = g)
ON CONFLICT (name, bucket_time) DO NOTHING

-- name: get
SELECT {columns} FROM {table} WHERE name = %(name)s AND bucket_time = %(bucket_time)s

-- name: query
SELECT {columns} FROM {table}
WHERE (%(name)s::text IS NULL OR name = %(name)s)
  AND (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s::text[]))
  AND (%(bucket_start)s::timestamptz IS NULL OR bucket_time >= %(bucket_start)s)
  AND (%(bucket_end)s::timestamptz IS NULL OR bucket_time < %(bucket_end)s)
  AND (%(acquired_start)s::timestamptz IS NULL OR acquired_at >= %(acquired_start)s)
  AND (%(acquired_end)s::timestamptz IS NULL OR acquired_at < %(acquired_end)s)
ORDER BY name, bucket_time
LIMIT %(limit)s

-- name: claim
-- Claim in one statement: lock the oldest (or newest) claimable rows that nobody else has locked,
-- and hand each a fresh generation (the claim token) and a lease.
WITH candidates AS (
    SELECT name, bucket_time
    FROM {table}
    WHERE name = %(name)s
      AND status = 'AVAILABLE'
      AND (not_before IS NULL OR not_before <= now())
      AND (max_attempts IS NULL OR attempt < max_attempts)
    ORDER BY bucket_time {order}
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE {table} AS t
SET status = 'ACQUIRED',
    generation = t.generation + 1,
    revision = t.revision + 1,
    attempt = t.attempt + 1,
    acquired_by = %(worker)s,
    acquired_at = now(),
    completed_at = NULL,
    lease_expires_at = now() + make_interval(secs => %(lease)s),
    reopen_requested = false
FROM candidates AS c
WHERE t.name = c.name AND t.bucket_time = c.bucket_time
RETURNING {returning}

-- name: lock_window
-- Acquire-by-key, step 1: lock the row or fail at once (NOWAIT) when a transaction holds it.
SELECT {columns}, lease_expires_at <= now() AS lease_expired
FROM {table} WHERE name = %(name)s AND bucket_time = %(bucket_time)s
FOR UPDATE NOWAIT

-- name: acquire_locked
-- Acquire-by-key, step 2, in the same transaction as lock_window.
UPDATE {table} AS t
SET status = 'ACQUIRED',
    generation = t.generation + 1,
    revision = t.revision + 1,
    attempt = CASE WHEN t.status = 'AVAILABLE' THEN t.attempt + 1 ELSE 1 END,
    fail_count = t.fail_count + %(fail_increment)s,
    message = coalesce(%(message)s, t.message),
    acquired_by = %(worker)s,
    acquired_at = now(),
    completed_at = NULL,
    not_before = NULL,
    lease_expires_at = now() + make_interval(secs => %(lease)s),
    reopen_requested = false
WHERE t.name = %(name)s AND t.bucket_time = %(bucket_time)s
RETURNING {returning}

-- name: heartbeat
UPDATE {table}
SET lease_expires_at = now() + make_interval(secs => %(lease)s),
    acquired_by = coalesce(%(worker)s, acquired_by),
    revision = revision + 1
WHERE name = %(name)s AND bucket_time = %(bucket_time)s
  AND status = 'ACQUIRED' AND generation = %(generation)s
RETURNING reopen_requested, lease_expires_at

-- name: finish
-- complete or skip. A window reopened while held goes back to AVAILABLE instead, with a fresh
-- attempt budget, so the late data is processed by the next claim.
UPDATE {table}
SET status = CASE WHEN reopen_requested THEN 'AVAILABLE' ELSE %(status)s END,
    completed_at = CASE WHEN reopen_requested THEN NULL ELSE now() END,
    message = CASE WHEN reopen_requested
                   THEN 'reopened while ' || coalesce(acquired_by, '?') || ' held it (' || coalesce(message, '')
                        || '); its result was discarded and the window will run again'
                   ELSE %(message)s END,
    attempt = CASE WHEN reopen_requested THEN 0 ELSE attempt END,
    reopened_at = CASE WHEN reopen_requested THEN now() ELSE reopened_at END,
    not_before = NULL,
    lease_expires_at = NULL,
    reopen_requested = false,
    revision = revision + 1
WHERE name = %(name)s AND bucket_time = %(bucket_time)s
  AND status = 'ACQUIRED' AND generation = %(generation)s
RETURNING {columns}

-- name: fail
-- Back to AVAILABLE with fail_count + 1; the next attempt waits an exponential backoff.
UPDATE {table}
SET status = 'AVAILABLE',
    fail_count = fail_count + 1,
    message = %(message)s,
    not_before = CASE WHEN reopen_requested THEN NULL
                      ELSE now() + make_interval(secs => least(%(backoff_max)s,
                               %(backoff_base)s * power(2, least(greatest(attempt - 1, 0), 40)))) END,
    attempt = CASE WHEN reopen_requested THEN 0 ELSE attempt END,
    lease_expires_at = NULL,
    reopen_requested = false,
    revision = revision + 1
WHERE name = %(name)s AND bucket_time = %(bucket_time)s
  AND status = 'ACQUIRED' AND generation = %(generation)s
RETURNING {columns}

-- name: reap_expired
-- Windows whose holder stopped renewing its lease (killed, hung, lost its connection) go back to
-- AVAILABLE as a failed attempt. SKIP LOCKED: never wait behind a holder's own transition.
UPDATE {table} AS t
SET status = 'AVAILABLE',
    fail_count = t.fail_count + 1,
    message = 'lease expired: ' || coalesce(t.acquired_by, '?') || ' stopped renewing claim '
              || t.generation || ' at ' || to_char(t.lease_expires_at, 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    not_before = CASE WHEN t.reopen_requested THEN NULL
                      ELSE now() + make_interval(secs => least(%(backoff_max)s,
                               %(backoff_base)s * power(2, least(greatest(t.attempt - 1, 0), 40)))) END,
    attempt = CASE WHEN t.reopen_requested THEN 0 ELSE t.attempt END,
    lease_expires_at = NULL,
    reopen_requested = false,
    revision = t.revision + 1
FROM (
    SELECT name, bucket_time FROM {table}
    WHERE (%(name)s::text IS NULL OR name = %(name)s)
      AND status = 'ACQUIRED' AND lease_expires_at < now()
    FOR UPDATE SKIP LOCKED
) AS x
WHERE t.name = x.name AND t.bucket_time = x.bucket_time
RETURNING t.name, t.bucket_time

-- name: reopen
-- Goes through the guard trigger exactly like an external UPDATE: held windows are marked, the rest
-- become AVAILABLE with a fresh attempt budget. Includes AVAILABLE windows that used up max_attempts.
UPDATE {table}
SET status = 'AVAILABLE', message = coalesce(%(reason)s, message)
WHERE name = %(name)s AND bucket_time >= %(start)s AND bucket_time < %(end)s
  AND (status IN ('COMPLETE', 'SKIP', 'ACQUIRED')
       OR (status = 'AVAILABLE' AND max_attempts IS NOT NULL AND attempt >= max_attempts))

-- name: set_status
-- The Java setTaskStatus: set the status of a set of windows; the guard trigger applies the rules.
UPDATE {table}
SET status = %(status)s, message = coalesce(%(message)s, message)
WHERE name = %(name)s AND bucket_time = ANY(%(bucket_times)s::timestamptz[])

-- name: stats
SELECT name,
       count(*) FILTER (WHERE status = 'AVAILABLE') AS available,
       count(*) FILTER (WHERE status = 'ACQUIRED') AS acquired,
       count(*) FILTER (WHERE status = 'COMPLETE') AS complete,
       count(*) FILTER (WHERE status = 'SKIP') AS skip,
       min(bucket_time) FILTER (WHERE status = 'AVAILABLE') AS oldest_available,
       max(fail_count) AS max_fail_count
FROM {table}
WHERE (%(name)s::text IS NULL OR name = %(name)s)
GROUP BY name
ORDER BY name

-- name: claim_diagnosis
-- Why a claim found nothing: counts by reason for one name. Each window counts under one reason:
-- an exhausted window that is also inside its backoff counts as exhausted only. Only the AVAILABLE
-- and ACQUIRED rows are read (through their partial indexes, however many windows are finished);
-- when none is open, one primary-key probe tells "none exist" from "all finished".
SELECT o.backing_off, o.exhausted, o.held, o.available,
       o.held + o.available > 0 OR EXISTS (SELECT 1 FROM {table} WHERE name = %(name)s) AS any_exist
FROM (
    SELECT count(*) FILTER (WHERE status = 'AVAILABLE' AND not_before > now()
                            AND NOT (max_attempts IS NOT NULL AND attempt >= max_attempts)) AS backing_off,
           count(*) FILTER (WHERE status = 'AVAILABLE' AND max_attempts IS NOT NULL
                            AND attempt >= max_attempts) AS exhausted,
           count(*) FILTER (WHERE status = 'ACQUIRED') AS held,
           count(*) FILTER (WHERE status = 'AVAILABLE') AS available
    FROM {table} WHERE name = %(name)s AND (status = 'AVAILABLE' OR status = 'ACQUIRED')
) AS o

-- name: held_by
-- The windows of one name that one holder (e.g. a sensor) claimed and nobody has taken over.
SELECT {columns} FROM {table}
WHERE name = %(name)s AND status = 'ACQUIRED' AND acquired_by = %(worker)s
ORDER BY bucket_time

-- name: renew_many
-- Renew the leases of many claims of one holder at once (a sensor keeping the windows of its queued
-- runs): one statement instead of a heartbeat each. A claim is renewed only while its window is
-- still ACQUIRED by that holder under the same token. Rows are locked in bucket order, so two such
-- statements cannot deadlock; a row changed while we waited for its lock is re-checked and skipped.
WITH held AS (
    SELECT t.name, t.bucket_time
    FROM {table} AS t
    JOIN unnest(%(bucket_times)s::timestamptz[], %(generations)s::bigint[]) AS c(bucket_time, generation)
      ON t.bucket_time = c.bucket_time AND t.generation = c.generation
    WHERE t.name = %(name)s AND t.status = 'ACQUIRED' AND t.acquired_by = %(worker)s
    ORDER BY t.bucket_time
    FOR UPDATE OF t
)
UPDATE {table} AS t
SET lease_expires_at = now() + make_interval(secs => %(lease)s),
    revision = t.revision + 1
FROM held AS h
WHERE t.name = h.name AND t.bucket_time = h.bucket_time
RETURNING t.bucket_time, t.generation, t.reopen_requested

-- name: adopt
-- A process takes over a claim made elsewhere (a sensor's claim, picked up by the run it launched):
-- it must present the token, and the window must still be held by one of the expected holders.
UPDATE {table}
SET acquired_by = %(worker)s,
    lease_expires_at = now() + make_interval(secs => %(lease)s),
    revision = revision + 1
WHERE name = %(name)s AND bucket_time = %(bucket_time)s
  AND status = 'ACQUIRED' AND generation = %(generation)s
  AND acquired_by = ANY(%(holders)s::text[])
RETURNING {columns}
