/**
 * Schema migrations: storage written by Porthole 0.1.0 (tables created with IF NOT EXISTS, no
 * version table) opens with the migrating code and keeps every row; and the runner's rules.
 */
import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { FrameType } from "../../shared/protocol/frames.ts";
import { type Migration, migrate, REGISTRY_MIGRATIONS, schemaVersion, SITE_MIGRATIONS } from "../../worker/storage/migrations.ts";
import { call, createSite, openBrowser, openConsole, signIn, userSession, welcomedConnector } from "./helpers.ts";

// Verbatim, the statements 0.1.0 ran in its constructors (site-object.ts, tickets.ts, links.ts;
// registry-object.ts, accounts-store.ts, audit-store.ts, throttle-store.ts).
const SITE_0_1_0 = [
  `CREATE TABLE IF NOT EXISTS config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS inventory (connector_id TEXT PRIMARY KEY, json TEXT NOT NULL);`,
  `CREATE TABLE IF NOT EXISTS tickets (
      hash TEXT PRIMARY KEY, hypervisor TEXT NOT NULL, vm TEXT NOT NULL, user TEXT NOT NULL,
      view_only INTEGER NOT NULL DEFAULT 0, expires_at INTEGER NOT NULL, used_at INTEGER)`,
  `CREATE TABLE IF NOT EXISTS links (
      id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL UNIQUE, hypervisor TEXT NOT NULL, vm TEXT NOT NULL,
      view_only INTEGER NOT NULL, created_by TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
      revoked_at INTEGER, expiry_noted INTEGER NOT NULL DEFAULT 0)`,
];
const REGISTRY_0_1_0 = [
  "CREATE TABLE IF NOT EXISTS sites (name TEXT PRIMARY KEY, created_at INTEGER NOT NULL)",
  `CREATE TABLE IF NOT EXISTS users (
        username TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL, created_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS sessions (
        token_hash TEXT PRIMARY KEY, user TEXT NOT NULL, role TEXT NOT NULL, expires_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS api_tokens (
        id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL, user TEXT NOT NULL, created_at INTEGER NOT NULL);`,
  `CREATE TABLE IF NOT EXISTS audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, type TEXT NOT NULL, actor TEXT NOT NULL,
        site TEXT, detail TEXT);
      CREATE INDEX IF NOT EXISTS audit_at ON audit (at);`,
  `CREATE TABLE IF NOT EXISTS signin_failures (key TEXT NOT NULL, at INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS signin_failures_key ON signin_failures (key, at);`,
];

const siteStub = (name: string) => env.SITE.get(env.SITE.idFromName(name));
const registryStub = () => env.REGISTRY.get(env.REGISTRY.idFromName("registry"));

type Row = Record<string, SqlStorageValue>;

/** Our tables (not SQLite's or the platform's own). */
function tables(sql: SqlStorage): string[] {
  return sql
    .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' ORDER BY name")
    .toArray()
    .map((r) => r.name);
}

/** The schema as SQLite records it, whitespace aside. */
function schema(sql: SqlStorage): string[] {
  return sql
    .exec<{ sql: string }>("SELECT sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name != 'schema_version' ORDER BY name")
    .toArray()
    .map((r) => r.sql.replace(/\s+/g, " ").replace(/\( /g, "(").replace(/ \)/g, ")"));
}

/**
 * Rewrites an object's storage as 0.1.0 would have left it: the same rows, in tables made by
 * 0.1.0's own statements, and no version table.
 */
function rewriteAs010(storage: DurableObjectStorage, statements: string[]): void {
  const sql = storage.sql;
  const names = tables(sql);
  const rows = new Map<string, Row[]>(names.filter((t) => t !== "schema_version").map((t) => [t, sql.exec<Row>(`SELECT * FROM ${t}`).toArray()]));
  for (const t of names) sql.exec(`DROP TABLE ${t}`);
  for (const s of statements) sql.exec(s);
  for (const [t, list] of rows) {
    // Only what 0.1.0 had: its tables, its columns.
    const old = new Set(sql.exec<{ name: string }>(`PRAGMA table_info(${t})`).toArray().map((c) => c.name));
    if (old.size === 0) continue;
    for (const row of list) {
      const cols = Object.keys(row).filter((c) => old.has(c));
      sql.exec(`INSERT INTO ${t} (${cols.join(", ")}) VALUES (${cols.map(() => "?").join(", ")})`, ...cols.map((c) => row[c]));
    }
  }
  expect(schemaVersion(storage)).toBe(0);
}

