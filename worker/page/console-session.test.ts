import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiFailure } from "../../shared/api/client.ts";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { PROBE_MESSAGE } from "./console-stall.ts";
import { type Connection, type ConsoleEvents, ConsoleSession, idleWarningEnd, rateText, type Target } from "./console-session.ts";

interface Opened {
  target: Target;
  events: ConsoleEvents;
  conn: Connection & { sendOwn: ReturnType<typeof vi.fn>; setFit: ReturnType<typeof vi.fn> };
}

function target(again: () => Promise<Target | string>, extra: Partial<Target> = {}): Target {
  return { site: "dc1", socketPath: "/s", viewOnly: false, vmName: "web-1", again, ...extra };
}

/** A session on fakes: each `open` is recorded; `again` answers from `answers` in turn. */
function harness(answers: (Target | string | Error)[], first?: Target | string) {
  const opened: Opened[] = [];
  const again = vi.fn(async (): Promise<Target | string> => {
    const next = answers.shift();
    if (next === undefined) throw new Error("no more answers");
    if (next instanceof Error) throw next;
    return next;
  });
  const session = new ConsoleSession({
    first: async () => first ?? target(again),
    open(t, events) {
      const conn = { sendOwn: vi.fn(), setFit: vi.fn() };
      opened.push({ target: t, events, conn });
      return conn;
    },
    ping: async () => 12.4,
  });
  return { session, opened, again, last: () => opened[opened.length - 1]! };
}

/** Lets the session's awaits settle without moving the clock. */
const settle = () => vi.advanceTimersByTimeAsync(0);

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(Date.parse("2026-12-07T06:00:00Z"));
});
afterEach(() => vi.useRealTimers());

