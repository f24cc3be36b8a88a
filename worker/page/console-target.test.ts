import { describe, expect, it, vi } from "vitest";
import { apiClient } from "../../shared/api/client.ts";
import { ConsentGate } from "./console-consent.ts";
import { firstTarget, type TargetDeps } from "./console-target.ts";

type Reply = { status: number; body?: unknown } | Error;

/** The page's lookups against a fake edge: each request takes the next reply. */
function page(pathname: string, hash: string, replies: Reply[], trusted = true) {
  const requests: { url: string; init: RequestInit }[] = [];
  const api = apiClient({
    fetch: async (url, init) => {
      requests.push({ url: String(url), init: init ?? {} });
      const r = replies.shift() ?? { status: 500 };
      if (r instanceof Error) throw r;
      return new Response(r.body === undefined ? null : JSON.stringify(r.body), { status: r.status, headers: { "Content-Type": "application/json" } });
    },
  });
  const ask = vi.fn(async () => {});
  const replaceUrl = vi.fn();
  const pins: (string | null)[] = [];
  const askPin = vi.fn(async (_vm: string, problem: string | null) => {
    pins.push(problem);
    return problem ? "123456" : "000000";
  });
  const names: (string | null)[] = [];
  const askName = vi.fn(async (_vm: string, problem: string | null) => {
    names.push(problem);
    return problem ? "Ana" : "";
  });
  const waits: (string | null)[] = [];
  const waiting = vi.fn((text: string | null) => void waits.push(text));
  const sleep = vi.fn(async () => {});
  const deps: TargetDeps = { api, consent: new ConsentGate(trusted, ask), pathname, hash, replaceUrl, askPin, askName, waiting, sleep };
  return { first: firstTarget(deps), requests, ask, replaceUrl, askPin, pins, askName, names, waits, sleep };
}

const refused = (message: string, status = 410) => ({ status, body: { error: { code: "gone", message } } });

