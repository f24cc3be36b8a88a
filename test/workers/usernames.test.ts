/**
 * Issue 23, item 11 (parts): usernames are case-insensitive for uniqueness and sign-in (the display
 * form is kept; storage with accounts differing only by case migrates without losing any); the
 * old `/l/<site>/<secret>` form leaves no secret in our logs; a connector's `version` is the
 * version itself, its software string in `software`.
 */
import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { migrate, REGISTRY_MIGRATIONS } from "../../worker/storage/migrations.ts";
import { call, connectConnector, createSite, defaultHello, signIn, userSession, welcomedConnector } from "./helpers.ts";

describe("usernames differing only by case", () => {
  it("are one account: refused as duplicates, signed in under any case, shown as created", async () => {
    const admin = await signIn();
    await userSession(admin, "CaseOp1", "operator");
    const dup = await call("POST", "/api/users", { username: "caseop1", password: "pw-other-0123456789", role: "admin" }, admin);
    expect(dup.status).toBe(409);
    expect((await call("POST", "/api/users", { username: "ADMIN", password: "pw-other-0123456789", role: "admin" }, admin)).status).toBe(409);
    const res = await call("POST", "/api/session", { username: "CASEOP1", password: "pw-CaseOp1-0123456789" });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ user: "CaseOp1", role: "operator" });
    expect((await call("PATCH", "/api/users/caseop1", { role: "viewer" }, admin)).status).toBe(200);
    const listed = (await (await call("GET", "/api/users", undefined, admin)).json()) as { username: string; role: string }[];
    expect(listed.filter((u) => u.username.toLowerCase() === "caseop1")).toEqual([expect.objectContaining({ username: "CaseOp1", role: "viewer" })]);
  });

  it("share one sign-in throttle: changing case does not buy more guesses", async () => {
    const headers = { "CF-Connecting-IP": "198.51.100.77" };
    const { exports } = await import("cloudflare:workers");
    const attempt = (username: string) =>
      exports.default.fetch("http://porthole.test/api/session", { method: "POST", headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify({ username, password: "wrong guess" }) });
    const names = ["Throttled", "THROTTLED", "throttled", "tHrOtTlEd", "ThRoTtLeD", "THROTTLEd"];
    const statuses = [];
    for (const name of names) statuses.push((await attempt(name)).status);
    expect(statuses.at(-1)).toBe(429);
  });

  it("migration: existing accounts differing only by case are all kept; the oldest keeps its name, the others get a free one", async () => {
    await runInDurableObject(env.SITE.get(env.SITE.idFromName("dupes-storage")), (_instance, state) => {
      const sql = state.storage.sql;
      for (const { name } of sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'").toArray()) {
        sql.exec(`DROP TABLE ${name}`);
      }
      migrate(state.storage, REGISTRY_MIGRATIONS.slice(0, 2));
      const add = (username: string, at: number, id: string) =>
        sql.exec("INSERT INTO users (username, role, password_hash, created_at, id, disabled) VALUES (?, 'operator', 'h', ?, ?, 0)", username, at, id);
      add("op1", 2, "id-b");
      add("OP1", 1, "id-a");
      add("Op1", 3, "id-c");
      add("op1-2", 4, "id-d"); // the obvious new name is taken
      migrate(state.storage, REGISTRY_MIGRATIONS);
      const rows = sql.exec<{ id: string; username: string }>("SELECT id, username FROM users ORDER BY id").toArray();
      expect(rows).toEqual([
        { id: "id-a", username: "OP1" },
        { id: "id-b", username: "op1-3" },
        { id: "id-c", username: "Op1-4" },
        { id: "id-d", username: "op1-2" },
      ]);
      const audit = sql.exec<{ detail: string }>("SELECT detail FROM audit WHERE type = 'user.renamed' ORDER BY id").toArray();
      expect(audit.map((a) => JSON.parse(a.detail))).toEqual([
        { from: "op1", to: "op1-3", why: expect.stringMatching(/case/) },
        { from: "Op1", to: "Op1-4", why: expect.stringMatching(/case/) },
      ]);
    });
  });
});

describe("after a rollback to a version without case-insensitive names", () => {
  it("the accounts it created get their key when the registry starts again; a case duplicate is renamed, not lost", async () => {
    const admin = await signIn();
    await userSession(admin, "Rolled", "viewer");
    const registry = env.REGISTRY.get(env.REGISTRY.idFromName("registry"));
    await runInDurableObject(registry, (_instance, state) => {
      // What 0.3.0's createUser writes: no name_key.
      state.storage.sql.exec(
        "INSERT INTO users (username, role, password_hash, created_at, id, disabled) VALUES ('rolled', 'viewer', 'h', ?, 'rolled-later', 0)",
        Date.now() + 1,
      );
    });
    await evictDurableObject(registry);
    const listed = (await (await call("GET", "/api/users", undefined, await signIn())).json()) as { username: string }[];
    expect(listed.map((u) => u.username).filter((u) => u.toLowerCase().startsWith("rolled"))).toEqual(["Rolled", "rolled-2"]);
  });
});

describe("the old share-link form", () => {
  afterEach(() => vi.restoreAllMocks());

  it("redirects a live link without writing its secret to any log of ours", async () => {
    const admin = await signIn();
    await welcomedConnector(await createSite(admin, "legacy1"));
    const link = (await (await call("POST", "/api/links", { site: "legacy1", hypervisor: "lab", vm: "desk" }, admin)).json()) as { url: string };
    const secret = decodeURIComponent(new URL(link.url).hash.slice(1));
    const written: string[] = [];
    for (const level of ["log", "info", "warn", "error", "debug"] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void written.push(args.map(String).join(" ")));
    }
    const { exports } = await import("cloudflare:workers");
    const res = await exports.default.fetch(`http://porthole.test/l/legacy1/${secret}`, { redirect: "manual" });
    expect(res.status).toBe(302);
    expect(res.headers.get("Location")).toBe(`/l/legacy1#${encodeURIComponent(secret)}`);
    expect(res.headers.get("Cache-Control")).toMatch(/no-store/);
    expect(res.headers.get("Referrer-Policy")).toBe("no-referrer");
    expect(written.join("\n")).not.toContain(secret);
  });
});

describe("GET /api/sites", () => {
  it("reports the connector's version as the version, and its software string beside it", async () => {
    const admin = await signIn();
    const token = await createSite(admin, "versioned");
    const connector = await connectConnector(token, { ...defaultHello(), software: "porthole-connector/0.3.0" });
    await connector.nextFrame();
    const sites = (await (await call("GET", "/api/sites", undefined, admin)).json()) as { name: string; connectors: { version: string | null; software: string | null }[] }[];
    expect(sites.find((s) => s.name === "versioned")!.connectors[0]).toMatchObject({ version: "0.3.0", software: "porthole-connector/0.3.0" });
  });
});
