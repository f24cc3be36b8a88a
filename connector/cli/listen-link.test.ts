import { describe, expect, it, vi } from "vitest";
import { apiClient } from "../../shared/api/client.ts";
import type { LinkStatus } from "../../shared/api/types.ts";
import { defaultName, LinkGate, LinkGateError } from "./listen-link.ts";

type Reply = { status: number; body?: unknown };

/** The edge as a list of replies, one per request, and what was asked. */
function edge(replies: Reply[]) {
  const requests: { url: string; body: unknown; headers: Headers }[] = [];
  const api = apiClient({
    base: "https://edge.test",
    fetch: async (url, init) => {
      requests.push({ url: String(url), body: init.body ? JSON.parse(String(init.body)) : undefined, headers: new Headers(init.headers) });
      const r = replies.shift() ?? { status: 500 };
      return new Response(r.body === undefined ? null : JSON.stringify(r.body), { status: r.status, headers: { "Content-Type": "application/json" } });
    },
  });
  return { api, requests };
}

const status = (extra: Partial<LinkStatus>): LinkStatus => ({ expiresAt: "2030-01-01T00:00:00Z", viewOnly: true, vm: "web-1", pin: false, approval: false, ...extra });
const pass = (p: string) => ({ status: 200, body: { pass: p, expiresAt: new Date(Date.now() + 60_000).toISOString() } });
const wrong = { status: 403, body: { error: { code: "wrong_pin", message: "Wrong PIN: 9 more wrong PINs lock this link." } } };

describe("porthole listen's share-link gate", () => {
  it("asks for the PIN on the terminal, again after a wrong one with the edge's words, and reuses the checked pass once", async () => {
    const { api, requests } = edge([wrong, pass("p1"), pass("p2")]);
    const answers = ["111111", " 123456 "];
    const prompt = vi.fn(async () => answers.shift()!);
    const said: string[] = [];
    const gate = new LinkGate(api, "dc1", "s3cret", status({ pin: true }), { prompt, say: (l) => said.push(l) });
    await gate.prepare();
    expect(prompt).toHaveBeenCalledTimes(2);
    expect(prompt.mock.calls[0]).toEqual(["PIN for the share link to web-1: "]);
    expect(said).toEqual(["Wrong PIN: 9 more wrong PINs lock this link."]);
    expect(requests.map((r) => r.body)).toEqual([{ pin: "111111" }, { pin: "123456" }]);
    expect(requests.every((r) => !r.url.includes("123456") && r.headers.get("X-Porthole-Link") === "s3cret")).toBe(true);
    // The first connection takes the pass the check gave; the next one a fresh pass.
    expect(await gate.passFor("c1")).toBe("&pass=p1");
    expect(await gate.passFor("c2")).toBe("&pass=p2");
    expect(requests).toHaveLength(3);
  });

  it("without a terminal, needs --pin and says so; a wrong --pin is final", async () => {
    const none = new LinkGate(edge([]).api, "dc1", "s", status({ pin: true }), { say: () => {} });
    await expect(none.prepare()).rejects.toThrow(new LinkGateError("this share link needs its PIN: give it with --pin (whoever shared the link has it)"));
    const bad = new LinkGate(edge([wrong]).api, "dc1", "s", status({ pin: true }), { pin: "111111", say: () => {} });
    await expect(bad.prepare()).rejects.toThrow("the PIN was refused: Wrong PIN: 9 more wrong PINs lock this link.");
  });

  it("a link that asks first: asks to join by name with the PIN's pass, waits, and gives the socket the pass it was let in with", async () => {
    const asked = { status: 201, body: { id: "j1", token: "tok", expiresAt: new Date(Date.now() + 120_000).toISOString(), vm: "web-1" } };
    const allowed = { status: 200, body: { state: "allowed", expiresAt: "2030-01-01T00:00:00Z", message: "You were let in.", pass: "jp" } };
    const { api, requests } = edge([pass("p1"), asked, allowed]);
    const said: string[] = [];
    const gate = new LinkGate(api, "dc1", "s", status({ pin: true, approval: true }), { pin: "123456", name: "Ana", say: (l) => said.push(l) });
    await gate.prepare();
    expect(await gate.passFor("connection 1")).toBe("&pass=jp");
    expect(requests[1]!.body).toEqual({ name: "Ana", pass: "p1" });
    expect(requests[2]!.headers.get("X-Porthole-Join")).toBe("tok");
    expect(said[0]).toMatch(/^connection 1: asked to join as "Ana"; waiting for someone in control of web-1/);
  }, 10_000);

  it("a denied connection hears the edge's words", async () => {
    const asked = { status: 201, body: { id: "j1", token: "tok", expiresAt: new Date(Date.now() + 120_000).toISOString(), vm: "web-1" } };
    const denied = { status: 200, body: { state: "denied", expiresAt: "2030-01-01T00:00:00Z", message: "Someone in control of this console said no: you may not watch it." } };
    const gate = new LinkGate(edge([asked, denied]).api, "dc1", "s", status({ approval: true }), { name: "Bo", say: () => {} });
    await expect(gate.passFor("c1")).rejects.toThrow("Someone in control of this console said no: you may not watch it.");
  }, 10_000);

  it("names a listening viewer by login and machine, within the edge's bound", () => {
    expect(defaultName("ana", "laptop")).toBe("ana on laptop (porthole listen)");
    expect(defaultName(undefined, "h".repeat(100)).length).toBe(60);
  });
});
