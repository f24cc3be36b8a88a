/** Issue 10, browsers: CSRF (login CSRF included), body caps, security headers and caching. */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../../worker/index.ts";
import { call, createSite, ORIGIN, signIn, welcomedConnector } from "./helpers.ts";

let admin = "";

beforeAll(async () => {
  admin = await signIn();
  await welcomedConnector(await createSite(admin, "browsersite"));
});

async function raw(path: string, init: RequestInit): Promise<Response> {
  return exports.default.fetch(`${ORIGIN}${path}`, init);
}

async function userExists(name: string): Promise<boolean> {
  const list = (await (await call("GET", "/api/users", undefined, admin)).json()) as { username: string }[];
  return list.some((u) => u.username === name);
}

const newUser = (username: string) => ({ username, password: "long enough password", role: "admin" });

describe("cross-site requests", () => {
  it("refuses bodies that a cross-site form can send (text/plain, form, multipart) with 415, and changes nothing", async () => {
    const bodies: [string, BodyInit][] = [
      ["text/plain", JSON.stringify(newUser("csrf1"))],
      ["application/x-www-form-urlencoded", "username=csrf1&password=long+enough+password&role=admin"],
    ];
    for (const [type, body] of bodies) {
      const res = await raw("/api/users", { method: "POST", headers: { Cookie: admin, "Content-Type": type }, body });
      expect(res.status, type).toBe(415);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unsupported_media_type");
    }
    const form = new FormData();
    form.set("username", "csrf1");
    const multipart = await raw("/api/users", { method: "POST", headers: { Cookie: admin }, body: form });
    expect(multipart.status).toBe(415);
    expect(await userExists("csrf1")).toBe(false);
  });

  it("refuses a page on a sibling host riding the admin's cookie (Sec-Fetch-Site, or Origin without it)", async () => {
    const json = { Cookie: admin, "Content-Type": "application/json" };
    const attempts: Record<string, string>[] = [
      { "Sec-Fetch-Site": "same-site", Origin: "http://evil.porthole.test" },
      { "Sec-Fetch-Site": "cross-site", Origin: "https://attacker.example" },
      { Origin: "http://evil.porthole.test" },
      { Origin: "null" },
    ];
    for (const headers of attempts) {
      const res = await raw("/api/users", { method: "POST", headers: { ...json, ...headers }, body: JSON.stringify(newUser("csrf2")) });
      expect(res.status, JSON.stringify(headers)).toBe(403);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("cross_site_request");
    }
    // Deleting is state-changing too.
    expect((await raw("/api/users/olivia", { method: "DELETE", headers: { Cookie: admin, "Sec-Fetch-Site": "cross-site" } })).status).toBe(403);
    expect(await userExists("csrf2")).toBe(false);
    // The app's own pages still work.
    const ok = await raw("/api/users", {
      method: "POST",
      headers: { ...json, "Sec-Fetch-Site": "same-origin", Origin: ORIGIN },
      body: JSON.stringify(newUser("csrf2")),
    });
    expect(ok.status).toBe(201);
  });

  it("refuses login CSRF: a cross-site form cannot sign the victim into the attacker's account", async () => {
    const creds = { username: "admin", password: "correct horse battery staple" };
    const form = await raw("/api/session", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "cross-site" },
      body: new URLSearchParams(creds).toString(),
    });
    expect(form.status).toBe(415);
    expect(form.headers.get("Set-Cookie")).toBeNull();
    const crossJson = await raw("/api/session", {
      method: "POST",
      headers: { "Content-Type": "application/json", Origin: "https://attacker.example" },
      body: JSON.stringify(creds),
    });
    expect(crossJson.status).toBe(403);
    expect(crossJson.headers.get("Set-Cookie")).toBeNull();
  });

  it("judges an API token without cookies by the token alone (programs send no Origin rules)", async () => {
    const { token } = (await (await call("POST", "/api/tokens", { name: "ci" }, admin)).json()) as { token: string };
    const res = await raw("/api/users", {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", Origin: "https://ci.example" },
      body: JSON.stringify(newUser("fromci")),
    });
    expect(res.status).toBe(201);
    // With the victim's cookie alongside, it is a browser again.
    const withCookie = await raw("/api/users", {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, Cookie: admin, "Content-Type": "application/json", Origin: "https://ci.example" },
      body: JSON.stringify(newUser("fromci2")),
    });
    expect(withCookie.status).toBe(403);
  });
});

