/** Accounts, roles on every route, throttling, API tokens and Cloudflare Access. */
import { beforeAll, describe, expect, it } from "vitest";
import { accessToken } from "./access-jwt.ts";
import { auditUntil, call, createSite, signIn, userSession, welcomedConnector } from "./helpers.ts";

let admin = "";
let operator = "";
let viewer = "";

beforeAll(async () => {
  admin = await signIn();
  operator = await userSession(admin, "olivia", "operator");
  viewer = await userSession(admin, "victor", "viewer");
  const token = await createSite(admin, "authsite");
  await welcomedConnector(token);
});

describe("roles on every route", () => {
  const routes: [string, string, unknown, { admin: number; operator: number; viewer: number }][] = [
    ["GET", "/api/sites", undefined, { admin: 200, operator: 200, viewer: 200 }],
    ["POST", "/api/sites", { name: "rolesite" }, { admin: 201, operator: 403, viewer: 403 }],
    ["GET", "/api/sites/authsite/vms", undefined, { admin: 200, operator: 200, viewer: 200 }],
    ["POST", "/api/consoles", { site: "authsite", hypervisor: "lab", vm: "desk" }, { admin: 201, operator: 201, viewer: 201 }],
    ["POST", "/api/links", { site: "authsite", hypervisor: "lab", vm: "desk" }, { admin: 201, operator: 201, viewer: 403 }],
    // Since issue 19 a viewer may share through a grant, so lists (their own, none here) and revokes theirs.
    ["GET", "/api/links", undefined, { admin: 200, operator: 200, viewer: 200 }],
    ["DELETE", "/api/links/nope", undefined, { admin: 404, operator: 404, viewer: 404 }],
    ["POST", "/api/vnc-urls", { site: "authsite", hypervisor: "lab", vm: "desk" }, { admin: 200, operator: 200, viewer: 403 }],
    ["GET", "/api/users", undefined, { admin: 200, operator: 403, viewer: 403 }],
    ["POST", "/api/users", { username: "zed", password: "long enough password", role: "viewer" }, { admin: 201, operator: 403, viewer: 403 }],
    ["DELETE", "/api/users/zed", undefined, { admin: 204, operator: 403, viewer: 403 }],
    ["POST", "/api/tokens", { name: "ci" }, { admin: 201, operator: 201, viewer: 201 }],
    ["GET", "/api/tokens", undefined, { admin: 200, operator: 200, viewer: 200 }],
    ["GET", "/api/audit", undefined, { admin: 200, operator: 403, viewer: 403 }],
  ];
  for (const [method, path, body, expected] of routes) {
    it(`${method} ${path}`, async () => {
      // Least privileged first, so the admin's successful call (which may change state) comes last.
      for (const role of ["viewer", "operator", "admin"] as const) {
        const cookie = { admin, operator, viewer }[role];
        const res = await call(method, path, body, cookie);
        expect(res.status, `${role}`).toBe(expected[role]);
      }
      expect((await call(method, path, body)).status, "anonymous").toBe(401);
    });
  }

  it("gives the viewer role view-only consoles", async () => {
    const res = await call("POST", "/api/consoles", { site: "authsite", hypervisor: "lab", vm: "desk" }, viewer);
    const body = (await res.json()) as { viewOnly: boolean; pageUrl: string };
    expect(body.viewOnly).toBe(true);
    expect(body.pageUrl).toMatch(/view=1/);
  });
});

describe("accounts", () => {
  it("validates new users and refuses duplicates and the built-in administrator", async () => {
    expect((await call("POST", "/api/users", { username: "shorty", password: "short", role: "viewer" }, admin)).status).toBe(400);
    expect((await call("POST", "/api/users", { username: "x", password: "long enough password", role: "root" }, admin)).status).toBe(400);
    expect((await call("POST", "/api/users", { username: "olivia", password: "long enough password", role: "viewer" }, admin)).status).toBe(409);
    expect((await call("POST", "/api/users", { username: "admin", password: "long enough password", role: "viewer" }, admin)).status).toBe(409);
    expect((await call("DELETE", "/api/users/admin", undefined, admin)).status).toBe(409);
    expect((await call("DELETE", "/api/users/nobody", undefined, admin)).status).toBe(404);
  });

  it("never returns password hashes", async () => {
    const list = await (await call("GET", "/api/users", undefined, admin)).text();
    expect(list).toContain("olivia");
    expect(list).not.toMatch(/pbkdf2|password/);
  });

  it("ends a removed user's sessions and API tokens", async () => {
    const cookie = await userSession(admin, "temp", "operator");
    const { token } = (await (await call("POST", "/api/tokens", { name: "t" }, cookie)).json()) as { token: string };
    expect((await call("GET", "/api/sites", undefined, { Authorization: `Bearer ${token}` })).status).toBe(200);
    expect((await call("DELETE", "/api/users/temp", undefined, admin)).status).toBe(204);
    expect((await call("GET", "/api/sites", undefined, cookie)).status).toBe(401);
    expect((await call("GET", "/api/sites", undefined, { Authorization: `Bearer ${token}` })).status).toBe(401);
  });

  it("sets Secure on the session cookie over https", async () => {
    const { exports } = await import("cloudflare:workers");
    const res = await exports.default.fetch("https://porthole.test/api/session", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: "admin", password: "correct horse battery staple" }),
    });
    expect(res.headers.get("Set-Cookie")).toMatch(/; Secure/);
  });
});

