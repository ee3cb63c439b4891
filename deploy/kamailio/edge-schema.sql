-- Skype Manager's own tables in a node's database, applied by `manage.py edge_db init`
-- after Kamailio's module tables (standard, auth_db, permissions, usrloc, dispatcher, htable,
-- acc). Idempotent: it can run again on a node that has it.

-- A digest user's profile: auth_db loads it into $avp(profile) (load_credentials).
ALTER TABLE subscriber ADD COLUMN IF NOT EXISTS profile_id INTEGER;
ALTER TABLE subscriber ADD COLUMN IF NOT EXISTS ha1_sha256 VARCHAR(64) NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS subscriber_profile_idx ON subscriber (profile_id);
CREATE INDEX IF NOT EXISTS address_grp_idx ON address (grp);
-- Kamailio's address.port is a SMALLINT: ports above 32767 would not fit.
ALTER TABLE address ALTER COLUMN port TYPE INTEGER;

-- htable "prof": one row per profile and attribute ("<profile id>:channels" → 2).
CREATE TABLE IF NOT EXISTS sm_profile_attrs (
    id SERIAL PRIMARY KEY NOT NULL,
    profile_id INTEGER NOT NULL,
    key_name VARCHAR(64) NOT NULL UNIQUE,
    key_type INTEGER DEFAULT 0 NOT NULL,
    value_type INTEGER DEFAULT 0 NOT NULL,
    key_value VARCHAR(128) DEFAULT '' NOT NULL,
    expires INTEGER DEFAULT 0 NOT NULL
);
CREATE INDEX IF NOT EXISTS sm_profile_attrs_profile_idx ON sm_profile_attrs (profile_id);

-- htable "blocked": "+1900" (E.164 prefix), "d:911" (dialled prefix), "x:0" (dialled, exact).
CREATE TABLE IF NOT EXISTS sm_blocked (
    id SERIAL PRIMARY KEY NOT NULL,
    key_name VARCHAR(64) NOT NULL UNIQUE,
    key_type INTEGER DEFAULT 0 NOT NULL,
    value_type INTEGER DEFAULT 0 NOT NULL,
    key_value VARCHAR(128) DEFAULT '' NOT NULL,
    expires INTEGER DEFAULT 0 NOT NULL
);

-- htable "route": inbound routes, "n:+<E.164>" (an Online Number) and "a:<name>" (a business
-- account name, lowercase) → the id of the profile that receives its calls. One row per key:
-- a number that moves to another profile changes owner, it is never routed to two.
CREATE TABLE IF NOT EXISTS sm_routes (
    id SERIAL PRIMARY KEY NOT NULL,
    profile_id INTEGER NOT NULL,
    key_name VARCHAR(64) NOT NULL UNIQUE,
    key_type INTEGER DEFAULT 0 NOT NULL,
    value_type INTEGER DEFAULT 1 NOT NULL,
    key_value VARCHAR(128) DEFAULT '' NOT NULL,
    expires INTEGER DEFAULT 0 NOT NULL
);
CREATE INDEX IF NOT EXISTS sm_routes_profile_idx ON sm_routes (profile_id);

INSERT INTO version (table_name, table_version) VALUES ('sm_profile_attrs', '2') ON CONFLICT DO NOTHING;
INSERT INTO version (table_name, table_version) VALUES ('sm_blocked', '2') ON CONFLICT DO NOTHING;
INSERT INTO version (table_name, table_version) VALUES ('sm_routes', '2') ON CONFLICT DO NOTHING;

-- Every call the edge handled, answered or not, refused ones too (kamailio.cfg's "CDRs"
-- block writes them with sqlops' sql_query_async, one INSERT per call). The portal reads it by
-- id watermark (apps.edge.cdr_import) and never changes it. `created_at` is the insert's own
-- clock (clock_timestamp()): an id the portal finds missing while later ids are older than a
-- few seconds belongs to an insert that rolled back, not to one still to commit.
CREATE TABLE IF NOT EXISTS sm_cdrs (
    id BIGSERIAL PRIMARY KEY NOT NULL,
    call_id VARCHAR(255) NOT NULL DEFAULT '',
    -- Whose call it is: the caller's profile (outbound, on-net), the called one's (inbound).
    profile_id INTEGER,
    -- On-net calls (to a business account name): the profile called.
    dest_profile_id INTEGER,
    direction VARCHAR(8) NOT NULL,          -- outbound, inbound, on_net
    auth_method VARCHAR(8) NOT NULL DEFAULT '', -- digest, ip, carrier
    source_ip VARCHAR(64) NOT NULL DEFAULT '',
    caller VARCHAR(64) NOT NULL DEFAULT '',
    callee VARCHAR(64) NOT NULL DEFAULT '',
    started_at TIMESTAMPTZ NOT NULL,
    answered_at TIMESTAMPTZ,
    ended_at TIMESTAMPTZ NOT NULL,
    sip_code INTEGER NOT NULL,
    -- Why the edge refused the call ('' when it did not): channel_limit, no_credit, ...
    refusal VARCHAR(24) NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
INSERT INTO version (table_name, table_version) VALUES ('sm_cdrs', '1') ON CONFLICT DO NOTHING;
