-- scimledger schema: authoritative and idempotent (`scimledger migrate`; `serve` applies it at start).
-- Sections in a fixed order: tables (the log), functions, triggers, indexes, read models, privileges.

------------------------------------------------------------------------------------------------------------
-- 1. The event log: append-only.
--
-- position         unique, from the sequence events_position_seq, drawn under the workspace's append lock:
--                  increasing in commit order within a workspace; across workspaces it may have gaps and
--                  need not follow commit order (tenants append in parallel: docs/write-path.md)
-- workspace_id     the tenant; the hash chain runs per workspace
-- seq              the workspace's own gapless sequence 1, 2, 3, ... in chain order (NULL on events
--                  appended before it existed; `audit verify` checks it)
-- tx               the id of the appending transaction (xid8; '0' before it existed): readers of the whole
--                  log consume it in (tx, position) order, up to pg_snapshot_xmin(pg_current_snapshot()),
--                  which never misses or repeats an event (docs/write-path.md, "The order of the log")
-- stream_id        the aggregate id; (stream_id, stream_version) is unique: optimistic concurrency
-- event_type       the stable event name (e.g. MemberProvisioned); a public contract, never renamed
-- state            the event's exact encoded bytes (what the Mapper wrote); `data` is a jsonb view of them
-- metadata         actor {kind, id, name}, source scim|admin|system, request_id, user_agent, client_addr
-- recorded_at      clock_timestamp() taken under the append lock (non-decreasing in position order)
-- prev_hash, hash  the per-workspace hash chain, canonical encoding:
--     hash = sha256( prev_hash
--                 || utf8( position | '|' | workspace_id | '|' | stream_id | '|' | stream_version | '|'
--                          | event_type | '|' | recorded_at as YYYY-MM-DDTHH:MM:SS.ffffffZ (UTC) )
--                 || sha256(state)
--                 || sha256(utf8(metadata::text)) )
--     numbers in decimal, uuids in lower-case hyphenated form; the first event of a workspace has
--     prev_hash = 32 zero bytes.
------------------------------------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS events (
    position        bigint      PRIMARY KEY,
    workspace_id    uuid        NOT NULL,
    stream_id       uuid        NOT NULL,
    stream_version  bigint      NOT NULL,
    event_type      text        NOT NULL,
    state           bytea       NOT NULL,
    data            jsonb,
    metadata        jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL,
    prev_hash       bytea       NOT NULL,
    hash            bytea       NOT NULL,
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
);
-- Added by issue 9 (tenants in parallel); constant defaults add them without rewriting or updating a row.
ALTER TABLE events ADD COLUMN IF NOT EXISTS seq bigint;
ALTER TABLE events ADD COLUMN IF NOT EXISTS tx xid8 NOT NULL DEFAULT '0';
CREATE SEQUENCE IF NOT EXISTS events_position_seq AS bigint;
-- A log written before the sequence existed continues after its last position (set once, before first use).
SELECT setval('events_position_seq', max(position)) FROM events
HAVING max(position) IS NOT NULL AND NOT (SELECT is_called FROM events_position_seq);

-- Snapshots of long streams: a cache, not history (safe to delete; the log is the truth).
CREATE TABLE IF NOT EXISTS snapshots (
    stream_id       uuid        PRIMARY KEY,
    stream_version  bigint      NOT NULL,
    topic           text        NOT NULL,
    state           bytea       NOT NULL
);

-- How far each lagging projection has applied the log; updated in the same transaction as its rows.
CREATE TABLE IF NOT EXISTS projection_tracking (
    projection      text        PRIMARY KEY,
    position        bigint      NOT NULL
);
-- The cursor is (tx, position), the log's order (see `tx` above); '0' before issue 9.
ALTER TABLE projection_tracking ADD COLUMN IF NOT EXISTS tx xid8 NOT NULL DEFAULT '0';

------------------------------------------------------------------------------------------------------------
-- 2. Functions
------------------------------------------------------------------------------------------------------------