describe("sign-in throttling", () => {
  const signInFrom = (address: string, username: string, password: string) =>
    call("POST", "/api/session", { username, password }, { "CF-Connecting-IP": address });

  it("blocks an (account, address) pair after 5 failures with 429 and Retry-After, but not the owner elsewhere", async () => {
    await userSession(admin, "tina", "viewer");
    for (let i = 0; i < 5; i++) expect((await signInFrom("10.9.0.1", "tina", "wrong")).status).toBe(401);
    const locked = await signInFrom("10.9.0.1", "tina", "pw-tina-0123456789");
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect(((await locked.json()) as { error: { code: string } }).error.code).toBe("too_many_attempts");
    // The owner, from their own address, is not locked out by a stranger's guesses.
    expect((await signInFrom("10.9.9.9", "tina", "pw-tina-0123456789")).status).toBe(200);
  });

  it("evaluates at most the limit of a burst of 40 parallel wrong guesses", async () => {
    await userSession(admin, "burst", "viewer");
    const results = await Promise.all(Array.from({ length: 40 }, () => signInFrom("10.7.0.1", "burst", "wrong password")));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 401)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(35);
    // The right password from the guessing address is refused now too.
    expect((await signInFrom("10.7.0.1", "burst", "pw-burst-0123456789")).status).toBe(429);
    const failures = await auditUntil(admin, "?type=signin.failed&actor=burst", (rows) => (rows.length >= 5 ? rows : undefined));
    expect(failures).toHaveLength(5);
  });

  it("lets no stranger lock the built-in administrator out", async () => {
    const bursts = [];
    for (let a = 0; a < 4; a++) {
      bursts.push(...Array.from({ length: 10 }, () => signInFrom(`10.6.0.${a}`, "admin", "guess")));
    }
    const statuses = (await Promise.all(bursts)).map((r) => r.status);
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(4 * 5);
    expect((await signInFrom("10.6.9.9", "admin", "correct horse battery staple")).status).toBe(200);
  });

  it("shows blocks to administrators and lets them lift one early", async () => {
    await userSession(admin, "unlockme", "viewer");
    for (let i = 0; i < 5; i++) await signInFrom("10.5.0.1", "unlockme", "wrong");
    expect((await signInFrom("10.5.0.1", "unlockme", "pw-unlockme-0123456789")).status).toBe(429);
    const blocks = (await (await call("GET", "/api/signin-blocks", undefined, admin)).json()) as { account: string | null; address: string; retryAfter: number }[];
    expect(blocks).toContainEqual(expect.objectContaining({ account: "unlockme", address: "10.5.0.1" }));
    expect((await call("GET", "/api/signin-blocks", undefined, operator)).status).toBe(403);
    expect((await call("DELETE", "/api/signin-blocks", undefined, admin)).status).toBe(400);
    const cleared = await call("DELETE", "/api/signin-blocks?account=unlockme&address=10.5.0.1", undefined, admin);
    expect(cleared.status).toBe(200);
    expect((await signInFrom("10.5.0.1", "unlockme", "pw-unlockme-0123456789")).status).toBe(200);
  });

  it("limits one client address trying many accounts", async () => {
    for (let i = 0; i < 20; i++) {
      await call("POST", "/api/session", { username: `guess${i}`, password: "x" }, { "CF-Connecting-IP": "10.8.0.1" });
    }
    const res = await call("POST", "/api/session", { username: "admin", password: "correct horse battery staple" }, { "CF-Connecting-IP": "10.8.0.1" });
    expect(res.status).toBe(429);
    // Another address is not affected.
    const other = await call("POST", "/api/session", { username: "admin", password: "correct horse battery staple" }, { "CF-Connecting-IP": "10.8.0.2" });
    expect(other.status).toBe(200);
  });
});

