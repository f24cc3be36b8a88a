/**
 * Issue 23, items 1 and 5: the built-in administrator (ADMIN_USERNAME / ADMIN_PASSWORD secrets).
 * A change of its secrets ends what the old secrets opened, as a password change or deletion does
 * for an account; API tokens may expire and show when they were last used; every sign-in path does
 * the same key derivation (counted, never timed).
 *
 * "Restart with changed secrets on the same storage" is the Worker's fetch called with a changed
 * env object: the registry is the same object, so its storage is the same.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { encodeOpenOk, FrameType } from "../../shared/protocol/frames.ts";
import worker from "../../worker/index.ts";
import { passwordWork } from "../../worker/auth/passwords.ts";
import { call, createSite, openBrowser, ORIGIN, signIn, userSession, welcomedConnector } from "./helpers.ts";
import { later } from "./clock.ts";

const OLD_PASSWORD = env.ADMIN_PASSWORD!;

/** The Worker with other secrets, on the same storage. */
async function fetchWith(secrets: { ADMIN_USERNAME?: string; ADMIN_PASSWORD?: string }, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    new Request(`${ORIGIN}${path}`, { method, headers: { "Content-Type": "application/json", ...headers }, body: body === undefined ? undefined : JSON.stringify(body) }),
    { ...env, ...secrets },
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return res;
}

async function linkStatus(url: string, secrets: { ADMIN_PASSWORD?: string; ADMIN_USERNAME?: string }): Promise<number> {
  const u = new URL(url);
  return (await fetchWith(secrets, "GET", `${u.pathname}/status`, undefined, { "X-Porthole-Link": decodeURIComponent(u.hash.slice(1)) })).status;
}

describe("API tokens: expiry and last use", () => {
  it("takes an optional ttlDays, refuses nonsense with a clear 400, and stops working when it expires", async () => {
    const admin = await signIn();
    for (const ttlDays of [0, -1, 1.5, 366, "7"]) {
      const res = await call("POST", "/api/tokens", { name: "bad", ttlDays }, admin);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/ttlDays/);
    }
    const made = await call("POST", "/api/tokens", { name: "week", ttlDays: 7 }, admin);
    expect(made.status).toBe(201);
    const { id, token, expiresAt } = (await made.json()) as { id: string; token: string; expiresAt: string };
    expect(Date.parse(expiresAt) - Date.now()).toBeGreaterThan(7 * 86400_000 - 60_000);
    const bearer = { Authorization: `Bearer ${token}` };
    expect((await call("GET", "/api/sites", undefined, bearer)).status).toBe(200);
    const listed = ((await (await call("GET", "/api/tokens", undefined, admin)).json()) as { id: string; expiresAt: string | null; lastUsedAt: string | null }[]).find((t) => t.id === id)!;
    expect(listed.expiresAt).toBe(expiresAt);
    expect(listed.lastUsedAt).not.toBeNull();
    expect(await later(8 * 86400_000, async () => (await call("GET", "/api/sites", undefined, bearer)).status)).toBe(401);
  });

  it("records the last use at most once a minute per token", async () => {
    const admin = await signIn();
    const { id, token } = (await (await call("POST", "/api/tokens", { name: "busy" }, admin)).json()) as { id: string; token: string };
    const bearer = { Authorization: `Bearer ${token}` };
    const lastUsed = async () =>
      ((await (await call("GET", "/api/tokens", undefined, admin)).json()) as { id: string; lastUsedAt: string | null; expiresAt: string | null }[]).find((t) => t.id === id)!;
    expect(await lastUsed()).toMatchObject({ lastUsedAt: null, expiresAt: null });
    await call("GET", "/api/sites", undefined, bearer);
    const first = (await lastUsed()).lastUsedAt!;
    await later(30_000, () => call("GET", "/api/sites", undefined, bearer));
    expect((await lastUsed()).lastUsedAt).toBe(first);
    await later(61_000, () => call("GET", "/api/sites", undefined, bearer));
    expect(Date.parse((await lastUsed()).lastUsedAt!)).toBeGreaterThan(Date.parse(first) + 60_000);
  });
});