describe("the console session", () => {
  it("connects, then says Connected with the toolbar on and the RTT measured", async () => {
    const { session, opened } = harness([]);
    await session.start();
    expect(session.view).toMatchObject({ state: "connecting", status: "Connecting…", title: "dc1 — web-1", controls: "off" });
    opened[0]!.events.connected();
    await settle();
    expect(session.view).toMatchObject({ state: "connected", status: "Connected", controls: "input", rtt: "RTT 12 ms" });
    expect(opened[0]!.conn.setFit).toHaveBeenCalledWith(true);
    expect(session.live).toBe(opened[0]!.conn);
    session.dispose();
  });

  it("counts down from 1 s after a passing close, doubles the wait, and starts over after a stable console", async () => {
    const h = harness([]);
    h.again.mockImplementation(async () => target(h.again));
    await h.session.start();
    h.last().events.connected();
    h.last().events.closed(1006, "", "The connection to Porthole was lost: the edge restarted or the network dropped.");
    expect(h.session.view).toMatchObject({
      state: "reconnecting",
      status: "Reconnecting",
      controls: "off",
      reconnect: "The connection to Porthole was lost: the edge restarted or the network dropped. Reconnecting in 1 s.",
    });
    expect(h.session.live).toBeNull();
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.opened).toHaveLength(2);
    expect(h.session.view).toMatchObject({ state: "reconnecting", status: "Reconnecting…", reconnect: "Reconnecting…" });
    // Dropped again at once: 2 s now.
    h.last().events.closed(CloseCode.connectorOffline, "", "The site's connector is offline.");
    expect(h.session.view.reconnect).toBe("The site's connector is offline. Reconnecting in 2 s.");
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.session.view.reconnect).toBe("The site's connector is offline. Reconnecting in 1 s.");
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.opened).toHaveLength(3);
    // Up for 30 s: the next wait is 1 s again.
    h.last().events.connected();
    expect(h.session.view.reconnect).toBeNull();
    await vi.advanceTimersByTimeAsync(30_000);
    h.last().events.closed(1006, "", null);
    expect(h.session.view.reconnect).toBe("The console connection was lost. Reconnecting in 1 s.");
    h.session.dispose();
  });

  it("stops with the reason on a final close", async () => {
    const { session, opened } = harness([]);
    await session.start();
    opened[0]!.events.connected();
    opened[0]!.events.closed(CloseCode.terminated, "", "This console was ended by someone.");
    expect(session.view).toMatchObject({ state: "closed", status: "Disconnected", notice: "This console was ended by someone.", reconnect: null });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(opened).toHaveLength(1);
    session.dispose();
  });

  it("Reconnect now tries at once, one attempt at a time", async () => {
    const h = harness([]);
    let answer!: (t: Target) => void;
    h.again.mockImplementation(() => new Promise((resolve) => (answer = resolve)));
    await h.session.start();
    h.last().events.closed(1006, "", null);
    void h.session.reconnectNow();
    void h.session.reconnectNow();
    expect(h.again).toHaveBeenCalledTimes(1);
    answer(target(h.again));
    await settle();
    expect(h.opened).toHaveLength(2);
    // A live socket: Reconnect now does nothing more.
    await h.session.reconnectNow();
    expect(h.again).toHaveBeenCalledTimes(1);
    h.session.dispose();
  });

  it("says Cannot reach Porthole while the edge is away, and both reasons on a final answer", async () => {
    const h = harness([new ApiFailure(0, "unreachable", "Failed to fetch"), "You are signed out of Porthole. Sign in and open the console again."]);
    await h.session.start();
    h.last().events.closed(CloseCode.connectorOffline, "", "The site's connector is offline.");
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.session.view.reconnect).toBe("Cannot reach Porthole: the network or Porthole's edge is down. Reconnecting in 2 s.");
    await vi.advanceTimersByTimeAsync(2000);
    expect(h.session.view).toMatchObject({
      state: "closed",
      notice: "Cannot reach Porthole: the network or Porthole's edge is down. You are signed out of Porthole. Sign in and open the console again.",
    });
    h.session.dispose();
  });

  it("retries the first lookup when the edge does not answer, and fails at once on a final one", async () => {
    const away = new ConsoleSession({ first: () => Promise.reject(new TypeError("Failed to fetch")), open: vi.fn(), ping: async () => 1 });
    await away.start();
    expect(away.view).toMatchObject({ state: "reconnecting", reconnect: "Cannot reach Porthole: the network or Porthole's edge is down. Reconnecting in 1 s." });
    away.dispose();
    const bad = new ConsoleSession({ first: async () => "This link no longer works.", open: vi.fn(), ping: async () => 1 });
    await bad.start();
    expect(bad.view).toMatchObject({ state: "closed", status: "Disconnected", notice: "This link no longer works." });
    bad.dispose();
  });

  it("asks for consent and goes on after Open console", async () => {
    const { session } = harness([]);
    const asked = session.askConsent("dc1", "web-1");
    expect(session.view).toMatchObject({ state: "confirm", status: "Waiting for you", confirm: "Open the console of web-1 on dc1?" });
    let done = false;
    void asked.then(() => (done = true));
    await settle();
    expect(done).toBe(false);
    session.consent();
    await settle();
    expect(done).toBe(true);
    expect(session.view.confirm).toBeNull();
  });

  it("probes a quiet screen the person acts on, says when no picture comes, and clears on the next byte", async () => {
    const { session, opened } = harness([]);
    await session.start();
    opened[0]!.events.connected();
    await vi.advanceTimersByTimeAsync(11_000);
    expect(opened[0]!.conn.sendOwn).not.toHaveBeenCalled();
    session.acted();
    await vi.advanceTimersByTimeAsync(1000);
    expect(opened[0]!.conn.sendOwn).toHaveBeenCalledWith(PROBE_MESSAGE);
    await vi.advanceTimersByTimeAsync(5000);
    expect(session.view.stalled).toBe(
      "No picture from the console for 5 s although the page asked for one: the VM's VNC server or the site's connector may be stuck. Waiting…",
    );
    opened[0]!.events.consoleBytes(2048);
    await vi.advanceTimersByTimeAsync(1000);
    expect(session.view.stalled).toBeNull();
    expect(session.view.rate).toBe("2 KB/s");
    session.dispose();
  });

  it("counts the idle warning down and hides it on input over the screen", async () => {
    const { session, opened } = harness([]);
    await session.start();
    opened[0]!.events.connected();
    opened[0]!.events.notice(JSON.stringify({ type: "idle-warning", closesAt: new Date(Date.now() + 60_000).toISOString() }));
    expect(session.view.idle).toBe("No input for a while: this console closes in 1:00. Type or move the mouse to keep it open.");
    await vi.advanceTimersByTimeAsync(1000);
    expect(session.view.idle).toBe("No input for a while: this console closes in 0:59. Type or move the mouse to keep it open.");
    session.acted();
    expect(session.view.idle).toBeNull();
    session.dispose();
  });

  it("labels a view-only share link with its time left, takes no clipboard and keeps the idle warning", async () => {
    const link = target(async () => "gone", { viewOnly: true, vmName: "web-1", expiresAt: Date.now() + 3600_000 });
    const h = harness([], link);
    await h.session.start();
    expect(h.session.view).toMatchObject({ viewOnly: true, badge: "View only · link ends in 1 h 0 min", timeLeft: 3600 });
    h.last().events.connected();
    expect(h.session.view.controls).toBe("view");
    h.last().events.clipboard("secret");
    expect(h.session.view.fromVm).toBe("");
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.session.view.badge).toBe("View only · link ends in 59:59");
    h.last().events.notice(JSON.stringify({ type: "idle-warning", closesAt: new Date(Date.now() + 30_000).toISOString() }));
    h.session.acted();
    expect(h.session.view.idle).not.toBeNull();
    h.session.dispose();
  });

  it("names a console without a VM name by its desktop, and applies Fit to window to the live console", async () => {
    const h = harness([], target(async () => "gone", { vmName: undefined }));
    await h.session.start();
    expect(h.session.view.title).toBe("dc1");
    h.last().events.desktopName("Test desktop");
    expect(h.session.view.title).toBe("dc1 — Test desktop");
    h.last().events.connected();
    h.session.setFit(false);
    expect(h.last().conn.setFit).toHaveBeenLastCalledWith(false);
    expect(h.session.view.fitToWindow).toBe(false);
    h.session.dispose();
  });
});

