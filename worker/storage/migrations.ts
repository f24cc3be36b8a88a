/**
 * Schema versions for the Durable Objects' SQLite storage.
 *
 * Each object keeps its version in a one-row `schema_version` table (Durable Objects' SQLite does
 * not offer `PRAGMA user_version`) and, when it starts, applies the migrations it has not yet seen,
 * in order, each with its version bump in one transaction: a migration that throws leaves storage
 * as it was, and the object fails loudly instead of running on half a schema.
 *
 * Rules for new migrations (append only; never edit one that has shipped):
 * - Additive where possible (new tables, new columns with defaults): `wrangler rollback` puts the
 *   previous code back on the migrated storage, and it must still run there. Storage newer than
 *   the code is therefore left alone rather than refused.
 * - Migration 1 is the schema of 0.1.0, written with `IF NOT EXISTS`: storage created by 0.1.0
 *   (which had no version table) already has those tables and is simply marked as version 1.
 */

export interface Migration {
  version: number;
  what: string;
  up(sql: SqlStorage): void;
}

/** The site object (worker/site/): its config, announced inventories, console tickets, share links. */
export const SITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    what: "0.1.0 schema: config, inventory, tickets, links",
    up(sql) {
      sql.exec(`
        CREATE TABLE IF NOT EXISTS config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS inventory (connector_id TEXT PRIMARY KEY, json TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS tickets (
          hash TEXT PRIMARY KEY, hypervisor TEXT NOT NULL, vm TEXT NOT NULL, user TEXT NOT NULL,
          view_only INTEGER NOT NULL DEFAULT 0, expires_at INTEGER NOT NULL, used_at INTEGER);
        CREATE TABLE IF NOT EXISTS links (
          id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL UNIQUE, hypervisor TEXT NOT NULL, vm TEXT NOT NULL,
          view_only INTEGER NOT NULL, created_by TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
          revoked_at INTEGER, expiry_noted INTEGER NOT NULL DEFAULT 0);
      `);
    },
  },
  {
    version: 2,
    what: "open_consoles: consoles open now, so a restart's lost ones still get their audit row",
    up(sql) {
      sql.exec("CREATE TABLE IF NOT EXISTS open_consoles (stream INTEGER PRIMARY KEY, json TEXT NOT NULL)");
    },
  },
  {
    version: 3,
    what: "user ids: links and tickets record who by id; users whose access was taken away",
    up(sql) {
      sql.exec(`
        ALTER TABLE links ADD COLUMN created_by_id TEXT;
        ALTER TABLE tickets ADD COLUMN user_id TEXT;
        CREATE TABLE IF NOT EXISTS blocked_users (user_id TEXT PRIMARY KEY, scope TEXT NOT NULL);
      `);
    },
  },
  {
    version: 4,
    what: "least privilege: the newest access each user was reviewed with (a request that read older grants uses it)",
    up(sql) {
      sql.exec("CREATE TABLE IF NOT EXISTS user_reach (user_id TEXT PRIMARY KEY, version INTEGER NOT NULL, json TEXT NOT NULL)");
    },
  },
  {
    version: 5,
    what: "recordings: the site's recorded consoles (the index) and each one's segments with their SHA-256 chain value",
    up(sql) {
      sql.exec(`
        CREATE TABLE IF NOT EXISTS recordings (
          id TEXT PRIMARY KEY, stream INTEGER NOT NULL, hypervisor TEXT NOT NULL, vm TEXT NOT NULL,
          user TEXT, link_id TEXT, record_input INTEGER NOT NULL, started_at INTEGER NOT NULL,
          ended_at INTEGER, last_at INTEGER NOT NULL, state TEXT NOT NULL, incomplete INTEGER NOT NULL DEFAULT 0,
          bytes INTEGER NOT NULL DEFAULT 0, segments INTEGER NOT NULL DEFAULT 0, next_seq INTEGER NOT NULL DEFAULT 1,
          chain TEXT NOT NULL, server_from INTEGER, end_reason TEXT);
        CREATE INDEX IF NOT EXISTS recordings_started ON recordings (started_at);
        CREATE TABLE IF NOT EXISTS recording_segments (
          recording TEXT NOT NULL, seq INTEGER NOT NULL, bytes INTEGER NOT NULL, chain TEXT NOT NULL,
          PRIMARY KEY (recording, seq));
      `);
    },
  },
  {
    version: 6,
    what: "share links, stricter: a PIN's hash, its wrong tries and lock; start time, uses, viewers at once, note",
    up(sql) {
      // Only the columns not there yet, like the other migrations' IF NOT EXISTS (a rolled-back
      // object may have them already).
      const has = new Set(sql.exec<{ name: string }>("SELECT name FROM pragma_table_info('links')").toArray().map((c) => c.name));
      const add: [string, string][] = [
        ["pin_hash", "TEXT"],
        ["pin_failures", "INTEGER NOT NULL DEFAULT 0"],
        ["locked_at", "INTEGER"],
        ["starts_at", "INTEGER"],
        ["max_uses", "INTEGER"],
        ["uses", "INTEGER NOT NULL DEFAULT 0"],
        ["max_viewers", "INTEGER"],
        ["note", "TEXT"],
      ];
      for (const [name, type] of add) if (!has.has(name)) sql.exec(`ALTER TABLE links ADD COLUMN ${name} ${type}`);
    },
  },
  {
    version: 7,
    what: "share links that ask before each viewer joins: the link's flag, the viewers' join requests, and what a pass was given for",
    up(sql) {
      const columns = (table: string) => new Set(sql.exec<{ name: string }>(`SELECT name FROM pragma_table_info('${table}')`).toArray().map((c) => c.name));
      if (!columns("links").has("approval")) sql.exec("ALTER TABLE links ADD COLUMN approval INTEGER NOT NULL DEFAULT 0");
      const tickets = columns("tickets");
      // 'pin' or 'join' for a share link's pass (null: a console ticket), and the approved viewer's name.
      if (!tickets.has("via")) sql.exec("ALTER TABLE tickets ADD COLUMN via TEXT");
      if (!tickets.has("viewer_name")) sql.exec("ALTER TABLE tickets ADD COLUMN viewer_name TEXT");
      if (!tickets.has("join_id")) sql.exec("ALTER TABLE tickets ADD COLUMN join_id TEXT");
      sql.exec(`CREATE TABLE IF NOT EXISTS link_joins (
        id TEXT PRIMARY KEY,
        link_id TEXT NOT NULL,
        name TEXT NOT NULL,
        token_hash TEXT NOT NULL,
        asked_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        state TEXT NOT NULL,
        answered_by TEXT,
        answered_at INTEGER,
        left_at INTEGER
      )`);
      sql.exec("CREATE INDEX IF NOT EXISTS link_joins_waiting ON link_joins (state, expires_at)");
    },
  },
];