describe("sign-in does the same work for every name (item 5)", () => {
  it("derives a key exactly once for the built-in admin, an account, a disabled account and an unknown name", async () => {
    const admin = await signIn();
    await userSession(admin, "kdf-normal", "viewer");
    await userSession(admin, "kdf-disabled", "viewer");
    expect((await call("PATCH", "/api/users/kdf-disabled", { disabled: true }, admin)).status).toBe(200);
    const attempt = async (username: string, password: string) => {
      const before = passwordWork.derivations;
      const res = await fetchWith({}, "POST", "/api/session", { username, password }, { "CF-Connecting-IP": `203.0.113.${username.length}` });
      return { status: res.status, derivations: passwordWork.derivations - before };
    };
    await attempt("warm-up", "x"); // the isolate's first request also derives the built-in admin's verifier once
    expect(await attempt("admin", "wrong password")).toEqual({ status: 401, derivations: 1 });
    expect(await attempt("admin", OLD_PASSWORD)).toEqual({ status: 200, derivations: 1 });
    expect(await attempt("kdf-normal", "wrong password")).toEqual({ status: 401, derivations: 1 });
    expect(await attempt("kdf-normal", "pw-kdf-normal-0123456789")).toEqual({ status: 200, derivations: 1 });
    expect(await attempt("kdf-disabled", "pw-kdf-disabled-0123456789")).toEqual({ status: 401, derivations: 1 });
    expect(await attempt("nobody-here", "wrong password")).toEqual({ status: 401, derivations: 1 });
  });
});

// Last in this file: the secrets change for good (a replaced password is refused for a while).
describe("a change of the built-in administrator's secrets (item 1)", () => {
  it("ends the old admin's sessions, API tokens, share links and live consoles at once", async () => {
    const admin = await signIn();
    const operator = await userSession(admin, "secrets-op", "operator");
    const { token } = (await (await call("POST", "/api/tokens", { name: "forever" }, admin)).json()) as { token: string };
    const bearer = { Authorization: `Bearer ${token}` };
    const connector = await welcomedConnector(await createSite(admin, "secrets1"));
    const link = (await (await call("POST", "/api/links", { site: "secrets1", hypervisor: "lab", vm: "desk", viewOnly: false }, admin)).json()) as { url: string };
    const ticket = (await (await call("POST", "/api/consoles", { site: "secrets1", hypervisor: "lab", vm: "desk" }, admin)).json()) as { wsUrl: string };
    const typing = await openBrowser(ticket.wsUrl);
    const open = await connector.nextFrame();
    expect(open.type).toBe(FrameType.open);
    connector.send(encodeOpenOk(open.stream));

    const rotated = { ADMIN_PASSWORD: "a brand new admin password" };
    expect((await fetchWith(rotated, "GET", "/api/sessions", undefined, { Cookie: admin })).status).toBe(401);
    expect((await fetchWith(rotated, "GET", "/api/sessions", undefined, bearer)).status).toBe(401);
    expect(await linkStatus(link.url, rotated)).toBe(410);
    expect(await typing.closedWith(2000)).toMatchObject({ code: CloseCode.gone, reason: expect.stringMatching(/administrator's credentials were changed/) });
    // Accounts are untouched; the old password no longer signs in, the new one does.
    expect((await fetchWith(rotated, "GET", "/api/sessions", undefined, { Cookie: operator })).status).toBe(200);
    expect((await fetchWith(rotated, "POST", "/api/session", { username: "admin", password: OLD_PASSWORD })).status).toBe(401);
    const fresh = await fetchWith(rotated, "POST", "/api/session", { username: "admin", password: rotated.ADMIN_PASSWORD });
    expect(fresh.status).toBe(200);
    const freshCookie = fresh.headers.get("Set-Cookie")!.split(";")[0]!;
    expect((await fetchWith(rotated, "GET", "/api/sessions", undefined, { Cookie: freshCookie })).status).toBe(200);

    // An isolate still running the old secrets during a rollout changes nothing back.
    expect((await call("POST", "/api/session", { username: "admin", password: OLD_PASSWORD })).status).toBe(401);
    expect((await fetchWith(rotated, "GET", "/api/sessions", undefined, { Cookie: freshCookie })).status).toBe(200);

    // A new ADMIN_USERNAME ends the renamed admin's links too.
    const link2 = (await (await fetchWith(rotated, "POST", "/api/links", { site: "secrets1", hypervisor: "lab", vm: "desk", viewOnly: false }, { Cookie: freshCookie })).json()) as { url: string };
    expect(await linkStatus(link2.url, rotated)).toBe(200);
    const renamed = { ...rotated, ADMIN_USERNAME: "root-admin" };
    expect(await linkStatus(link2.url, renamed)).toBe(410);
    expect((await fetchWith(renamed, "GET", "/api/sessions", undefined, { Cookie: freshCookie })).status).toBe(401);

    // Going back to an earlier password later is a new start: nothing of its earlier time returns.
    const back = await later(3600_000, () => call("POST", "/api/session", { username: "admin", password: OLD_PASSWORD }));
    expect(back.status).toBe(200);
    expect((await call("GET", "/api/sessions", undefined, admin)).status).toBe(401);
    expect((await call("GET", "/api/sessions", undefined, bearer)).status).toBe(401);
  });
});