/**
 * Takes an object's storage back to schema version 3, without the tables of the migrations after it:
 * for a site object exactly what 0.3.0 left; for the registry 0.3.0's plus migration 3 (case-insensitive
 * names, Access identities: tested on its own in usernames.test.ts).
 */
function rewindTo030(storage: DurableObjectStorage, added: string[]): void {
  for (const t of added) storage.sql.exec(`DROP TABLE IF EXISTS ${t}`);
  storage.sql.exec("DELETE FROM schema_version; INSERT INTO schema_version (version) VALUES (3)");
}

describe("storage written by 0.3.0 (before groups and grants)", () => {
  it("operators and viewers keep exactly what they had; the new tables are added", async () => {
    const admin = await signIn();
    const operator = await userSession(admin, "op-030", "operator");
    const viewer = await userSession(admin, "viewer-030", "viewer");
    const token = await createSite(admin, "site-030");
    const before = await welcomedConnector(token);
    before.ws.close(1000, "upgrade");
    await runInDurableObject(registryStub(), (_i, state) => rewindTo030(state.storage, ["groups", "group_members", "grants", "access_requests", "access_meta"]));
    await runInDurableObject(siteStub("site-030"), (_i, state) => rewindTo030(state.storage, ["user_reach", "recordings", "recording_segments"]));
    await evictDurableObject(registryStub());
    await evictDurableObject(siteStub("site-030"), { webSockets: "close" });

    await welcomedConnector(token);
    // 0.3.0's sign-ins still work (they carry user ids since migration 2).
    const vms = (await (await call("GET", "/api/sites/site-030/vms", undefined, viewer)).json()) as { level: string }[];
    expect(vms.map((v) => v.level)).toEqual(["view"]);
    const watch = await call("POST", "/api/consoles", { site: "site-030", hypervisor: "lab", vm: "desk" }, viewer);
    expect(((await watch.json()) as { viewOnly: boolean }).viewOnly).toBe(true);
    expect((await call("POST", "/api/links", { site: "site-030", hypervisor: "lab", vm: "desk" }, viewer)).status).toBe(403);
    const full = await call("POST", "/api/consoles", { site: "site-030", hypervisor: "lab", vm: "desk" }, operator);
    expect(((await full.json()) as { viewOnly: boolean }).viewOnly).toBe(false);
    expect((await call("POST", "/api/links", { site: "site-030", hypervisor: "lab", vm: "desk" }, operator)).status).toBe(201);
    expect(await (await call("GET", "/api/grants", undefined, admin)).json()).toEqual([]);
    await runInDurableObject(registryStub(), (_i, state) => expect(schemaVersion(state.storage)).toBe(REGISTRY_MIGRATIONS.length));
    await runInDurableObject(siteStub("site-030"), (_i, state) => expect(schemaVersion(state.storage)).toBe(SITE_MIGRATIONS.length));
  });
});