/** The registry object (worker/registry/): sites, accounts, sessions, API tokens, audit, sign-in throttling. */
export const REGISTRY_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    what: "0.1.0 schema: sites, users, sessions, api_tokens, audit, signin_failures",
    up(sql) {
      sql.exec(`
        CREATE TABLE IF NOT EXISTS sites (name TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS users (
          username TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL, created_at INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS sessions (
          token_hash TEXT PRIMARY KEY, user TEXT NOT NULL, role TEXT NOT NULL, expires_at INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS api_tokens (
          id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL, user TEXT NOT NULL, created_at INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS audit (
          id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, type TEXT NOT NULL, actor TEXT NOT NULL,
          site TEXT, detail TEXT);
        CREATE INDEX IF NOT EXISTS audit_at ON audit (at);
        CREATE TABLE IF NOT EXISTS signin_failures (key TEXT NOT NULL, at INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS signin_failures_key ON signin_failures (key, at);
      `);
    },
  },
  {
    version: 2,
    what: "user ids and disabling; atomic sign-in throttling per (account, address); folded audit rows",
    up(sql) {
      // Accounts get a stable id: links, tickets and tokens name the person, not a reusable name.
      sql.exec("ALTER TABLE users ADD COLUMN id TEXT; ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0");
      for (const { username } of sql.exec<{ username: string }>("SELECT username FROM users").toArray()) {
        sql.exec("UPDATE users SET id = ? WHERE username = ?", crypto.randomUUID(), username);
      }
      sql.exec("CREATE UNIQUE INDEX IF NOT EXISTS users_id ON users (id)");
      // Sessions from before carry no id: they end, and people sign in again once.
      sql.exec("ALTER TABLE sessions ADD COLUMN user_id TEXT; DELETE FROM sessions");
      sql.exec("ALTER TABLE api_tokens ADD COLUMN user_id TEXT");
      sql.exec("UPDATE api_tokens SET user_id = coalesce((SELECT id FROM users WHERE users.username = api_tokens.user), 'name:' || user)");
      sql.exec(`
        DROP TABLE IF EXISTS signin_failures;
        CREATE TABLE IF NOT EXISTS signin_attempts (attempt TEXT NOT NULL, account TEXT, address TEXT NOT NULL, at INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS signin_attempts_pair ON signin_attempts (address, account, at);
        CREATE TABLE IF NOT EXISTS audit_budget (
          actor TEXT NOT NULL, type TEXT NOT NULL, site TEXT NOT NULL, hour INTEGER NOT NULL, n INTEGER NOT NULL,
          fold_id INTEGER, PRIMARY KEY (actor, type, site, hour));
        ALTER TABLE audit ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE audit ADD COLUMN last_at INTEGER;
        CREATE TABLE IF NOT EXISTS pending_revocations (
          site TEXT NOT NULL, user_id TEXT NOT NULL, scope TEXT NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (site, user_id));
      `);
    },
  },
  {
    version: 3,
    what: "case-insensitive usernames; API token expiry and last use; the built-in admin's generations; Access identities",
    up(sql) {
      sql.exec("ALTER TABLE users ADD COLUMN name_key TEXT");
      assignNameKeys(sql);
      sql.exec(`
        CREATE UNIQUE INDEX IF NOT EXISTS users_name_key ON users (name_key);
        ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
        ALTER TABLE api_tokens ADD COLUMN last_used_at INTEGER;
        CREATE TABLE IF NOT EXISTS builtin_admin (
          fingerprint TEXT PRIMARY KEY, username TEXT NOT NULL, id TEXT NOT NULL, since INTEGER NOT NULL, retired_at INTEGER);
        CREATE TABLE IF NOT EXISTS access_identities (
          email TEXT PRIMARY KEY, role TEXT, disabled INTEGER NOT NULL DEFAULT 0, updated_at INTEGER NOT NULL);
      `);
    },
  },
  {
    version: 4,
    what: "least privilege: groups, grants, access requests; existing roles keep their meaning",
    up(sql) {
      // Additive only: 0.3.0's users keep their roles (operator, viewer) and nothing else changes.
      sql.exec(`
        CREATE TABLE IF NOT EXISTS groups (
          name_key TEXT PRIMARY KEY, name TEXT NOT NULL, created_at INTEGER NOT NULL, created_by TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS group_members (
          group_key TEXT NOT NULL, user_id TEXT NOT NULL, username TEXT NOT NULL, added_at INTEGER NOT NULL,
          PRIMARY KEY (group_key, user_id));
        CREATE INDEX IF NOT EXISTS group_members_user ON group_members (user_id);
        CREATE TABLE IF NOT EXISTS grants (
          id TEXT PRIMARY KEY, user_id TEXT, username TEXT, group_key TEXT, site TEXT NOT NULL,
          hypervisor TEXT, vm TEXT, vm_pattern TEXT, level TEXT NOT NULL, from_at INTEGER, until_at INTEGER,
          created_at INTEGER NOT NULL, created_by TEXT NOT NULL, request_id TEXT);
        CREATE INDEX IF NOT EXISTS grants_user ON grants (user_id);
        CREATE INDEX IF NOT EXISTS grants_group ON grants (group_key);
        CREATE INDEX IF NOT EXISTS grants_until ON grants (until_at);
        CREATE TABLE IF NOT EXISTS access_requests (
          id TEXT PRIMARY KEY, user_id TEXT NOT NULL, username TEXT NOT NULL, site TEXT NOT NULL, hypervisor TEXT NOT NULL,
          vm TEXT NOT NULL, level TEXT NOT NULL, minutes INTEGER NOT NULL, reason TEXT NOT NULL, status TEXT NOT NULL,
          created_at INTEGER NOT NULL, decided_by TEXT, decided_at INTEGER, comment TEXT, grant_id TEXT);
        CREATE INDEX IF NOT EXISTS access_requests_status ON access_requests (status, created_at);
        CREATE TABLE IF NOT EXISTS access_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
      `);
    },
  },
  {
    version: 5,
    what: "the built-in administrator's generations remember the Worker version whose secrets they are",
    up(sql) {
      const has = sql.exec<{ name: string }>("SELECT name FROM pragma_table_info('builtin_admin')").toArray().some((c) => c.name === "version_at");
      if (!has) sql.exec("ALTER TABLE builtin_admin ADD COLUMN version_at INTEGER");
    },
  },
];

