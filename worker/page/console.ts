/**
 * The console page: noVNC over the console's wsUrl. The page returns credit to the edge as noVNC
 * consumes bytes (subprotocol porthole.credit.v1), so a stalled tab never makes the edge or the
 * connector buffer more than one window, and it shows why a console closed.
 *
 * It reconnects by itself when the cause of a close is passing (the connector, the edge or the
 * network dropped): a share link is reused while it lives, a signed-in console asks the session for
 * a fresh single-use ticket. Final causes (revoked, expired, ended by a person, idle, refused) stop
 * it with the reason.
 */
import RFB from "@novnc/novnc";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { CREDIT_CHUNK_BYTES, CREDIT_SUBPROTOCOL, VIEWER_NOTICE_IDLE_WARNING } from "../../shared/protocol/limits.ts";
import { consoleSocketPath, linkSocketPath } from "../../shared/urls/console.ts";
import { describeClose, isPassingClose } from "./close-reasons.ts";
import { KEY_COMBOS, MAX_TYPED_CHARACTERS, typedKeysyms } from "./console-keys.ts";

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $("status");
const notice = $("notice");
const title = $("title");
const cad = $<HTMLButtonElement>("cad");
const badge = $("badge");
const screenEl = $("screen");
const reconnectBox = $("reconnect");
const reconnectText = $("reconnect-text");
const reconnectNow = $<HTMLButtonElement>("reconnect-now");
const idleBox = $("idle-warning");
const keysMenu = $<HTMLDetailsElement>("keys-menu");
const keysBox = $("keys");
const clipboardMenu = $<HTMLDetailsElement>("clipboard-menu");
const pasteText = $<HTMLTextAreaElement>("paste-text");
const pasteMessage = $("paste-message");
const serverText = $<HTMLTextAreaElement>("server-text");
const serverCopy = $<HTMLButtonElement>("server-copy");
const scaleButton = $<HTMLButtonElement>("scale");
const screenshotButton = $<HTMLButtonElement>("screenshot");
const rttEl = $("rtt");
const rateEl = $("rate");

/** Backoff between reconnect attempts: 1 s doubling to 30 s, so a long outage costs the edge little. */
const RECONNECT_FIRST_MS = 1000;
const RECONNECT_MAX_MS = 30_000;

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

/** A share link: reusable while it lives; the status request says whether it still does. */
async function linkTarget(site: string, secret: string): Promise<Target | string> {
  // The secret travels in a header, never in a URL that a server or proxy would log.
  const res = await fetch(`/l/${encodeURIComponent(site)}/status`, { cache: "no-store", headers: { "X-Porthole-Link": secret } });
  const body = (await res.json().catch(() => ({}))) as { expiresAt?: string; viewOnly?: boolean; vm?: string; error?: { message: string } };
  if (res.status >= 500) throw new Error(body.error?.message ?? `The edge answered ${res.status}.`);
  if (!res.ok) return body.error?.message ?? "This link no longer works.";
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
  const res = await fetch("/api/consoles", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ site, hypervisor, vm }),
    credentials: "same-origin",
  });
  const body = (await res.json().catch(() => ({}))) as { pageUrl?: string; error?: { message?: string } };
  // The connector may still be on its way back: keep trying. Anything else is a final answer.
  if (res.status >= 500) throw new Error(body.error?.message ?? `The edge answered ${res.status}.`);
  if (res.status === 401) return "You are signed out of Porthole. Sign in and open the console again.";
  if (!res.ok || !body.pageUrl) return body.error?.message ?? "Porthole refused a new console.";
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
  const params = new URLSearchParams(location.hash.slice(1));
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

/** Bytes the page received from the edge, for the readout's bytes per second. */
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
// Any input the person makes reaches the VM and resets the edge's idle timer: the warning is moot.
for (const type of ["keydown", "pointerdown", "pointermove", "wheel"]) {
  document.addEventListener(type, () => {
    if (!idleBox.hidden && document.body.dataset.state === "connected") hideIdleWarning();
  }, { capture: true, passive: true });
}

/**
 * What noVNC gets instead of the socket (noVNC takes any WebSocket-like "raw channel"): text
 * messages are the edge's notices, handled here and never given to noVNC, which speaks only
 * binary RFB; every binary message noVNC has handled is acknowledged as credit.
 */
