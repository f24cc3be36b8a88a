/**
 * One console page's life, without a DOM: which console is live, what the page says, when it
 * retries. It reconnects by itself unless the cause of a close is final (close-reasons.ts); a
 * frozen picture is told from a still one (console-stall.ts); the edge's idle warning and a share
 * link's end count down. The page (console-ui.tsx) renders `view` and calls the methods; noVNC is
 * behind `SessionDeps.open` (console-rfb.ts), so tests drive it with a fake connection and
 * vitest's fake clock. Nothing happens at import.
 */
import { type WatchingView, watchingFrom } from "./console-watching.ts";
import { type JoinRequestView, joinsAfter } from "./console-joins.ts";
import { VIEWER_NOTICE_IDLE_WARNING, VIEWER_NOTICE_RECORDED } from "../../shared/protocol/limits.ts";
import { describeFetchError, isPassingClose, RECONNECT_STABLE_MS, reconnectDelay } from "./close-reasons.ts";
import { PROBE_MESSAGE, StallWatch } from "./console-stall.ts";

/** Where a console's socket is, and how to get another one. */
export interface Target {
  site: string;
  socketPath: string;
  viewOnly: boolean;
  /** Share links: when the link ends. */
  expiresAt?: number;
  vmName?: string;
  /** How to get another socket for a reconnect, or a reason why there is none. */
  again: () => Promise<Target | string>;
}

/** Allow or Deny for a link's waiting viewer; resolves with why it did not go through, or null. */
export type AnswerJoin = (link: string, id: string, allow: boolean) => Promise<string | null>;

/** What a live connection reports (console-rfb.ts calls these from noVNC's and the socket's events). */
export interface ConsoleEvents {
  /** The RFB handshake finished. */
  connected(): void;
  /** It is over; `text` is the reason in words, if known (describeClose, or a security failure). */
  closed(code: number, reason: string, text: string | null): void;
  consoleBytes(size: number): void;
  /** A text message from the edge (a notice), never console bytes. */
  notice(text: string): void;
  clipboard(text: string): void;
  desktopName(name: string): void;
}

export interface Connection {
  /** A whole RFB message of the page's own (the stall probe). */
  sendOwn(message: Uint8Array<ArrayBuffer>): void;
  setFit(fitToWindow: boolean): void;
}

export interface SessionDeps<C extends Connection> {
  /** The first target: the page's URL and, for a signed-in console, the session (console-target.ts). */
  first: () => Promise<Target | string>;
  open(target: Target, events: ConsoleEvents): C;
  /** The round trip of a small request to the edge, in ms (GET /healthz); throws when it fails. */
  ping(): Promise<number>;
  /** Answers a link's waiting viewer (POST /api/links/:id/joins/:join/allow|deny). */
  answerJoin?: AnswerJoin;
}

export type PageState = "connecting" | "connected" | "reconnecting" | "closed" | "confirm";

/** Everything the page shows; replaced (never mutated) on every change. */
export interface ConsoleView {
  /** body[data-state]; null until the page first says something. */
  state: PageState | null;
  status: string;
  /** The final reason, once the page stopped. */
  notice: string | null;
  /** The countdown to the next try (with Reconnect now), or null when there is none. */
  reconnect: string | null;
  idle: string | null;
  stalled: string | null;
  /** The edge said this console is recorded (its first message, before any console byte). */
  recorded: boolean;
  /** The consent prompt's question, while the page waits for Open console. */
  confirm: string | null;
  /** Watching now: who is on this VM's console (the edge's notice), or null before it said. */
  watching: WatchingView | null;
  /** A share link's PIN prompt: the VM, and why the last PIN failed. */
  pin: { vm: string; problem: string | null } | null;
  /** A link that asks before each viewer joins: the name prompt, then the wait. */
  join: { vm: string; problem: string | null } | null;
  waiting: string | null;
  /** Viewers waiting to join this VM's console, for someone in control to allow or deny. */
  joinRequests: JoinRequestView[];
  title: string;
  badge: string;
  /** Seconds until a share link ends. */
  timeLeft: number | null;
  viewOnly: boolean;
  /** The toolbar: nothing without a live console, the screenshot only for a view-only one. */
  controls: "off" | "view" | "input";
  fitToWindow: boolean;
  rtt: string;
  rate: string;
  /** What the VM last copied. */
  fromVm: string;
}

export const INITIAL_VIEW: ConsoleView = {
  state: null,
  status: "Connecting…",
  notice: null,
  reconnect: null,
  idle: null,
  stalled: null,
  recorded: false,
  confirm: null,
  watching: null,
  pin: null,
  join: null,
  waiting: null,
  joinRequests: [],
  title: "",
  badge: "",
  timeLeft: null,
  viewOnly: false,
  controls: "off",
  fitToWindow: true,
  rtt: "RTT –",
  rate: "– B/s",
  fromVm: "",
};