describe("storage written by 0.1.0", () => {
  it("site: the connector token, share links and an unused console ticket still work", async () => {
    const admin = await signIn();
    const operator = await userSession(admin, "migrator", "operator");
    const token = await createSite(admin, "migrated");
    const before = await welcomedConnector(token);
    const link = (await (await call("POST", "/api/links", { site: "migrated", hypervisor: "lab", vm: "desk" }, operator)).json()) as { id: string };
    const { wsUrl } = await openConsole(admin, "migrated");
    before.ws.close(1000, "upgrade");

    await runInDurableObject(siteStub("migrated"), (_instance, state) => rewriteAs010(state.storage, SITE_0_1_0));
    await evictDurableObject(siteStub("migrated"), { webSockets: "close" });

    // The object starts again on 0.1.0's storage, migrating it.
    const connector = await welcomedConnector(token);
    const links = (await (await call("GET", "/api/links", undefined, operator)).json()) as { id: string }[];
    expect(links.map((l) => l.id)).toContain(link.id);
    await openBrowser(wsUrl);
    expect((await connector.nextFrame()).type).toBe(FrameType.open);
    await runInDurableObject(siteStub("migrated"), (_instance, state) => {
      expect(schemaVersion(state.storage)).toBe(SITE_MIGRATIONS.length);
    });
  });

  it("registry: accounts, sessions, sites and the audit trail are kept", async () => {
    const admin = await signIn();
    await userSession(admin, "old-timer", "viewer");
    await createSite(admin, "kept");
    const auditBefore = ((await (await call("GET", "/api/audit?type=site.created", undefined, admin)).json()) as unknown[]).length;
    expect(auditBefore).toBeGreaterThan(0);

    await runInDurableObject(registryStub(), (_instance, state) => rewriteAs010(state.storage, REGISTRY_0_1_0));
    await evictDurableObject(registryStub());

    // Sessions of 0.1.0 name no user id: they end (migration 2) and people sign in again once.
    expect((await call("GET", "/api/sites", undefined, admin)).status).toBe(401);
    const again = await signIn();
    const sites = (await (await call("GET", "/api/sites", undefined, again)).json()) as { name: string }[];
    expect(sites.map((s) => s.name)).toContain("kept");
    await signIn("old-timer", "pw-old-timer-0123456789");
    expect(((await (await call("GET", "/api/audit?type=site.created", undefined, again)).json()) as unknown[]).length).toBe(auditBefore);
    await runInDurableObject(registryStub(), (_instance, state) => {
      expect(schemaVersion(state.storage)).toBe(REGISTRY_MIGRATIONS.length);
    });
  });

  it.each([
    ["site", () => siteStub("fresh-schema"), SITE_0_1_0, SITE_MIGRATIONS],
    ["registry", registryStub, REGISTRY_0_1_0, REGISTRY_MIGRATIONS],
  ] as const)("%s: migration 1 creates exactly 0.1.0's tables", async (_name, stub, old, migrations) => {
    await runInDurableObject(stub(), (_instance, state) => {
      const sql = state.storage.sql;
      const dropAll = () => {
        for (const t of tables(sql)) sql.exec(`DROP TABLE ${t}`);
      };
      dropAll();
      migrations[0]!.up(sql);
      const fresh = schema(sql);
      dropAll();
      for (const s of old) sql.exec(s);
      expect(fresh).toEqual(schema(sql));
    });
  });
});

describe("the migration runner", () => {
  /** Runs `body` on a fresh object's storage with its version table removed. */
  async function onBlankStorage(name: string, body: (storage: DurableObjectStorage) => void): Promise<void> {
    await runInDurableObject(siteStub(name), (_instance, state) => {
      state.storage.sql.exec("DROP TABLE schema_version");
      body(state.storage);
    });
  }
  const create: Migration = { version: 1, what: "t", up: (sql) => sql.exec("CREATE TABLE t (x INTEGER)") };
  const insert: Migration = { version: 2, what: "row", up: (sql) => sql.exec("INSERT INTO t VALUES (1)") };

  it("applies each migration once, in order", async () => {
    await onBlankStorage("runner-order", (storage) => {
      expect(migrate(storage, [create])).toBe(1);
      expect(migrate(storage, [create, insert])).toBe(2);
      expect(migrate(storage, [create, insert])).toBe(2);
      expect(storage.sql.exec("SELECT count(*) AS n FROM t").one().n).toBe(1);
    });
  });

  it("leaves storage as it was when a migration fails", async () => {
    await onBlankStorage("runner-fail", (storage) => {
      const broken: Migration = {
        version: 2,
        what: "half done",
        up: (sql) => {
          sql.exec("CREATE TABLE half (x INTEGER)");
          throw new Error("disk on fire");
        },
      };
      expect(() => migrate(storage, [create, broken])).toThrow("disk on fire");
      expect(schemaVersion(storage)).toBe(1);
      expect(tables(storage.sql)).not.toContain("half");
    });
  });

  it("leaves storage newer than the code alone (a rollback)", async () => {
    await onBlankStorage("runner-newer", (storage) => {
      const fails: Migration = { version: 1, what: "must not run", up: () => { throw new Error("ran"); } };
      storage.sql.exec("CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (5)");
      expect(migrate(storage, [fails])).toBe(5);
    });
  });

  it("refuses a list that is not numbered 1, 2, 3, …", async () => {
    await onBlankStorage("runner-numbers", (storage) => {
      expect(() => migrate(storage, [create, { ...insert, version: 3 }])).toThrow("migration 2 is numbered 3");
      expect(schemaVersion(storage)).toBe(0);
    });
  });
});
