/**
 * The console page: noVNC over the console's wsUrl. The page returns credit to the edge as noVNC
 * consumes bytes (subprotocol porthole.credit.v1), so a stalled tab never makes the edge or the
 * connector buffer more than one window, and it shows why a console closed.
 *
 * It reconnects by itself unless the cause of a close is final (close-reasons.ts): a share link is
 * reused while it lives, a signed-in console asks the session for a fresh single-use ticket (after
 * the person's click when another site sent them here: console-consent.ts). Final causes
 * (revoked, expired, ended by a person, idle, VM off, refused) stop it with the reason.
 */
import RFB from "@novnc/novnc";
import { ApiFailure, apiClient } from "../../shared/api/client.ts";
import type { ConsoleOpened, LinkStatus } from "../../shared/api/types.ts";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { CREDIT_SUBPROTOCOL, VIEWER_NOTICE_IDLE_WARNING, VIEWER_NOTICE_RECORDED } from "../../shared/protocol/limits.ts";
import { consoleSocketPath, linkSocketPath } from "../../shared/urls/console.ts";
import { describeClose, describeFetchError, isPassingClose, RECONNECT_STABLE_MS, reconnectDelay } from "./close-reasons.ts";
import { CreditChannel } from "./console-channel.ts";
import { Consent } from "./console-consent.ts";
import { setupControls } from "./console-controls.ts";
import { PROBE_MESSAGE, StallWatch } from "./console-stall.ts";

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $("status");
const notice = $("notice");
const title = $("title");
const badge = $("badge");
const screenEl = $("screen");
const reconnectBox = $("reconnect");
const reconnectText = $("reconnect-text");
const reconnectNow = $<HTMLButtonElement>("reconnect-now");
const idleBox = $("idle-warning");
const stalledBox = $("stalled");
const rttEl = $("rtt");
const rateEl = $("rate");

type State = "connecting" | "connected" | "reconnecting" | "closed";

function show(state: State, text: string): void {
  document.body.dataset.state = state;
  status.textContent = text;
}

function fail(text: string): void {
  show("closed", "Disconnected");
  notice.textContent = text;
  notice.hidden = false;
  reconnectBox.hidden = true;
  idleBox.hidden = true;
  stalledBox.hidden = true;
}

interface Target {
  site: string;
  socketPath: string;
  viewOnly: boolean;
  /** Share links: when the link ends. */
  expiresAt?: number;
  vmName?: string;
  /** How to get another socket for a reconnect, or a reason why there is none. */
  again: () => Promise<Target | string>;
}

const fragment = new URLSearchParams(location.hash.slice(1));
const api = apiClient({ init: () => ({ cache: "no-store", credentials: "same-origin" }) });

/** A refusal is the edge's final word, said as it said it; its trouble (5xx) or silence is thrown, to retry. */
function refusal(err: unknown, otherwise: string): string {
  if (!(err instanceof ApiFailure) || err.status === 0 || err.status >= 500) throw err;
  return err.fromEdge ? err.message : otherwise;
}
const consent = new Consent(fragment.get("ask"));

/** A share link: reusable while it lives; the status request says whether it still does. */
async function linkTarget(site: string, secret: string): Promise<Target | string> {
  // The secret travels in a header, never in a URL that a server or proxy would log.
  let body: LinkStatus;
  try {
    body = await api.call("GET /l/:site/status", { params: { site }, headers: { "X-Porthole-Link": secret } });
  } catch (err) {
    return refusal(err, "This link no longer works.");
  }
  return {
    site,
    socketPath: linkSocketPath(site, secret),
    viewOnly: body.viewOnly === true,
    expiresAt: Date.parse(body.expiresAt!),
    vmName: body.vm,
    again: () => linkTarget(site, secret),
  };
}

/**
 * A signed-in console: its ticket is single use, so a reconnect asks the session for a new one
 * (POST /api/consoles with the cookie), which needs the hypervisor and VM from the fragment.
 */
