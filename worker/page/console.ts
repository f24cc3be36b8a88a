/**
 * The console page: noVNC over the console's wsUrl. The page returns credit to the edge as noVNC
 * consumes bytes (subprotocol porthole.credit.v1), so a stalled tab never makes the edge or the
 * connector buffer more than one window, and it shows why a console closed.
 */
import RFB from "@novnc/novnc";
import { CREDIT_CHUNK_BYTES, CREDIT_SUBPROTOCOL } from "../../shared/protocol/limits.ts";
import { consoleSocketPath, linkSocketPath } from "../../shared/urls/console.ts";
import { describeClose } from "./close-reasons.ts";

const status = document.getElementById("status")!;
const notice = document.getElementById("notice")!;
const title = document.getElementById("title")!;
const cad = document.getElementById("cad") as HTMLButtonElement;
const badge = document.getElementById("badge")!;

function show(state: "connecting" | "connected" | "closed", text: string): void {
  document.body.dataset.state = state;
  status.textContent = text;
}

function fail(text: string): void {
  show("closed", "Disconnected");
  notice.textContent = text;
  notice.hidden = false;
}

/** Wraps the socket's onmessage so every message noVNC has handled is acknowledged as credit. */
function returnCredit(ws: WebSocket): void {
  const native = Object.getOwnPropertyDescriptor(WebSocket.prototype, "onmessage")!;
  let consumed = 0;
  Object.defineProperty(ws, "onmessage", {
    configurable: true,
    enumerable: true,
    get: () => native.get!.call(ws),
    set: (handler: ((ev: MessageEvent) => void) | null) => {
      native.set!.call(ws, handler && ((ev: MessageEvent) => {
        handler(ev);
        if (ws.protocol !== CREDIT_SUBPROTOCOL) return;
        consumed += (ev.data as ArrayBuffer).byteLength;
        if (consumed >= CREDIT_CHUNK_BYTES && ws.readyState === WebSocket.OPEN) {
          ws.send(String(consumed));
          consumed = 0;
        }
      }));
    },
  });
}

interface Target {
  site: string;
  socketPath: string;
  viewOnly: boolean;
  /** Share links: when the link ends. */
  expiresAt?: number;
  vmName?: string;
}

/** A share link page (/l/<site>#<secret>) or a one-off console (/console#site=…&ticket=…). */
async function target(): Promise<Target | string> {
  const link = /^\/l\/([^/]+)$/.exec(location.pathname);
  if (link) {
    const site = decodeURIComponent(link[1]!);
    const secret = decodeURIComponent(location.hash.slice(1));
    if (!secret) return "This console link is incomplete. Check that you copied all of it.";
    // The secret travels in a header, never in a URL that a server or proxy would log.
    const res = await fetch(`${location.pathname}/status`, { cache: "no-store", headers: { "X-Porthole-Link": secret } });
    const body = (await res.json()) as { expiresAt?: string; viewOnly?: boolean; vm?: string; error?: { message: string } };
    if (!res.ok) return body.error?.message ?? "This link no longer works.";
    return { site, socketPath: linkSocketPath(site, secret), viewOnly: body.viewOnly === true, expiresAt: Date.parse(body.expiresAt!), vmName: body.vm };
  }
  const params = new URLSearchParams(location.hash.slice(1));
  const site = params.get("site");
  const ticket = params.get("ticket");
  if (!site || !ticket) return "This console link is incomplete. Open the console again from Porthole.";
  // The ticket is single use: drop it from the address bar so a reload does not look like a replay.
  history.replaceState(null, "", location.pathname);
  return { site, socketPath: consoleSocketPath(site, ticket), viewOnly: params.get("view") === "1" };
}

function showTimeLeft(expiresAt: number): void {
  const tick = () => {
    const left = Math.max(0, Math.round((expiresAt - Date.now()) / 1000));
    const text = left >= 3600 ? `${Math.floor(left / 3600)} h ${Math.floor((left % 3600) / 60)} min` : `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    badge.dataset.timeLeft = String(left);
    badge.textContent = `${badge.dataset.prefix ?? ""}link ends in ${text}`;
    if (left === 0) clearInterval(timer);
  };
  const timer = setInterval(tick, 1000);
  tick();
}

async function start(): Promise<void> {
  const t = await target();
  if (typeof t === "string") {
    fail(t);
    return;
  }
  const { site } = t;
  title.textContent = t.vmName ? `${site} — ${t.vmName}` : site;
  if (t.viewOnly) {
    document.body.dataset.viewOnly = "true";
    badge.dataset.prefix = "View only · ";
    badge.textContent = "View only";
  }
  if (t.expiresAt) showTimeLeft(t.expiresAt);

  const url = location.origin.replace(/^http/, "ws") + t.socketPath;
  const ws = new WebSocket(url, [CREDIT_SUBPROTOCOL]);
  returnCredit(ws);
  let closeText: string | null = null;
  ws.addEventListener("close", (ev) => {
    closeText = describeClose(ev.code, ev.reason);
  });

  const rfb = new RFB(document.getElementById("screen")!, ws, { shared: true });
  rfb.scaleViewport = true;
  // Only a courtesy: the edge drops a view-only viewer's input whatever this page does.
  rfb.viewOnly = t.viewOnly;
  rfb.addEventListener("connect", () => {
    show("connected", "Connected");
    cad.disabled = t.viewOnly;
  });
  rfb.addEventListener("desktopname", (e: CustomEvent<{ name: string }>) => {
    if (!t.vmName) title.textContent = `${site} — ${e.detail.name}`;
  });
  rfb.addEventListener("disconnect", () => {
    cad.disabled = true;
    fail(closeText ?? "The console connection was lost.");
  });
  rfb.addEventListener("securityfailure", (e: CustomEvent<{ reason?: string }>) => {
    fail(`The console refused the connection: ${e.detail.reason ?? "security failure"}.`);
  });
  cad.addEventListener("click", () => rfb.sendCtrlAltDel());
  show("connecting", "Connecting…");
}

void start();