/**
 * Usernames are one account whatever their case (issue 23): `users.name_key` is the name in lower
 * case, unique. Gives a key to every account without one: all of them in migration 3, and at each
 * registry start those an older version created after a rollback. Accounts whose names differ only
 * by case are all kept: the oldest keeps its name, each later one is renamed `<name>-<n>` (the
 * first n from 2 whose key is free) and keeps its id, role, password, sessions and tokens; the
 * audit trail says so (`user.renamed`).
 */
export function assignNameKeys(sql: SqlStorage): void {
  const pending = sql.exec<{ id: string; username: string }>("SELECT id, username FROM users WHERE name_key IS NULL ORDER BY created_at, username").toArray();
  if (pending.length === 0) return;
  const all = sql.exec<{ username: string; name_key: string | null }>("SELECT username, name_key FROM users").toArray();
  const taken = new Set(all.flatMap((u) => [u.username.toLowerCase(), ...(u.name_key ? [u.name_key] : [])]));
  const kept = new Set(all.flatMap((u) => (u.name_key ? [u.name_key] : [])));
  for (const u of pending) {
    let name = u.username;
    if (kept.has(name.toLowerCase())) {
      let n = 2;
      while (taken.has(`${name}-${n}`.toLowerCase())) n++;
      name = `${name}-${n}`;
      taken.add(name.toLowerCase());
      sql.exec("UPDATE users SET username = ? WHERE id = ?", name, u.id);
      sql.exec("UPDATE sessions SET user = ? WHERE user_id = ?", name, u.id);
      sql.exec("UPDATE api_tokens SET user = ? WHERE user_id = ?", name, u.id);
      sql.exec(
        "INSERT INTO audit (at, type, actor, detail) VALUES (?, 'user.renamed', 'system', ?)",
        Date.now(),
        JSON.stringify({ from: u.username, to: name, why: "another account had the same name but for case" }),
      );
    }
    kept.add(name.toLowerCase());
    sql.exec("UPDATE users SET name_key = ? WHERE id = ?", name.toLowerCase(), u.id);
  }
}

/** The version `storage` is at (0: never migrated). */
export function schemaVersion(storage: DurableObjectStorage): number {
  const sql = storage.sql;
  const table = sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").toArray();
  if (table.length === 0) return 0;
  return sql.exec<{ version: number }>("SELECT version FROM schema_version").toArray()[0]?.version ?? 0;
}

/**
 * Brings `storage` to the last of `migrations` and returns the version it is at. Synchronous, so
 * called from an object's constructor it completes before the object handles any event: no
 * `blockConcurrencyWhile` is needed.
 */
export function migrate(storage: DurableObjectStorage, migrations: readonly Migration[]): number {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${i + 1} is numbered ${m.version}: migrations are numbered 1, 2, 3, … in order`);
  });
  const sql = storage.sql;
  let current = schemaVersion(storage);
  for (const m of migrations.slice(current)) {
    storage.transactionSync(() => {
      m.up(sql);
      sql.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
      sql.exec("DELETE FROM schema_version");
      sql.exec("INSERT INTO schema_version (version) VALUES (?)", m.version);
    });
    current = m.version;
  }
  return current;
}
