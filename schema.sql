-- scimledger schema: authoritative and idempotent (`scimledger migrate`; `serve` applies it at start).
-- Sections in a fixed order: tables (the log), functions, triggers, indexes, read models, privileges.

------------------------------------------------------------------------------------------------------------
-- 1. The event log: append-only.
--
-- position         global, gapless, commit order (assigned under one advisory lock held until commit)
-- workspace_id     the tenant; the hash chain runs per workspace
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

------------------------------------------------------------------------------------------------------------
-- 2. Functions
------------------------------------------------------------------------------------------------------------

-- The one append function: one call (one round trip) per command. Takes the append lock (held until
-- commit, so position order is commit order), relies on the unique (stream_id, stream_version) for the
-- optimistic version check, extends the workspace's hash chain and notifies listeners on commit.
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
    v_prev      bytea;
    v_hash      bytea;
    v_at        timestamptz;
    v_at_text   text;
    v_positions bigint[] := '{}';
    i           integer;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        -- max(position) and the chain head must be read after the lock, from a fresh snapshot.
        RAISE EXCEPTION 'scimledger_append needs READ COMMITTED isolation';
    END IF;
    PERFORM pg_advisory_xact_lock(7243002);
    v_position := coalesce((SELECT max(position) FROM events), 0);
    v_prev := coalesce(
        (SELECT hash FROM events WHERE workspace_id = p_workspace_id ORDER BY position DESC LIMIT 1),
        '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);
    v_at := clock_timestamp();
    v_at_text := to_char(v_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
    FOR i IN 1 .. coalesce(array_length(p_stream_ids, 1), 0) LOOP
        v_position := v_position + 1;
        v_hash := sha256(
            v_prev
            || convert_to(concat_ws('|', v_position, p_workspace_id, p_stream_ids[i], p_versions[i],
                                    p_types[i], v_at_text), 'UTF8')
            || sha256(p_states[i])
            || sha256(convert_to(p_metadata[i]::text, 'UTF8')));
        INSERT INTO events (position, workspace_id, stream_id, stream_version, event_type, state, data,
                            metadata, recorded_at, prev_hash, hash)
        VALUES (v_position, p_workspace_id, p_stream_ids[i], p_versions[i], p_types[i], p_states[i],
                p_datas[i], p_metadata[i], v_at, v_prev, v_hash);
        v_positions := v_positions || v_position;
        v_prev := v_hash;
    END LOOP;
    IF v_position > 0 THEN
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
-- Delivery state is operational (not rebuilt from the log).
CREATE TABLE IF NOT EXISTS outbox_delivery (
    position      bigint      NOT NULL,
    kind          text        NOT NULL,
    sent_at       timestamptz NOT NULL,
    PRIMARY KEY (position, kind)
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
        REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON events FROM scimledger_app;
        GRANT EXECUTE ON FUNCTION scimledger_append(uuid, uuid[], bigint[], text[], bytea[], jsonb[], jsonb[])
            TO scimledger_app;
    END IF;
END
$$;
REVOKE ALL ON events FROM PUBLIC;
