/**
 * One console socket with noVNC on it: the WebSocket (credit subprotocol), the credit channel
 * noVNC reads through (console-channel.ts), and noVNC's events told to the session
 * (console-session.ts) as ConsoleEvents. Nothing happens at import; `openConsole` is the session's
 * `open`.
 */
import RFB from "@novnc/novnc";
import { CREDIT_SUBPROTOCOL } from "../../shared/protocol/limits.ts";
import { CloseRecord } from "./close-reasons.ts";
import { CreditChannel } from "./console-channel.ts";
import type { Connection, ConsoleEvents, Target } from "./console-session.ts";

export interface LiveConsole extends Connection {
  rfb: RFB;
}

export function openConsole(screen: HTMLElement, t: Target, events: ConsoleEvents): LiveConsole {
  const ws = new WebSocket(location.origin.replace(/^http/, "ws") + t.socketPath, [CREDIT_SUBPROTOCOL]);
  const close = new CloseRecord();
  ws.addEventListener("close", (ev) => close.socketClosed(ev.code, ev.reason));
  // After the close listener above, so the code is known when noVNC reports the disconnect.
  const channel = new CreditChannel(ws, { onNotice: events.notice, onConsoleBytes: events.consoleBytes });
  const rfb = new RFB(screen, channel, { shared: true });
  rfb.clipViewport = false;
  // Only a courtesy: the edge drops a view-only viewer's input whatever this page does.
  rfb.viewOnly = t.viewOnly;
  rfb.addEventListener("connect", () => events.connected());
  rfb.addEventListener("desktopname", (e: CustomEvent<{ name: string }>) => events.desktopName(e.detail.name));
  rfb.addEventListener("clipboard", (e: CustomEvent<{ text: string }>) => events.clipboard(e.detail.text));
  // The close event precedes noVNC's disconnect; a socket that never opened reports 1006.
  rfb.addEventListener("disconnect", () => events.closed(close.code, close.reason, close.text));
  rfb.addEventListener("securityfailure", (e: CustomEvent<{ reason?: string }>) => close.securityFailure(e.detail.reason));
  return {
    rfb,
    sendOwn: (message) => channel.sendOwn(message),
    setFit(fitToWindow) {
      rfb.scaleViewport = fitToWindow;
    },
  };
}