export function clock(seconds: number): string {
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

export function rateText(bytesPerSecond: number): string {
  const rate = bytesPerSecond;
  return rate >= 1024 * 1024 ? `${(rate / 1024 / 1024).toFixed(1)} MB/s` : rate >= 1024 ? `${Math.round(rate / 1024)} KB/s` : `${rate} B/s`;
}

function parseNotice(text: string): { type?: unknown; closesAt?: unknown } | null {
  try {
    return JSON.parse(text) as { type?: unknown; closesAt?: unknown };
  } catch {
    return null;
  }
}

/** An idle warning's end from the edge's text notice, or null for any other message. */
export function idleWarningEnd(text: string): number | null {
  const msg = parseNotice(text);
  if (msg?.type !== VIEWER_NOTICE_IDLE_WARNING || typeof msg.closesAt !== "string") return null;
  const at = Date.parse(msg.closesAt);
  return Number.isFinite(at) ? at : null;
}

/** Whether the edge's text notice says the console is recorded. */
export function isRecordedNotice(text: string): boolean {
  return parseNotice(text)?.type === VIEWER_NOTICE_RECORDED;
}

type Timer = ReturnType<typeof setInterval>;

export class ConsoleSession<C extends Connection = Connection> {
  #deps: SessionDeps<C>;
  #view: ConsoleView = INITIAL_VIEW;
  #listeners = new Set<(view: ConsoleView) => void>();
  /** The live console (from `open` until its close): replaced on every reconnect. */
  #live: C | null = null;
  /** Set once the live console finished its handshake: the stall probe goes there. */
  #connected: C | null = null;
  #current: Target | null = null;
  /** Where the next socket comes from: the live target's `again`, or the first lookup if it failed. */
  #again: (() => Promise<Target | string>) | null = null;
  #attempt = 0;
  #connectedAt = 0;
  #asking = false;
  #labelled = false;
  /** Why the console dropped, kept for the notice if reconnecting turns out to be impossible. */
  #droppedBecause = "";
  #consent: (() => void) | null = null;
  /** The open prompt's answer (a share link's PIN, or a name to be let in): one prompt at a time. */
  #answer: ((text: string) => void) | null = null;
  #stall = new StallWatch();
  #bytes = 0;
  #lastBytes = 0;
  #idleAt: number | null = null;
  #expiresAt: number | null = null;
  #reconnectTimer: Timer | undefined;
  #timers: Timer[] = [];

  constructor(deps: SessionDeps<C>) {
    this.#deps = deps;
  }

  get view(): ConsoleView {
    return this.#view;
  }
  /** The live console for the toolbar, or null. */
  get live(): C | null {
    return this.#connected;
  }

  subscribe(fn: (view: ConsoleView) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #set(change: Partial<ConsoleView>): void {
    this.#view = { ...this.#view, ...change };
    for (const fn of this.#listeners) fn(this.#view);
  }

  /** Looks up the first target and connects; starts the page's clocks (readout, stall watch, countdowns). */
  async start(): Promise<void> {
    this.#timers.push(
      setInterval(() => this.#everySecond(), 1000),
      setInterval(() => void this.#measureRtt(), 5000),
    );
    this.#again = this.#deps.first;
    let t: Target | string;
    try {
      t = await this.#deps.first();
    } catch (err) {
      // The edge did not answer the first lookup: the same countdown as for a dropped console.
      this.#scheduleReconnect(describeFetchError(err));
      return;
    }
    if (typeof t === "string") this.#fail(t);
    else this.#begin(t);
  }

  /** Stops every clock (tests; the page lives as long as its tab). */
  dispose(): void {
    for (const t of this.#timers) clearInterval(t);
    clearInterval(this.#reconnectTimer);
  }

  /**
   * Shows "Open the console of <vm> on <site>?" and resolves on Open console (console-consent.ts
   * decides whether to ask).
   */
  askConsent(site: string, vm: string): Promise<void> {
    this.#set({ state: "confirm", status: "Waiting for you", confirm: `Open the console of ${vm} on ${site}?`, notice: null, reconnect: null });
    return new Promise((resolve) => (this.#consent = resolve));
  }

  /** A share link's PIN, asked for before any socket (console-target.ts). */
  askPin(vm: string, problem: string | null): Promise<string> {
    return this.#ask({ pin: { vm, problem } }, "Waiting for the PIN");
  }

  /** Join, on the PIN prompt. */
  submitPin(pin: string): void {
    this.#submit({ pin: null }, "Checking the PIN", pin);
  }

  /** A link that asks before each viewer joins: the viewer's name, before anything else. */
  askName(vm: string, problem: string | null): Promise<string> {
    return this.#ask({ join: { vm, problem } }, "Waiting for your name");
  }

  /** Ask to join, on the name prompt. */
  submitName(name: string): void {
    this.#submit({ join: null }, "Asking to join", name);
  }

  #ask(prompt: Partial<ConsoleView>, status: string): Promise<string> {
    this.#set({ state: "confirm", status, ...prompt, notice: null, reconnect: null });
    return new Promise((resolve) => (this.#answer = resolve));
  }

  #submit(closed: Partial<ConsoleView>, status: string, text: string): void {
    const resolve = this.#answer;
    this.#answer = null;
    this.#set({ ...closed, status });
    resolve?.(text.trim());
  }

  /** While the viewer waits to be let in: what the page says (null: the wait is over). */
  showWaiting(text: string | null): void {
    this.#set(text === null ? { waiting: null } : { state: "confirm", status: "Waiting to be let in", waiting: text });
  }

  /** Allow or Deny on a waiting viewer; the edge's join_answered notice then takes the prompt away. */
  async answerJoin(id: string, allow: boolean): Promise<void> {
    const request = this.#view.joinRequests.find((r) => r.id === id);
    if (!request || !this.#deps.answerJoin) return;
    const problem = await this.#deps.answerJoin(request.link, id, allow);
    // Said no by the edge (already answered, timed out): the prompt goes, with the reason if it stays.
    if (problem !== null) this.#set({ joinRequests: this.#view.joinRequests.map((r) => (r.id === id ? { ...r, problem } : r)) });
  }

  /** Open console, on the consent prompt. */
  consent(): void {
    const resolve = this.#consent;
    this.#consent = null;
    this.#set({ confirm: null });
    resolve?.();
  }

  /**
   * The person pressed a key or used the pointer over the screen. Only input there reaches the VM
   * (and resets the edge's idle timer, so the warning is moot); it also tells the stall watch that
   * someone expects the picture to answer.
   */
  acted(): void {
    this.#stall.acted();
    if (this.#view.idle !== null && this.#view.state === "connected" && !this.#current?.viewOnly) this.#hideIdle();
  }

  setFit(fitToWindow: boolean): void {
    this.#set({ fitToWindow });
    this.#connected?.setFit(fitToWindow);
  }

  /** Reconnect now, or the countdown's end: one attempt at a time. */
  async reconnectNow(): Promise<void> {
    clearInterval(this.#reconnectTimer);
    if (!this.#again || this.#live || this.#asking) return;
    this.#asking = true;
    this.#set({ reconnect: "Reconnecting…" });
    let next: Target | string;
    try {
      next = await this.#again();
    } catch (err) {
      // The edge or the network is still away: try again later, and say so in words.
      this.#scheduleReconnect(describeFetchError(err));
      return;
    } finally {
      this.#asking = false;
    }
    // A final answer while reconnecting (signed out, link revoked): say why the console dropped too.
    const why = this.#droppedBecause;
    if (typeof next === "string") this.#fail(why && why !== next ? `${why} ${next}` : next);
    else this.#begin(next);
  }

  /** The first target's labels, then the console. */
  #begin(t: Target): void {
    if (!this.#labelled) {
      this.#labelled = true;
      this.#set({ title: t.vmName ? `${t.site} — ${t.vmName}` : t.site, viewOnly: t.viewOnly, badge: t.viewOnly ? "View only" : "" });
      if (t.expiresAt) {
        this.#expiresAt = t.expiresAt;
        this.#timeLeft();
      }
    }
    this.#connect(t);
  }

  #connect(t: Target): void {
    this.#current = t;
    this.#again = t.again;
    const events: ConsoleEvents = {
      connected: () => {
        if (this.#live !== conn) return;
        this.#connectedAt = Date.now();
        this.#connected = conn;
        this.#stall.start(this.#connectedAt);
        conn.setFit(this.#view.fitToWindow);
        this.#set({ state: "connected", status: "Connected", notice: null, reconnect: null, controls: t.viewOnly ? "view" : "input" });
        void this.#measureRtt();
      },
      closed: (code, reason, text) => this.#closed(conn, code, reason, text),
      consoleBytes: (size) => {
        this.#bytes += size;
        this.#stall.received(Date.now());
      },
      notice: (text) => {
        // Sent before the first console byte; stays shown for as long as the page does.
        if (isRecordedNotice(text)) this.#set({ recorded: true });
        const watching = watchingFrom(text);
        if (watching) this.#set({ watching });
        const joinRequests = joinsAfter(this.#view.joinRequests, text);
        if (joinRequests) this.#set({ joinRequests });
        const at = idleWarningEnd(text);
        if (at !== null) {
          this.#idleAt = at;
          this.#idleText();
        }
      },
      clipboard: (text) => {
        if (!t.viewOnly) this.#set({ fromVm: text });
      },
      desktopName: (name) => {
        if (!t.vmName) this.#set({ title: `${t.site} — ${name}` });
      },
    };
    const first = this.#attempt === 0;
    // A new socket hears who is waiting afresh (the edge tells every console of someone in control).
    this.#set({ joinRequests: [] });
    const conn = this.#deps.open(t, events);
    this.#live = conn;
    this.#set(first ? { state: "connecting", status: "Connecting…" } : { state: "reconnecting", status: "Reconnecting…" });
  }

  #closed(conn: C, code: number, reason: string, text: string | null): void {
    if (this.#live !== conn) return;
    this.#live = null;
    this.#connected = null;
    this.#stall.stop();
    this.#idleAt = null;
    this.#set({ stalled: null, idle: null, controls: "off" });
    // The backoff starts over only after a console that stayed up (RECONNECT_STABLE_MS).
    if (this.#connectedAt && Date.now() - this.#connectedAt >= RECONNECT_STABLE_MS) this.#attempt = 0;
    this.#connectedAt = 0;
    const why = text ?? "The console connection was lost.";
    if (isPassingClose(code, reason)) this.#scheduleReconnect(why);
    else this.#fail(why);
  }

  #fail(text: string): void {
    clearInterval(this.#reconnectTimer);
    this.#idleAt = null;
    this.#set({ state: "closed", status: "Disconnected", notice: text, reconnect: null, idle: null, stalled: null });
  }

  /** Waits with a visible countdown, then asks for another socket and connects. */
  #scheduleReconnect(why: string): void {
    this.#droppedBecause = why;
    const delay = reconnectDelay(this.#attempt);
    this.#attempt++;
    const at = Date.now() + delay;
    this.#set({ state: "reconnecting", status: "Reconnecting", notice: null });
    clearInterval(this.#reconnectTimer);
    const tick = () => {
      const left = Math.max(0, Math.ceil((at - Date.now()) / 1000));
      this.#set({ reconnect: `${why} Reconnecting in ${left} s.` });
      if (left === 0) void this.reconnectNow();
    };
    tick();
    this.#reconnectTimer = setInterval(tick, 250);
  }

  #everySecond(): void {
    const now = Date.now();
    const rate = this.#bytes - this.#lastBytes;
    this.#lastBytes = this.#bytes;
    const change: Partial<ConsoleView> = { rate: rateText(rate) };
    const { probe, stalledMs } = this.#stall.tick(now);
    if (probe) this.#connected?.sendOwn(PROBE_MESSAGE);
    change.stalled =
      stalledMs === null
        ? null
        : `No picture from the console for ${Math.round(stalledMs / 1000)} s although the page asked for one: the VM's VNC server or the site's connector may be stuck. Waiting…`;
    this.#set(change);
    if (this.#idleAt !== null) this.#idleText();
    if (this.#expiresAt !== null) this.#timeLeft();
  }

  #idleText(): void {
    const left = Math.max(0, Math.round((this.#idleAt! - Date.now()) / 1000));
    this.#set({ idle: `No input for a while: this console closes in ${clock(left)}. Type or move the mouse to keep it open.` });
  }

  #hideIdle(): void {
    this.#idleAt = null;
    this.#set({ idle: null });
  }

  #timeLeft(): void {
    const left = Math.max(0, Math.round((this.#expiresAt! - Date.now()) / 1000));
    const text = left >= 3600 ? `${Math.floor(left / 3600)} h ${Math.floor((left % 3600) / 60)} min` : clock(left);
    this.#set({ timeLeft: left, badge: `${this.#view.viewOnly ? "View only · " : ""}link ends in ${text}` });
    if (left === 0) this.#expiresAt = null;
  }

  /**
   * The readout's round trip: a tiny request to the edge, timed by the page (the network and the
   * edge, not the VM), so a slow network reads differently from a busy screen.
   */
  async #measureRtt(): Promise<void> {
    if (this.#view.state !== "connected") return;
    try {
      this.#set({ rtt: `RTT ${Math.round(await this.#deps.ping())} ms` });
    } catch {
      this.#set({ rtt: "RTT –" });
    }
  }
}