-- The one append function: one call (one round trip) per command or group-commit batch.
--
-- Locks (docs/write-path.md): the workspace's append lock (exclusive, held until commit: within a workspace
-- position, seq and the chain follow commit order) and the log's freeze lock in shared mode (any number of
-- workspaces append at once; `projections rebuild` takes it exclusively to hold the whole log still).
-- The transaction's id must be taken under these locks (the first write of the transaction is the INSERT
-- below), so that within a workspace tx order is commit order too; a transaction that wrote before its
-- first append is refused. Relies on the unique (stream_id, stream_version) for the optimistic version
-- check, extends the workspace's hash chain and notifies listeners on commit.
DROP FUNCTION IF EXISTS scimledger_append(uuid, uuid[], bigint[], text[], bytea[], jsonb[], jsonb);
CREATE OR REPLACE FUNCTION scimledger_append(
    p_workspace_id uuid,
    p_stream_ids   uuid[],
    p_versions     bigint[],
    p_types        text[],
    p_states       bytea[],
    p_datas        jsonb[],
    p_metadata     jsonb[]   -- one per event: a batch may carry several commands (group commit)
) RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE
    v_position  bigint;
    v_seq       bigint;
    v_prev      bytea;
    v_hash      bytea;
    v_at        timestamptz;
    v_at_text   text;
    v_positions bigint[] := '{}';
    i           integer;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        -- the chain head must be read after the lock, from a fresh snapshot.
        RAISE EXCEPTION 'scimledger_append needs READ COMMITTED isolation';
    END IF;
    IF pg_current_xact_id_if_assigned() IS NOT NULL
       AND current_setting('scimledger.appended', true) IS DISTINCT FROM p_workspace_id::text THEN
        RAISE EXCEPTION 'scimledger_append must be the first write of its transaction (docs/write-path.md)';
    END IF;
    PERFORM pg_advisory_xact_lock_shared(7243002);
    PERFORM pg_advisory_xact_lock(hashtextextended(p_workspace_id::text, 7243003));
    PERFORM set_config('scimledger.appended', p_workspace_id::text, true);
    SELECT e.hash, e.seq INTO v_prev, v_seq
      FROM events e WHERE e.workspace_id = p_workspace_id ORDER BY e.position DESC LIMIT 1;
    IF NOT FOUND THEN
        v_prev := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
        v_seq := 0;
    ELSIF v_seq IS NULL THEN  -- the first append since `seq` exists: count the workspace's earlier events
        v_seq := (SELECT count(*) FROM events WHERE workspace_id = p_workspace_id);
    END IF;
    v_at := clock_timestamp();
    v_at_text := to_char(v_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
    FOR i IN 1 .. coalesce(array_length(p_stream_ids, 1), 0) LOOP
        v_position := nextval('events_position_seq');
        v_seq := v_seq + 1;
        v_hash := sha256(
            v_prev
            || convert_to(concat_ws('|', v_position, p_workspace_id, p_stream_ids[i], p_versions[i],
                                    p_types[i], v_at_text), 'UTF8')
            || sha256(p_states[i])
            || sha256(convert_to(p_metadata[i]::text, 'UTF8')));
        INSERT INTO events (position, workspace_id, stream_id, stream_version, event_type, state, data,
                            metadata, recorded_at, prev_hash, hash, seq, tx)
        VALUES (v_position, p_workspace_id, p_stream_ids[i], p_versions[i], p_types[i], p_states[i],
                p_datas[i], p_metadata[i], v_at, v_prev, v_hash, v_seq, pg_current_xact_id());
        v_positions := v_positions || v_position;
        v_prev := v_hash;
    END LOOP;
    IF v_position IS NOT NULL THEN
        PERFORM pg_notify('scimledger_events', v_position::text);
    END IF;
    RETURN v_positions;
END;
$$;

CREATE OR REPLACE FUNCTION scimledger_forbid_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

------------------------------------------------------------------------------------------------------------
-- 3. Triggers: UPDATE, DELETE and TRUNCATE of the log raise.
------------------------------------------------------------------------------------------------------------
CREATE OR REPLACE TRIGGER events_no_update BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION scimledger_forbid_change();
CREATE OR REPLACE TRIGGER events_no_delete BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION scimledger_forbid_change();
CREATE OR REPLACE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION scimledger_forbid_change();

------------------------------------------------------------------------------------------------------------
-- 4. Indexes on the log
------------------------------------------------------------------------------------------------------------
CREATE INDEX IF NOT EXISTS events_workspace_position ON events (workspace_id, position);
-- The log's order for readers of every workspace (the catch-up runner, rebuilds): see `tx` in section 1.
CREATE INDEX IF NOT EXISTS events_tx_position ON events (tx, position);
CREATE INDEX IF NOT EXISTS events_type_position ON events (event_type, position);
-- The audit API (src/scimledger/audit/log_query.py): each filter walks its index in position order.
-- member/team are partial (only events naming one are indexed); other modules use these expressions too.
CREATE INDEX IF NOT EXISTS events_member ON events (workspace_id, (data->>'member_id'), position)
    WHERE data->>'member_id' IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_team ON events (workspace_id, (data->>'team_id'), position)
    WHERE data->>'team_id' IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_actor ON events (workspace_id, (metadata->'actor'->>'id'), position);
CREATE INDEX IF NOT EXISTS events_source ON events (workspace_id, (metadata->>'source'), position);
CREATE INDEX IF NOT EXISTS events_request ON events (workspace_id, (metadata->>'request_id'), position)
    WHERE metadata->>'request_id' IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_workspace_type ON events (workspace_id, event_type, position);
CREATE INDEX IF NOT EXISTS events_recorded_at ON events (workspace_id, recorded_at, position);
-- The outbox's welcome goes to a person's first membership anywhere (projections/outbox.py, issue 8).
CREATE INDEX IF NOT EXISTS events_person_joined ON events ((data->>'person_id'), position)
    WHERE event_type IN ('MemberProvisioned', 'MemberLinked', 'MemberInvited');

------------------------------------------------------------------------------------------------------------
-- 5. Read models (owned by the modules in projections/; rebuilt from position 0 by
--    `scimledger projections rebuild`). Timestamps come from events, never from now().
------------------------------------------------------------------------------------------------------------

-- projections/workspaces.py
CREATE TABLE IF NOT EXISTS workspaces (
    id                         uuid        PRIMARY KEY,
    name                       text        NOT NULL,
    automatic_seat_assignment  boolean     NOT NULL DEFAULT false,
    seats_total                integer     NOT NULL DEFAULT 0,
    seats_assigned             integer     NOT NULL DEFAULT 0,
    created                    timestamptz NOT NULL,
    version                    bigint      NOT NULL
);
CREATE TABLE IF NOT EXISTS workspace_domains (
    workspace_id  uuid    NOT NULL,
    domain        text    NOT NULL,
    verified      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (workspace_id, domain)
);
-- The DNS TXT challenge of an unverified domain (issue 8; README "Verifying a domain").
ALTER TABLE workspace_domains ADD COLUMN IF NOT EXISTS challenge text;
CREATE TABLE IF NOT EXISTS admin_keys (
    id            uuid        PRIMARY KEY,
    workspace_id  uuid        NOT NULL,
    secret_hash   bytea       NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL,
    revoked_at    timestamptz
);

-- projections/tokens.py
CREATE TABLE IF NOT EXISTS tokens (
    id            uuid        PRIMARY KEY,
    workspace_id  uuid        NOT NULL,
    name          text        NOT NULL,
    description   text,
    scopes        text[]      NOT NULL,
    secret_hash   bytea       NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL,
    created_by    text,
    revoked_at    timestamptz,
    revoked_by    text
);
CREATE INDEX IF NOT EXISTS tokens_workspace ON tokens (workspace_id, created_at);
-- Last use of a token: operational data kept outside the log (not rebuilt), updated at most once a minute.
CREATE TABLE IF NOT EXISTS token_usage (
    token_id      uuid        PRIMARY KEY,
    last_used_at  timestamptz NOT NULL
);

-- projections/scim_users.py: one row per member; `resource` holds the SCIM attributes as rendered.
CREATE TABLE IF NOT EXISTS scim_users (
    id             uuid        PRIMARY KEY,
    workspace_id   uuid        NOT NULL,
    person_id      uuid        NOT NULL,
    user_name      text        NOT NULL,
    external_id    text,
    display_name   text,
    active         boolean     NOT NULL,
    status         text        NOT NULL,
    role           text        NOT NULL,
    managed_by     text        NOT NULL,
    has_seat       boolean     NOT NULL DEFAULT false,
    email_values   text[]      NOT NULL DEFAULT '{}',
    resource       jsonb       NOT NULL,
    created        timestamptz NOT NULL,
    last_modified  timestamptz NOT NULL,
    version        bigint      NOT NULL
);
-- user_name_key: the identity rule of src/scimledger/domain/names.py (NFC, case folding, trimmed): the
-- uniqueness claim and every `userName eq` filter compare it (README "Identity rule").
ALTER TABLE scim_users ADD COLUMN IF NOT EXISTS user_name_key text;
DROP INDEX IF EXISTS scim_users_user_name;
CREATE INDEX IF NOT EXISTS scim_users_user_name_key ON scim_users (workspace_id, user_name_key);
-- Uniqueness (RFC 7643 §4.1.1: userName unique per service provider; externalId per client): among the
-- workspace's visible members, enforced in the append's own transaction by the inline projection, so a
-- provisioning needs no claim events (issue 9). A concurrent duplicate fails at commit and is decided again
-- (src/scimledger/store/event_store.py), then refused as 409 uniqueness. Logs written before issue 9 also
-- carry UniquenessClaimed/Released events for these; they are kept and still readable, no longer needed.
CREATE UNIQUE INDEX IF NOT EXISTS scim_users_user_name_unique ON scim_users (workspace_id, user_name_key)
    WHERE status <> 'deprovisioned';
CREATE UNIQUE INDEX IF NOT EXISTS scim_users_external_id_unique ON scim_users (workspace_id, external_id)
    WHERE status <> 'deprovisioned' AND external_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS scim_users_external_id ON scim_users (workspace_id, external_id);
CREATE INDEX IF NOT EXISTS scim_users_display_name ON scim_users (workspace_id, lower(display_name));
CREATE INDEX IF NOT EXISTS scim_users_page ON scim_users (workspace_id, created, id);
CREATE INDEX IF NOT EXISTS scim_users_emails ON scim_users USING gin (email_values);
-- A provisioning links a person this workspace had before (handlers/users.py); never another's (issue 8).
CREATE INDEX IF NOT EXISTS scim_users_person ON scim_users (workspace_id, person_id);

-- projections/scim_groups.py: one row per team, one row per current team member.
CREATE TABLE IF NOT EXISTS scim_groups (
    id             uuid        PRIMARY KEY,
    workspace_id   uuid        NOT NULL,
    display_name   text        NOT NULL,
    external_id    text,
    managed_by     text        NOT NULL,
    archived       boolean     NOT NULL DEFAULT false,
    resource       jsonb       NOT NULL,
    created        timestamptz NOT NULL,
    last_modified  timestamptz NOT NULL,
    version        bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS scim_groups_display_name ON scim_groups (workspace_id, lower(display_name));
CREATE INDEX IF NOT EXISTS scim_groups_external_id ON scim_groups (workspace_id, external_id);
CREATE INDEX IF NOT EXISTS scim_groups_page ON scim_groups (workspace_id, created, id);
CREATE TABLE IF NOT EXISTS scim_group_members (
    group_id      uuid        NOT NULL,
    member_id     uuid        NOT NULL,
    workspace_id  uuid        NOT NULL,
    added         timestamptz NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX IF NOT EXISTS scim_group_members_member ON scim_group_members (member_id);
ALTER TABLE scim_group_members ADD COLUMN IF NOT EXISTS display text;  -- members.display as the IdP set it

-- projections/outbox.py (lagging, catch-up runner): notifications to send, exactly once per event.
CREATE TABLE IF NOT EXISTS outbox (
    position      bigint      NOT NULL,
    kind          text        NOT NULL,
    workspace_id  uuid        NOT NULL,
    member_id     uuid,
    recipient     text        NOT NULL,
    payload       jsonb       NOT NULL,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (position, kind)
);
CREATE INDEX IF NOT EXISTS outbox_workspace ON outbox (workspace_id, position);
-- The runner inserts rows in the log's (tx, position) order; the sender sends in that order
-- (src/scimledger/notifications.py), so a row never lands behind the sender's floor. '0' before issue 9.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS event_tx xid8 NOT NULL DEFAULT '0';
CREATE INDEX IF NOT EXISTS outbox_order ON outbox (event_tx, position, kind);
-- Delivery state is operational (not rebuilt from the log).
CREATE TABLE IF NOT EXISTS outbox_delivery (
    position      bigint      NOT NULL,
    kind          text        NOT NULL,
    sent_at       timestamptz NOT NULL,
    PRIMARY KEY (position, kind)
);
-- 'sent', or 'failed' when the mail server refused the message for good (a 5xx; `reason` says why): the
-- queue goes on behind it (src/scimledger/notifications.py). sent_at is then when it was refused.
ALTER TABLE outbox_delivery ADD COLUMN IF NOT EXISTS status text NOT NULL DEFAULT 'sent';
ALTER TABLE outbox_delivery ADD COLUMN IF NOT EXISTS reason text;
-- Which schema.sql was applied last (its SHA-256): `migrate` does nothing when the file is unchanged, so a
-- server start or a CLI command on a current schema takes no table locks (ALTER TABLE ... IF NOT EXISTS
-- still locks its table exclusively, and a start beside busy servers could deadlock with them).
CREATE TABLE IF NOT EXISTS schema_applied (
    sha256        text        NOT NULL,
    applied_at    timestamptz NOT NULL DEFAULT now(),
    one_row       boolean     PRIMARY KEY DEFAULT true CHECK (one_row)
);
-- This installation's id, made once (one row), kept by a dump and restore: part of every notification's
-- Message-ID (src/scimledger/notifications.py), so that a receiver can drop a repeated message.
CREATE TABLE IF NOT EXISTS installation (
    id            uuid        NOT NULL DEFAULT gen_random_uuid(),
    one_row       boolean     PRIMARY KEY DEFAULT true CHECK (one_row)
);
INSERT INTO installation DEFAULT VALUES ON CONFLICT DO NOTHING;

-- projections/drift.py (inline): admin changes to what the IdP manages, until the IdP's next write.
CREATE TABLE IF NOT EXISTS drift (
    stream_id       uuid        NOT NULL,
    stream_version  bigint      NOT NULL,
    resource_id     uuid        NOT NULL,
    workspace_id    uuid        NOT NULL,
    resource_type   text        NOT NULL,
    event_type      text        NOT NULL,
    actor           jsonb       NOT NULL,
    change          jsonb       NOT NULL,
    at              timestamptz NOT NULL,
    PRIMARY KEY (stream_id, stream_version)
);
CREATE INDEX IF NOT EXISTS drift_workspace ON drift (workspace_id, at);
CREATE INDEX IF NOT EXISTS drift_resource ON drift (resource_id);

-- Personal data keys (issue 11; README "Erasure (crypto-shredding)"; src/scimledger/store/keys.py): one data
-- key per member (a person's membership of one workspace), wrapped by the master key, which lives outside the
-- database. Not a read model: never rebuilt. Erasure deletes the member's row, and with it every personal
-- field of the log sealed with that key; the server's role may SELECT, INSERT and DELETE it (section 7).
CREATE TABLE IF NOT EXISTS personal_keys (
    member_id     uuid        PRIMARY KEY,
    workspace_id  uuid        NOT NULL,
    wrapped       bytea       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- The wrapped key that sealed an event's personal fields (NULL: none sealed, or the key is destroyed). The
-- audit API reads it with each event (src/scimledger/audit/entries.py), so an erased key is never used.
CREATE OR REPLACE FUNCTION scimledger_personal_key(p_data jsonb) RETURNS bytea
LANGUAGE sql STABLE AS $$
    SELECT k.wrapped FROM personal_keys k
     WHERE k.member_id = (jsonb_path_query_first(p_data, '$.* ? (exists (@."$enc")).k') #>> '{}')::uuid
$$;

------------------------------------------------------------------------------------------------------------
-- 6. Read-model guards: invariants that span streams no command holds together.
--    "A deprovisioned member belongs to no team" (README, "Workspace rules"): a group member add and a user's
--    deprovisioning decide on the read model and append to different streams, so nothing else would make
--    them conflict. Inside the writing transaction an add locks the member's row (FOR SHARE) and needs it
--    not deprovisioned; a deprovisioning checks at commit that no membership is left. The loser fails with
--    serialization_failure, which the store turns into a version conflict: its command is decided again.
--    Live tables only (a rebuild or replay of the log applies what was decided).
------------------------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION scimledger_member_may_join() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM scim_users WHERE id = NEW.member_id AND status <> 'deprovisioned' FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'member % is deprovisioned: it cannot join a team', NEW.member_id
            USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN NEW;
END;
$$;
CREATE OR REPLACE TRIGGER scim_group_members_member_may_join BEFORE INSERT ON scim_group_members
    FOR EACH ROW EXECUTE FUNCTION scimledger_member_may_join();

CREATE OR REPLACE FUNCTION scimledger_deprovisioned_in_no_team() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM scim_group_members WHERE member_id = NEW.id) THEN
        RAISE EXCEPTION 'member % is deprovisioned but still in a team', NEW.id
            USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN NULL;
END;
$$;
DROP TRIGGER IF EXISTS scim_users_deprovisioned_in_no_team ON scim_users;
CREATE CONSTRAINT TRIGGER scim_users_deprovisioned_in_no_team AFTER UPDATE OF status ON scim_users
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.status = 'deprovisioned')
    EXECUTE FUNCTION scimledger_deprovisioned_in_no_team();

-- "A workspace keeps an active admin key" (README "Admin API", "Admin keys"; handlers/admin_keys.py): each
-- revocation is decided on the read model and appends to the revoked key's own stream, so two revocations of
-- a workspace's last two keys would not conflict. A revocation locks the workspace's row (revocations of one
-- workspace take turns) and then needs another active key; the loser fails with serialization_failure and is
-- decided again, and refused.
CREATE OR REPLACE FUNCTION scimledger_admin_key_not_last() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM workspaces WHERE id = NEW.workspace_id FOR UPDATE;
    IF NOT EXISTS (SELECT 1 FROM admin_keys
                    WHERE workspace_id = NEW.workspace_id AND revoked_at IS NULL AND id <> NEW.id) THEN
        RAISE EXCEPTION 'admin key % is the last active admin key of its workspace', NEW.id
            USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN NEW;
END;
$$;
CREATE OR REPLACE TRIGGER admin_keys_not_last BEFORE UPDATE OF revoked_at ON admin_keys
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION scimledger_admin_key_not_last();

------------------------------------------------------------------------------------------------------------
-- 7. Privileges (least privilege). The server connects as `scimledger_app`: it may SELECT and INSERT the log
--    and nothing more (no UPDATE, DELETE or TRUNCATE even if the triggers above were dropped: it cannot drop
--    them either, it owns nothing), and read and write the read models, snapshots and tracking tables.
--    Migrations run as the owner of these objects (the role running this file). The role is created here
--    when the owner may create roles (the embedded default); otherwise an operator creates it first
--    (README, "Least privilege").
------------------------------------------------------------------------------------------------------------
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'scimledger_app') THEN
        BEGIN
            CREATE ROLE scimledger_app LOGIN;
        EXCEPTION WHEN insufficient_privilege OR duplicate_object THEN
            NULL;  -- no CREATEROLE, or created concurrently: nothing to do here
        END;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'scimledger_app') THEN
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO scimledger_app', current_database());
        GRANT USAGE ON SCHEMA public TO scimledger_app;
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO scimledger_app;
        GRANT USAGE ON SEQUENCE events_position_seq TO scimledger_app;
        REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON events FROM scimledger_app;
        REVOKE UPDATE, TRUNCATE ON personal_keys FROM scimledger_app;  -- made once, deleted on erasure
        GRANT EXECUTE ON FUNCTION scimledger_append(uuid, uuid[], bigint[], text[], bytea[], jsonb[], jsonb[])
            TO scimledger_app;
    END IF;
END
$$;
REVOKE ALL ON events FROM PUBLIC;