async function freshTicket(site: string, hypervisor: string | null, vm: string | null, viewOnly: boolean): Promise<Target | string> {
  if (!hypervisor || !vm) return "The connection was lost. Open the console again from Porthole.";
  await consent.confirm(site, vm);
  let body: ConsoleOpened;
  try {
    body = await api.call("POST /api/consoles", { body: { site, hypervisor, vm } });
  } catch (err) {
    // The connector may still be on its way back: keep trying (thrown). Anything else is a final answer.
    if (err instanceof ApiFailure && err.status === 401) return "You are signed out of Porthole. Sign in and open the console again.";
    return refusal(err, "Porthole refused a new console.");
  }
  if (!body?.pageUrl) return "Porthole refused a new console.";
  const ticket = new URLSearchParams(new URL(body.pageUrl).hash.slice(1)).get("ticket");
  if (!ticket) return "Porthole answered without a console ticket.";
  return {
    site,
    socketPath: consoleSocketPath(site, ticket),
    viewOnly: viewOnly || new URLSearchParams(new URL(body.pageUrl).hash.slice(1)).get("view") === "1",
    vmName: vm,
    again: () => freshTicket(site, hypervisor, vm, viewOnly),
  };
}

/** A share link page (/l/<site>#<secret>) or a one-off console (/console#site=…&ticket=…). */
async function target(): Promise<Target | string> {
  const link = /^\/l\/([^/]+)$/.exec(location.pathname);
  if (link) {
    const site = decodeURIComponent(link[1]!);
    const secret = decodeURIComponent(location.hash.slice(1));
    if (!secret) return "This console link is incomplete. Check that you copied all of it.";
    return linkTarget(site, secret);
  }
  const params = new URLSearchParams(fragment);
  const site = params.get("site");
  const ticket = params.get("ticket");
  const hypervisor = params.get("hypervisor");
  const vm = params.get("vm");
  const viewOnly = params.get("view") === "1";
  // A reload after the ticket was spent: the session can give a fresh one.
  if (site && !ticket && hypervisor && vm) return freshTicket(site, hypervisor, vm, viewOnly);
  if (!site || !ticket) return "This console link is incomplete. Open the console again from Porthole.";
  // The ticket is single use: drop it from the address bar so a reload does not look like a replay.
  // What names the console (no secret) stays, so the page can ask for a fresh ticket.
  params.delete("ticket");
  history.replaceState(null, "", `${location.pathname}${hypervisor && vm ? `#${params}` : ""}`);
  return { site, socketPath: consoleSocketPath(site, ticket), viewOnly, vmName: vm ?? undefined, again: () => freshTicket(site, hypervisor, vm, viewOnly) };
}

function showTimeLeft(expiresAt: number): void {
  const tick = () => {
    const left = Math.max(0, Math.round((expiresAt - Date.now()) / 1000));
    const text = left >= 3600 ? `${Math.floor(left / 3600)} h ${Math.floor((left % 3600) / 60)} min` : clock(left);
    badge.dataset.timeLeft = String(left);
    badge.textContent = `${badge.dataset.prefix ?? ""}link ends in ${text}`;
    if (left === 0) clearInterval(timer);
  };
  const timer = setInterval(tick, 1000);
  tick();
}

function clock(seconds: number): string {
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

/** Bytes the page received from the console, for the readout's bytes per second. */
let bytesReceived = 0;

/** What the edge sends as text (notices); never passed to noVNC, which speaks only binary RFB. */
function onNotice(text: string): void {
  let msg: { type?: unknown; closesAt?: unknown };
  try {
    msg = JSON.parse(text) as typeof msg;
  } catch {
    return;
  }
  if (msg.type === VIEWER_NOTICE_IDLE_WARNING && typeof msg.closesAt === "string") showIdleWarning(Date.parse(msg.closesAt));
  // The edge's first message, before any console byte: stays shown for as long as the page does.
  if (msg.type === VIEWER_NOTICE_RECORDED) $("recorded").hidden = false;
}

let idleTimer: ReturnType<typeof setInterval> | undefined;
function showIdleWarning(closesAt: number): void {
  if (!Number.isFinite(closesAt)) return;
  clearInterval(idleTimer);
  const tick = () => {
    const left = Math.max(0, Math.round((closesAt - Date.now()) / 1000));
    idleBox.textContent = `No input for a while: this console closes in ${clock(left)}. Type or move the mouse to keep it open.`;
  };
  tick();
  idleTimer = setInterval(tick, 1000);
  idleBox.hidden = false;
}
function hideIdleWarning(): void {
  clearInterval(idleTimer);
  idleBox.hidden = true;
}
/** A frozen connector or VNC server: when the person acts on a quiet screen the page probes, and says when no answer comes. */
const stall = new StallWatch();
// Input that reaches the VM resets the edge's idle timer: the warning is moot. Only input on the
// screen counts (noVNC sends it); a key pressed in the toolbar or the mouse over it sends nothing.
// The same acts tell the stall watch that someone is looking and expects the picture to answer.
for (const type of ["keydown", "pointerdown", "pointermove", "wheel"]) {
  screenEl.addEventListener(type, () => {
    stall.acted();
    if (!idleBox.hidden && document.body.dataset.state === "connected" && !current?.viewOnly) hideIdleWarning();
  }, { capture: true, passive: true });
}
let channel: CreditChannel | null = null;
setInterval(() => {
  const { probe, stalledMs } = stall.tick(Date.now());
  if (probe) channel?.sendOwn(PROBE_MESSAGE);
  if (stalledMs === null) {
    stalledBox.hidden = true;
    return;
  }
  stalledBox.textContent = `No picture from the console for ${Math.round(stalledMs / 1000)} s although the page asked for one: the VM's VNC server or the site's connector may be stuck. Waiting…`;
  stalledBox.hidden = false;
}, 1000);

/** The live console: replaced on every reconnect. */
let rfb: RFB | null = null;
let current: Target | null = null;
const controls = setupControls(() => rfb, title);
let attempt = 0;
let connectedAt = 0;
let reconnectTimer: ReturnType<typeof setInterval> | undefined;
/** Where the next socket comes from: the live target's `again`, or the first lookup if it failed. */
let again: (() => Promise<Target | string>) | null = null;

function connect(t: Target): void {
  current = t;
  again = t.again;
  const url = location.origin.replace(/^http/, "ws") + t.socketPath;
  const ws = new WebSocket(url, [CREDIT_SUBPROTOCOL]);
  let closeCode = 1006;
  let closeReason = "";
  let closeText: string | null = null;
  ws.addEventListener("close", (ev) => {
    if (closeCode === CloseCode.forbidden && closeText) return; // noVNC's own close after a security failure
    closeCode = ev.code;
    closeReason = ev.reason;
    closeText = describeClose(ev.code, ev.reason);
  });

  // After the close listener above, so the code is known when noVNC reports the disconnect.
  const ch = new CreditChannel(ws, {
    onNotice,
    onConsoleBytes(size) {
      bytesReceived += size;
      stall.received(Date.now());
    },
  });
  const r = new RFB(screenEl, ch, { shared: true });
  rfb = r;
  r.clipViewport = false;
  // Only a courtesy: the edge drops a view-only viewer's input whatever this page does.
  r.viewOnly = t.viewOnly;
  r.addEventListener("connect", () => {
    connectedAt = Date.now();
    channel = ch;
    stall.start(connectedAt);
    show("connected", "Connected");
    notice.hidden = true;
    reconnectBox.hidden = true;
    controls.enable(true, t.viewOnly);
    void measureRtt();
  });
  r.addEventListener("desktopname", (e: CustomEvent<{ name: string }>) => {
    if (!t.vmName) title.textContent = `${t.site} — ${e.detail.name}`;
  });
  r.addEventListener("clipboard", (e: CustomEvent<{ text: string }>) => {
    if (!t.viewOnly) controls.serverClipboard(e.detail.text);
  });
  r.addEventListener("disconnect", () => {
    if (rfb !== r) return;
    rfb = null;
    channel = null;
    stall.stop();
    stalledBox.hidden = true;
    controls.enable(false, t.viewOnly);
    hideIdleWarning();
    // The backoff starts over only after a console that stayed up (RECONNECT_STABLE_MS).
    if (connectedAt && Date.now() - connectedAt >= RECONNECT_STABLE_MS) attempt = 0;
    connectedAt = 0;
    // The close event precedes noVNC's disconnect; a socket that never opened reports 1006.
    if (isPassingClose(closeCode, closeReason)) scheduleReconnect(closeText ?? "The console connection was lost.");
    else fail(closeText ?? "The console connection was lost.");
  });
  r.addEventListener("securityfailure", (e: CustomEvent<{ reason?: string }>) => {
    closeCode = CloseCode.forbidden;
    closeReason = e.detail.reason ?? "";
    closeText = `The console refused the connection: ${e.detail.reason ?? "security failure"}.`;
  });
  show(attempt === 0 ? "connecting" : "reconnecting", attempt === 0 ? "Connecting…" : "Reconnecting…");
}

/** Why the console dropped, kept for the notice if reconnecting turns out to be impossible. */
let droppedBecause = "";

/** Waits with a visible countdown, then asks for another socket and connects. */
function scheduleReconnect(why: string): void {
  droppedBecause = why;
  const delay = reconnectDelay(attempt);
  attempt++;
  const at = Date.now() + delay;
  show("reconnecting", "Reconnecting");
  notice.hidden = true;
  reconnectBox.hidden = false;
  clearInterval(reconnectTimer);
  const tick = () => {
    const left = Math.max(0, Math.ceil((at - Date.now()) / 1000));
    reconnectText.textContent = `${why} Reconnecting in ${left} s.`;
    if (left === 0) void reconnect();
  };
  tick();
  reconnectTimer = setInterval(tick, 250);
}

let asking = false;
async function reconnect(): Promise<void> {
  clearInterval(reconnectTimer);
  // One attempt at a time: "Reconnect now" during a countdown's own attempt does nothing more.
  if (!again || rfb || asking) return;
  asking = true;
  reconnectText.textContent = "Reconnecting…";
  let next: Target | string;
  try {
    next = await again();
  } catch (err) {
    // The edge or the network is still away: try again later, and say so in words.
    scheduleReconnect(describeFetchError(err));
    return;
  } finally {
    asking = false;
  }
  // A final answer while reconnecting (signed out, link revoked): say why the console dropped too.
  if (typeof next === "string") fail(droppedBecause && droppedBecause !== next ? `${droppedBecause} ${next}` : next);
  else begin(next);
}
reconnectNow.addEventListener("click", () => void reconnect());

/**
 * The readout. Round trip: a tiny GET /healthz to the edge, timed by the page (the network and
 * the edge, not the VM). Received: console bytes per second, so a busy screen on a fast network
 * (high rate, low RTT) reads differently from a slow network (high RTT).
 */
async function measureRtt(): Promise<void> {
  if (document.body.dataset.state !== "connected") return;
  const start = performance.now();
  try {
    const res = await fetch("/healthz", { cache: "no-store" });
    await res.arrayBuffer();
    rttEl.textContent = `RTT ${Math.round(performance.now() - start)} ms`;
  } catch {
    rttEl.textContent = "RTT –";
  }
}
let lastBytes = 0;
setInterval(() => {
  const rate = bytesReceived - lastBytes;
  lastBytes = bytesReceived;
  rateEl.textContent = rate >= 1024 * 1024 ? `${(rate / 1024 / 1024).toFixed(1)} MB/s` : rate >= 1024 ? `${Math.round(rate / 1024)} KB/s` : `${rate} B/s`;
}, 1000);
setInterval(() => void measureRtt(), 5000);

/** The first target's labels, then the console. */
let labelled = false;
function begin(t: Target): void {
  if (!labelled) {
    labelled = true;
    title.textContent = t.vmName ? `${t.site} — ${t.vmName}` : t.site;
    if (t.viewOnly) {
      document.body.dataset.viewOnly = "true";
      badge.dataset.prefix = "View only · ";
      badge.textContent = "View only";
      // Neither direction of the clipboard for a view-only console (the edge drops it too).
      $("clipboard-menu").hidden = true;
      $("keys-menu").hidden = true;
    }
    if (t.expiresAt) showTimeLeft(t.expiresAt);
  }
  connect(t);
}

async function start(): Promise<void> {
  again = target;
  let t: Target | string;
  try {
    t = await target();
  } catch (err) {
    // The edge did not answer the first lookup: the same countdown as for a dropped console.
    scheduleReconnect(describeFetchError(err));
    return;
  }
  if (typeof t === "string") fail(t);
  else begin(t);
}

void start();