describe("API tokens", () => {
  it("act as their owner, are shown once, stored hashed, and can be revoked", async () => {
    const created = await call("POST", "/api/tokens", { name: "automation" }, operator);
    expect(created.status).toBe(201);
    const { id, token } = (await created.json()) as { id: string; token: string };
    expect(token).toMatch(/^pha_/);
    const bearer = { Authorization: `Bearer ${token}` };
    expect((await call("POST", "/api/links", { site: "authsite", hypervisor: "lab", vm: "desk" }, bearer)).status).toBe(201);
    expect((await call("GET", "/api/users", undefined, bearer)).status).toBe(403); // an operator's token
    const listed = await (await call("GET", "/api/tokens", undefined, operator)).text();
    expect(listed).toContain(id);
    expect(listed).not.toContain(token);
    expect((await call("DELETE", `/api/tokens/${id}`, undefined, viewer)).status).toBe(404); // not the viewer's
    expect((await call("DELETE", `/api/tokens/${id}`, undefined, operator)).status).toBe(204);
    expect((await call("GET", "/api/sites", undefined, bearer)).status).toBe(401);
  });
});

describe("Cloudflare Access", () => {
  it("signs in a valid Access user with the default role", async () => {
    const res = await call("POST", "/api/links", { site: "authsite", hypervisor: "lab", vm: "desk" }, {
      "Cf-Access-Jwt-Assertion": await accessToken({}),
    });
    expect(res.status).toBe(201); // ACCESS_DEFAULT_ROLE is operator in this test config
    expect((await call("GET", "/api/users", undefined, { "Cf-Access-Jwt-Assertion": await accessToken({}) })).status).toBe(403);
  });

  it("uses the role of a Porthole account with the same name", async () => {
    await userSession(admin, "grace@example.com", "admin");
    const res = await call("GET", "/api/users", undefined, { "Cf-Access-Jwt-Assertion": await accessToken({ email: "grace@example.com" }) });
    expect(res.status).toBe(200);
  });

  it("refuses expired tokens, wrong audiences, wrong issuers and forged signatures", async () => {
    const now = Math.floor(Date.now() / 1000);
    const bad = [
      await accessToken({ exp: now - 60 }),
      await accessToken({ aud: "someone-else" }),
      await accessToken({ iss: "https://evil.cloudflareaccess.com" }),
      (await accessToken({})).replace(/\.[^.]+$/, ".AAAA"),
    ];
    for (const jwt of bad) {
      expect((await call("GET", "/api/sites", undefined, { "Cf-Access-Jwt-Assertion": jwt })).status).toBe(401);
    }
  });
});

describe("audit", () => {
  it("records sign-ins, users and tokens, newest first, with filters and paging", async () => {
    await call("POST", "/api/session", { username: "nobody", password: "x" });
    const failed = await auditUntil(admin, "?type=signin.failed&actor=nobody", (rows) => rows[0]);
    expect(failed).toMatchObject({ type: "signin.failed", actor: "nobody", detail: { address: "local" } });
    const userRows = await auditUntil(admin, "?type=user", (rows) => (rows.some((r) => r.type === "user.deleted") ? rows : undefined));
    expect(userRows.map((r) => r.type)).toContain("user.created");
    await auditUntil(admin, "?type=token", (rows) => (rows.some((r) => r.type === "token.revoked") ? true : undefined));
    await auditUntil(admin, "?type=site.created", (rows) => rows.find((r) => r.site === "authsite"));
    await auditUntil(admin, "?type=connector.connected&site=authsite", (rows) => rows[0]);

    const page1 = (await (await call("GET", "/api/audit?limit=2", undefined, admin)).json()) as { id: number }[];
    expect(page1).toHaveLength(2);
    expect(page1[0]!.id).toBeGreaterThan(page1[1]!.id);
    const page2 = (await (await call("GET", `/api/audit?limit=2&before=${page1[1]!.id}`, undefined, admin)).json()) as { id: number }[];
    expect(page2[0]!.id).toBeLessThan(page1[1]!.id);
    expect((await call("GET", "/api/audit?limit=5000", undefined, admin)).status).toBe(400);
  });
});