describe("body size", () => {
  const big = JSON.stringify({ username: "admin", password: "x".repeat(70 * 1024) });

  it("refuses an oversized unauthenticated sign-in body with 413 before parsing it", async () => {
    const res = await raw("/api/session", { method: "POST", headers: { "Content-Type": "application/json" }, body: big });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("body_too_large");
  });

  it("counts a streamed body without Content-Length too", async () => {
    const bytes = new TextEncoder().encode(big);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 8192) controller.enqueue(bytes.slice(i, i + 8192));
        controller.close();
      },
    });
    const res = await raw("/api/session", { method: "POST", headers: { "Content-Type": "application/json" }, body: stream });
    expect(res.status).toBe(413);
  });
});

describe("security headers", () => {
  function expectPageHeaders(res: Response, what: string): void {
    const csp = res.headers.get("Content-Security-Policy") ?? "";
    expect(csp, what).toMatch(/frame-ancestors 'none'/);
    expect(csp, what).toMatch(/default-src 'self'/);
    expect(res.headers.get("X-Content-Type-Options"), what).toBe("nosniff");
    expect(res.headers.get("Referrer-Policy"), what).toBe("no-referrer");
    expect(res.headers.get("X-Frame-Options"), what).toBe("DENY");
  }

  it("every HTML page forbids framing: the app, the console page, share-link pages and their 410 pages", async () => {
    const app = await call("GET", "/");
    expect(app.headers.get("Content-Type")).toMatch(/text\/html/);
    expectPageHeaders(app, "app");
    const consolePage = await call("GET", "/console");
    expect(await consolePage.text()).toContain("/console.js");
    expectPageHeaders(consolePage, "console");
    expect(consolePage.headers.get("Cache-Control")).toBe("no-store");
    const link = (await (await call("POST", "/api/links", { site: "browsersite", hypervisor: "lab", vm: "desk" }, admin)).json()) as { id: string; url: string };
    const linkPage = await call("GET", new URL(link.url).pathname);
    expectPageHeaders(linkPage, "link page");
    expect(linkPage.headers.get("Cache-Control")).toBe("no-store");
    expect((await call("DELETE", `/api/links/${link.id}`, undefined, admin)).status).toBe(204);
    const u = new URL(link.url);
    const gone = await call("GET", `${u.pathname}/${u.hash.slice(1)}`);
    expect(gone.status).toBe(410);
    expectPageHeaders(gone, "410 page");
    expect(gone.headers.get("Cache-Control")).toBe("no-store");
  });

  it("lets an operator name origins that may embed console and share pages (FRAME_ANCESTORS), and only those pages", async () => {
    const custom = { ...env, FRAME_ANCESTORS: "https://portal.example.com, not-an-origin https://ops.example.com:8443" };
    const get = async (path: string) => {
      const ctx = createExecutionContext();
      const res = await worker.fetch(new Request(`${ORIGIN}${path}`), custom, ctx);
      await waitOnExecutionContext(ctx);
      return res;
    };
    const consolePage = await get("/console");
    expect(consolePage.headers.get("Content-Security-Policy")).toMatch(/frame-ancestors https:\/\/portal\.example\.com https:\/\/ops\.example\.com:8443(;|$)/);
    expect(consolePage.headers.get("X-Frame-Options")).toBeNull();
    expect((await get("/l/browsersite")).headers.get("Content-Security-Policy")).toMatch(/frame-ancestors https:\/\/portal\.example\.com/);
    // The app itself (users, tokens, sites) never.
    expect((await get("/")).headers.get("Content-Security-Policy")).toMatch(/frame-ancestors 'none'/);
  });

  it("marks every response that carries a secret no-store", async () => {
    const created = [
      await call("POST", "/api/consoles", { site: "browsersite", hypervisor: "lab", vm: "desk" }, admin),
      await call("POST", "/api/links", { site: "browsersite", hypervisor: "lab", vm: "desk" }, admin),
      await call("POST", "/api/tokens", { name: "t" }, admin),
      await call("POST", "/api/sites", { name: "browsersite2" }, admin),
      await call("POST", "/api/session", { username: "admin", password: "correct horse battery staple" }),
    ];
    for (const res of created) expect(res.headers.get("Cache-Control"), res.url).toBe("no-store");
    for (const path of ["/api/links", "/api/tokens", "/api/sites", "/api/session", "/api/users"]) {
      const res = await call("GET", path, undefined, admin);
      expect(res.status, path).toBe(200);
      expect(res.headers.get("Cache-Control"), path).toBe("no-store");
      expect(res.headers.get("X-Content-Type-Options"), path).toBe("nosniff");
    }
  });
});