class CreditChannel {
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onclose: ((ev: CloseEvent) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;
  #ws: WebSocket;
  #consumed = 0;

  constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.binaryType = "arraybuffer";
    ws.addEventListener("open", (ev) => this.onopen?.(ev));
    ws.addEventListener("message", (ev) => this.#message(ev));
    ws.addEventListener("close", (ev) => this.onclose?.(ev));
    ws.addEventListener("error", (ev) => this.onerror?.(ev));
  }

  get protocol(): string {
    return this.#ws.protocol;
  }
  get readyState(): number {
    return this.#ws.readyState;
  }
  get binaryType(): string {
    return "arraybuffer";
  }
  set binaryType(_: string) {
    // always arraybuffer: set once on the socket
  }
  send(data: ArrayBufferLike | ArrayBufferView): void {
    this.#ws.send(data as ArrayBuffer);
  }
  close(): void {
    this.#ws.close();
  }

  #message(ev: MessageEvent): void {
    if (typeof ev.data === "string") {
      bytesReceived += ev.data.length;
      onNotice(ev.data);
      return;
    }
    const size = (ev.data as ArrayBuffer).byteLength;
    bytesReceived += size;
    this.onmessage?.(ev);
    if (this.#ws.protocol !== CREDIT_SUBPROTOCOL) return;
    this.#consumed += size;
    if (this.#consumed >= CREDIT_CHUNK_BYTES && this.#ws.readyState === WebSocket.OPEN) {
      this.#ws.send(String(this.#consumed));
      this.#consumed = 0;
    }
  }
}

/** The live console: replaced on every reconnect. */
let rfb: RFB | null = null;
let current: Target | null = null;
let fitToWindow = true;
let attempt = 0;
let reconnectTimer: ReturnType<typeof setInterval> | undefined;

function controlsEnabled(on: boolean): void {
  const input = on && !current?.viewOnly;
  cad.disabled = !input;
  for (const b of keysBox.querySelectorAll("button")) b.disabled = !input;
  for (const id of ["paste-read", "paste-send", "paste-type"]) $<HTMLButtonElement>(id).disabled = !input;
  pasteText.disabled = !input;
  screenshotButton.disabled = !on;
}

function connect(t: Target): void {
  current = t;
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
  const r = new RFB(screenEl, new CreditChannel(ws), { shared: true });
  rfb = r;
  r.scaleViewport = fitToWindow;
  r.clipViewport = false;
  // Only a courtesy: the edge drops a view-only viewer's input whatever this page does.
  r.viewOnly = t.viewOnly;
  r.addEventListener("connect", () => {
    attempt = 0;
    show("connected", "Connected");
    notice.hidden = true;
    reconnectBox.hidden = true;
    controlsEnabled(true);
    void measureRtt();
  });
  r.addEventListener("desktopname", (e: CustomEvent<{ name: string }>) => {
    if (!t.vmName) title.textContent = `${t.site} — ${e.detail.name}`;
  });
  r.addEventListener("clipboard", (e: CustomEvent<{ text: string }>) => {
    if (t.viewOnly) return;
    serverText.value = e.detail.text;
    serverCopy.disabled = e.detail.text === "";
  });
  r.addEventListener("disconnect", () => {
    if (rfb !== r) return;
    rfb = null;
    controlsEnabled(false);
    hideIdleWarning();
    // The close event precedes noVNC's disconnect; a socket that never opened reports 1006.
    if (isPassingClose(closeCode, closeReason)) scheduleReconnect(closeText ?? "The console connection was lost.");
    else fail(closeText ?? "The console connection was lost.");
  });
  r.addEventListener("securityfailure", (e: CustomEvent<{ reason?: string }>) => {
    closeCode = CloseCode.forbidden;
    closeText = `The console refused the connection: ${e.detail.reason ?? "security failure"}.`;
  });
  show(attempt === 0 ? "connecting" : "reconnecting", attempt === 0 ? "Connecting…" : "Reconnecting…");
}

/** Why the console dropped, kept for the notice if reconnecting turns out to be impossible. */
let droppedBecause = "";

/** Waits with a visible countdown, then asks for another socket and connects. */
function scheduleReconnect(why: string): void {
  droppedBecause = why;
  const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_FIRST_MS * 2 ** attempt);
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
  if (!current || rfb || asking) return;
  asking = true;
  reconnectText.textContent = "Reconnecting…";
  let next: Target | string;
  try {
    next = await current.again();
  } catch (err) {
    // The edge or the network is still away: try again later.
    scheduleReconnect(`${(err as Error).message || "Porthole's edge cannot be reached."}`);
    return;
  } finally {
    asking = false;
  }
  // A final answer while reconnecting (signed out, link revoked): say why the console dropped too.
  if (typeof next === "string") fail(droppedBecause && droppedBecause !== next ? `${droppedBecause} ${next}` : next);
  else connect(next);
}
reconnectNow.addEventListener("click", () => void reconnect());

