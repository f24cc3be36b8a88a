/**
 * The console page: noVNC over the console's wsUrl. The page returns credit to the edge as noVNC
 * consumes bytes (subprotocol porthole.credit.v1), so a stalled tab never makes the edge or the
 * connector buffer more than one window, and it shows why a console closed.
 */
import RFB from "@novnc/novnc";
import { CREDIT_CHUNK_BYTES, CREDIT_SUBPROTOCOL } from "../../shared/protocol/limits.ts";
import { consoleSocketPath } from "../../shared/urls/console.ts";
import { describeClose } from "./close-reasons.ts";

const status = document.getElementById("status")!;
const notice = document.getElementById("notice")!;
const title = document.getElementById("title")!;
const cad = document.getElementById("cad") as HTMLButtonElement;

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

function start(): void {
  const params = new URLSearchParams(location.hash.slice(1));
  const site = params.get("site");
  const ticket = params.get("ticket");
  if (!site || !ticket) {
    fail("This console link is incomplete. Open the console again from Porthole.");
    return;
  }
  // The ticket is single use: drop it from the address bar so a reload does not look like a replay.
  history.replaceState(null, "", location.pathname);
  title.textContent = site;

  const url = location.origin.replace(/^http/, "ws") + consoleSocketPath(site, ticket);
  const ws = new WebSocket(url, [CREDIT_SUBPROTOCOL]);
  returnCredit(ws);
  let closeText: string | null = null;
  ws.addEventListener("close", (ev) => {
    closeText = describeClose(ev.code, ev.reason);
  });

  const rfb = new RFB(document.getElementById("screen")!, ws, { shared: true });
  rfb.scaleViewport = true;
  rfb.addEventListener("connect", () => {
    show("connected", "Connected");
    cad.disabled = false;
  });
  rfb.addEventListener("desktopname", (e: CustomEvent<{ name: string }>) => {
    title.textContent = `${site} — ${e.detail.name}`;
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

start();