describe("the readout and notices", () => {
  it("shows viewers waiting to join with their words, answers through the edge, and says why an answer did not go through", async () => {
    const answers: [string, string, boolean][] = [];
    const opened: Opened[] = [];
    const session = new ConsoleSession({
      first: async () => target(async () => "gone"),
      open(t, events) {
        const conn = { sendOwn: vi.fn(), setFit: vi.fn() };
        opened.push({ target: t, events, conn });
        return conn;
      },
      ping: async () => 1,
      answerJoin: async (link, id, allow) => {
        answers.push([link, id, allow]);
        return id === "b" ? "Bo's request to join has timed out." : null;
      },
    });
    await session.start();
    const events = opened[0]!.events;
    const ask = (id: string, name: string) => events.notice(JSON.stringify({ type: "join_request", id, link: "L1", name, vm: "web-1", viewOnly: true }));
    ask("a", "Ana");
    ask("b", "Bo");
    expect(session.view.joinRequests.map((r) => r.text)).toEqual(["Ana wants to watch web-1 (view only)", "Bo wants to watch web-1 (view only)"]);
    await session.answerJoin("a", true);
    await session.answerJoin("b", false);
    expect(answers).toEqual([["L1", "a", true], ["L1", "b", false]]);
    expect(session.view.joinRequests.find((r) => r.id === "b")?.problem).toBe("Bo's request to join has timed out.");
    events.notice(JSON.stringify({ type: "join_answered", id: "a", outcome: "allowed", by: "admin" }));
    expect(session.view.joinRequests.map((r) => r.id)).toEqual(["b"]);
    session.dispose();
  });

  it("asks a link's viewer for a name and says it waits, until the wait is over", async () => {
    const { session } = harness([]);
    const named = session.askName("web-1", null);
    expect(session.view).toMatchObject({ state: "confirm", join: { vm: "web-1", problem: null } });
    session.submitName("  Ana ");
    expect(await named).toBe("Ana");
    session.showWaiting("Waiting for someone in control of web-1 to let you in (2:00 left).");
    expect(session.view).toMatchObject({ state: "confirm", status: "Waiting to be let in", join: null, waiting: expect.stringMatching(/^Waiting/) });
    session.showWaiting(null);
    expect(session.view.waiting).toBeNull();
  });

  it("says bytes per second in B, KB or MB", () => {
    expect([0, 1023, 1024, 1536, 1024 * 1024, 3.25 * 1024 * 1024].map(rateText)).toEqual(["0 B/s", "1023 B/s", "1 KB/s", "2 KB/s", "1.0 MB/s", "3.3 MB/s"]);
  });

  it("reads an idle warning and ignores anything else", () => {
    expect(idleWarningEnd(JSON.stringify({ type: "idle-warning", closesAt: "2026-12-07T06:01:00Z" }))).toBe(Date.parse("2026-12-07T06:01:00Z"));
    expect(idleWarningEnd(JSON.stringify({ type: "other", closesAt: "2026-12-07T06:01:00Z" }))).toBeNull();
    expect(idleWarningEnd(JSON.stringify({ type: "idle-warning", closesAt: "soon" }))).toBeNull();
    expect(idleWarningEnd("not json")).toBeNull();
    expect(idleWarningEnd("null")).toBeNull();
  });
});