// --- Keys, clipboard, view ---------------------------------------------------------------------

for (const combo of KEY_COMBOS) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = combo.label;
  b.disabled = true;
  b.setAttribute("aria-label", `Send ${combo.label}`);
  b.addEventListener("click", () => {
    if (!rfb) return;
    for (const [keysym, code] of combo.keys) rfb.sendKey(keysym, code, true);
    for (const [keysym, code] of [...combo.keys].reverse()) rfb.sendKey(keysym, code, false);
    keysMenu.open = false;
    rfb.focus();
  });
  keysBox.append(b);
}
cad.addEventListener("click", () => rfb?.sendCtrlAltDel());

function pasteRefused(text: string): boolean {
  if (text.length <= MAX_TYPED_CHARACTERS) return false;
  pasteMessage.textContent = `That is ${text.length.toLocaleString()} characters; the limit is ${MAX_TYPED_CHARACTERS.toLocaleString()}. Nothing was sent.`;
  return true;
}

$("paste-read").addEventListener("click", async () => {
  try {
    pasteText.value = await navigator.clipboard.readText();
    pasteMessage.textContent = "";
  } catch {
    pasteMessage.textContent = "The browser did not allow reading the clipboard: paste into the box instead (Ctrl+V).";
  }
});
$("paste-send").addEventListener("click", () => {
  const text = pasteText.value;
  if (!rfb || pasteRefused(text)) return;
  rfb.clipboardPasteFrom(text);
  pasteMessage.textContent = "Sent to the VM's clipboard.";
});
$("paste-type").addEventListener("click", () => {
  const text = pasteText.value;
  if (!rfb || pasteRefused(text)) return;
  const { keysyms, skipped } = typedKeysyms(text);
  for (const k of keysyms) rfb.sendKey(k, null);
  pasteMessage.textContent = `Typed ${keysyms.length} keys${skipped ? `; ${skipped} characters that have no key were left out` : ""}.`;
  clipboardMenu.open = false;
  rfb.focus();
});
serverCopy.addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(serverText.value);
  } catch {
    serverText.select();
  }
});

scaleButton.addEventListener("click", () => {
  fitToWindow = !fitToWindow;
  scaleButton.setAttribute("aria-pressed", String(fitToWindow));
  scaleButton.textContent = fitToWindow ? "Fit to window" : "1:1";
  document.body.classList.toggle("one-to-one", !fitToWindow);
  if (rfb) rfb.scaleViewport = fitToWindow;
});
const fullscreenButton = $("fullscreen");
fullscreenButton.setAttribute("aria-pressed", "false");
fullscreenButton.addEventListener("click", () => {
  if (document.fullscreenElement) void document.exitFullscreen();
  // Refused e.g. inside a frame without allowfullscreen: say so on the button, keep the console.
  else void document.documentElement.requestFullscreen().catch(() => (fullscreenButton.title = "The browser refused fullscreen for this page."));
});
// Esc and the browser's own controls leave fullscreen too: the button follows the document.
document.addEventListener("fullscreenchange", () => fullscreenButton.setAttribute("aria-pressed", String(document.fullscreenElement !== null)));
screenshotButton.addEventListener("click", () => {
  rfb?.toBlob((blob) => {
    if (!blob) return;
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `${(title.textContent || "console").replace(/[^\w.-]+/g, "-")}-${new Date().toISOString().replace(/[:.]/g, "-")}.png`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  }, "image/png");
});

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

async function start(): Promise<void> {
  let t: Target | string;
  try {
    t = await target();
  } catch (err) {
    fail((err as Error).message || "Porthole's edge cannot be reached.");
    return;
  }
  if (typeof t === "string") {
    fail(t);
    return;
  }
  title.textContent = t.vmName ? `${t.site} — ${t.vmName}` : t.site;
  if (t.viewOnly) {
    document.body.dataset.viewOnly = "true";
    badge.dataset.prefix = "View only · ";
    badge.textContent = "View only";
    // Neither direction of the clipboard for a view-only console (the edge drops it too).
    clipboardMenu.hidden = true;
    keysMenu.hidden = true;
  }
  if (t.expiresAt) showTimeLeft(t.expiresAt);
  connect(t);
}

void start();