describe("where the console page's socket comes from", () => {
  it("uses a ticket URL at once and drops the ticket from the address bar", async () => {
    const p = page("/console", "site=dc1&hypervisor=lab&vm=web-1&ticket=t1", []);
    const t = await p.first();
    expect(t).toMatchObject({ site: "dc1", socketPath: "/ws/console/dc1?ticket=t1", viewOnly: false, vmName: "web-1" });
    expect(p.replaceUrl).toHaveBeenCalledWith("/console#site=dc1&hypervisor=lab&vm=web-1");
    expect(p.requests).toHaveLength(0);
  });

  it("asks the session for a fresh ticket on a reload or reconnect, after consent when not trusted", async () => {
    const opened = { status: 201, body: { pageUrl: "https://edge.example/console#site=dc1&ticket=t2&view=1" } };
    const p = page("/console", "site=dc1&hypervisor=lab&vm=web-1", [opened, opened], false);
    const t = await p.first();
    expect(p.ask).toHaveBeenCalledWith("dc1", "web-1");
    expect(t).toMatchObject({ socketPath: "/ws/console/dc1?ticket=t2", viewOnly: true, vmName: "web-1" });
    expect(p.requests[0]!.url).toBe("/api/consoles");
    expect(JSON.parse(String(p.requests[0]!.init.body))).toEqual({ site: "dc1", hypervisor: "lab", vm: "web-1" });
    // Consent is asked once: the reconnect goes ahead.
    await (t as Exclude<typeof t, string>).again();
    expect(p.ask).toHaveBeenCalledTimes(1);
    expect(p.requests).toHaveLength(2);
  });

  it("says why it cannot, in words, and throws what should be retried", async () => {
    expect(await page("/console", "site=dc1", []).first()).toBe("This console link is incomplete. Open the console again from Porthole.");
    expect(await page("/l/dc1", "", []).first()).toBe("This console link is incomplete. Check that you copied all of it.");
    const ticketOnly = await page("/console", "site=dc1&ticket=t1", []).first();
    expect(await (ticketOnly as Exclude<typeof ticketOnly, string>).again()).toBe("The connection was lost. Open the console again from Porthole.");
    expect(await page("/console", "site=dc1&hypervisor=lab&vm=web-1", [{ status: 401, body: { error: { code: "unauthorized", message: "Sign in." } } }]).first()).toBe(
      "You are signed out of Porthole. Sign in and open the console again.",
    );
    expect(await page("/console", "site=dc1&hypervisor=lab&vm=web-1", [refused("You may not open this console.", 403)]).first()).toBe("You may not open this console.");
    expect(await page("/console", "site=dc1&hypervisor=lab&vm=web-1", [{ status: 201, body: { pageUrl: "https://edge.example/console#site=dc1" } }]).first()).toBe(
      "Porthole answered without a console ticket.",
    );
    // The edge's trouble or silence: thrown, so the page counts down and tries again.
    await expect(page("/console", "site=dc1&hypervisor=lab&vm=web-1", [{ status: 503 }]).first()).rejects.toThrow();
    await expect(page("/console", "site=dc1&hypervisor=lab&vm=web-1", [new TypeError("Failed to fetch")]).first()).rejects.toThrow();
  });

  it("reuses a share link while it lives, its secret in a header", async () => {
    const status = { status: 200, body: { expiresAt: "2026-12-07T07:00:00Z", viewOnly: true, vm: "web-1" } };
    const p = page("/l/dc1", "s3cret", [status, refused("This link was revoked.")]);
    const t = await p.first();
    expect(t).toMatchObject({ site: "dc1", socketPath: "/ws/link/dc1?link=s3cret", viewOnly: true, vmName: "web-1", expiresAt: Date.parse("2026-12-07T07:00:00Z") });
    expect(p.requests[0]!.url).toBe("/l/dc1/status");
    expect(new Headers(p.requests[0]!.init.headers).get("X-Porthole-Link")).toBe("s3cret");
    expect(await (t as Exclude<typeof t, string>).again()).toBe("This link was revoked.");
  });

  it("asks for a link's PIN, again after a wrong one with the edge's words, and puts only the pass in the socket URL", async () => {
    const status = { status: 200, body: { expiresAt: "2030-01-01T00:00:00Z", viewOnly: true, vm: "Web", pin: true } };
    const wrong = { status: 403, body: { error: { code: "wrong_pin", message: "Wrong PIN: 9 more wrong PINs lock this link." } } };
    const pass = (p: string) => ({ status: 200, body: { pass: p, expiresAt: "2030-01-01T00:00:00Z" } });
    const p = page("/l/dc1", "s3cret", [status, wrong, pass("p1"), status, pass("p2")]);
    const t = await p.first();
    if (typeof t === "string") throw new Error(t);
    expect(p.pins).toEqual([null, "Wrong PIN: 9 more wrong PINs lock this link."]);
    expect(t.socketPath).toBe("/ws/link/dc1?link=s3cret&pass=p1");
    expect(p.requests.map((r) => r.url).join(" ")).not.toContain("123456");
    expect(JSON.parse(String(p.requests[2]!.init.body))).toEqual({ pin: "123456" });
    // A reconnect reuses the right PIN for a new pass, without asking.
    const again = await t.again();
    if (typeof again === "string") throw new Error(again);
    expect(again.socketPath).toBe("/ws/link/dc1?link=s3cret&pass=p2");
    expect(p.askPin).toHaveBeenCalledTimes(2);
  });

  it("says a locked link is locked, as the edge said it", async () => {
    const status = { status: 200, body: { expiresAt: "2030-01-01T00:00:00Z", viewOnly: true, vm: "Web", pin: true } };
    const p = page("/l/dc1", "s3cret", [status, refused("This share link is locked: too many wrong PINs were tried.")]);
    expect(await p.first()).toBe("This share link is locked: too many wrong PINs were tried.");
  });

  it("asks a link that asks first for a name, waits until allowed, and only then gives the socket its pass", async () => {
    const status = { status: 200, body: { expiresAt: "2030-01-01T00:00:00Z", viewOnly: true, vm: "Web", pin: false, approval: true } };
    const badName = { status: 400, body: { error: { code: "invalid_request", message: "name: say who you are" } } };
    const asked = { status: 201, body: { id: "j1", token: "tok", expiresAt: new Date(Date.now() + 120_000).toISOString(), vm: "Web" } };
    const waitingState = { status: 200, body: { state: "waiting", expiresAt: "2030-01-01T00:00:00Z", message: "Waiting" } };
    const allowed = { status: 200, body: { state: "allowed", expiresAt: "2030-01-01T00:00:00Z", message: "You were let in.", pass: "jp1" } };
    const p = page("/l/dc1", "s3cret", [status, badName, asked, waitingState, new TypeError("Failed to fetch"), allowed]);
    const t = await p.first();
    if (typeof t === "string") throw new Error(t);
    expect(p.names).toEqual([null, "name: say who you are"]);
    expect(JSON.parse(String(p.requests[2]!.init.body))).toEqual({ name: "Ana" });
    // Looked three times (one failed on the way and was retried), with the token in a header only.
    const looks = p.requests.filter((r) => r.url === "/l/dc1/join/j1");
    expect(looks).toHaveLength(3);
    expect(new Headers(looks[0]!.init.headers).get("X-Porthole-Join")).toBe("tok");
    expect(p.waits[0]).toMatch(/^Waiting for someone in control of Web to let you in \(\d:\d\d left\)\.$/);
    expect(p.waits.at(-1)).toBeNull();
    expect(t.socketPath).toBe("/ws/link/dc1?link=s3cret&pass=jp1");
  });

  it("comes back on the same request after a drop without asking anyone; asks again when the edge no longer holds the seat", async () => {
    const status = { status: 200, body: { expiresAt: "2030-01-01T00:00:00Z", viewOnly: true, vm: "Web", pin: false, approval: true } };
    const asked = (id: string) => ({ status: 201, body: { id, token: `tok-${id}`, expiresAt: new Date(Date.now() + 120_000).toISOString(), vm: "Web" } });
    const state = (s: string, pass?: string) => ({ status: 200, body: { state: s, expiresAt: "2030-01-01T00:00:00Z", message: s, ...(pass ? { pass } : {}) } });
    const p = page("/l/dc1", "s3cret", [status, asked("j1"), state("allowed", "p1"), status, state("allowed", "p2"), status, state("used"), asked("j2"), state("allowed", "p3")]);
    const first = await p.first();
    if (typeof first === "string") throw new Error(first);
    const second = await first.again();
    if (typeof second === "string") throw new Error(second);
    expect(second.socketPath).toBe("/ws/link/dc1?link=s3cret&pass=p2");
    expect(p.requests.filter((r) => r.init.method === "POST")).toHaveLength(1);
    // The seat is gone (used): it asks again, by the same name, and waits.
    const third = await second.again();
    if (typeof third === "string") throw new Error(third);
    expect(third.socketPath).toBe("/ws/link/dc1?link=s3cret&pass=p3");
    const asks = p.requests.filter((r) => r.init.method === "POST");
    expect(asks).toHaveLength(2);
    expect(JSON.parse(String(asks[1]!.init.body))).toEqual({ name: "" });
    expect(p.askName).toHaveBeenCalledTimes(1);
  });

  it("puts a PIN's pass into the request to join, not the socket, and says no as the edge said it", async () => {
    const status = { status: 200, body: { expiresAt: "2030-01-01T00:00:00Z", viewOnly: true, vm: "Web", pin: true, approval: true } };
    const pinPass = { status: 200, body: { pass: "pp", expiresAt: "2030-01-01T00:00:00Z" } };
    const asked = { status: 201, body: { id: "j2", token: "tok", expiresAt: new Date(Date.now() + 120_000).toISOString(), vm: "Web" } };
    const denied = { status: 200, body: { state: "denied", expiresAt: "2030-01-01T00:00:00Z", message: "Someone in control of this console said no: you may not watch it." } };
    const p = page("/l/dc1", "s3cret", [status, pinPass, asked, denied]);
    expect(await p.first()).toBe("Someone in control of this console said no: you may not watch it.");
    expect(JSON.parse(String(p.requests[2]!.init.body))).toEqual({ name: "", pass: "pp" });
  });
});
