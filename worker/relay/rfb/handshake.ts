/**
 * The RFB handshake in both directions (RFB 3.3 / 3.7 / 3.8, security None and VNC auth, failures),
 * up to ServerInit. Each direction may have to wait for the other: the server's next bytes depend
 * on the version and security type the viewer chooses; in RFB 3.3 the viewer's next bytes depend on
 * the type the server picks. The viewer may choose only a security type the server offered.
 */
import { u32 } from "./bytes.ts";
import { notOffered, Unframeable } from "./faults.ts";
import type { RfbParser } from "./parser.ts";
import { setPixelFormat } from "./server-framing.ts";
import { FOREVER, type ClientHandshakePhase, type ServerMessagePhase, type TrackerState } from "./state.ts";

/** The console's next bytes cannot be parsed before the viewer's version or security choice. */
export function serverWaits(st: TrackerState): boolean {
  const p = st.server.phase;
  return (p === "awaitVersion" && st.minorVersion === 0) || (p === "awaitChoice" && st.securityType < 0);
}

/** RFB 3.3: the viewer's next bytes cannot be classified before the server's security type. */
export function clientWaits(st: TrackerState): boolean {
  return st.client.phase === "awaitSecurityType" && st.securityType < 0;
}

/** One console-direction decision before ServerInit has passed (the header is in st.server.header). */
export function serverHandshakeStep(parser: RfbParser): boolean {
  const st = parser.st;
  const d = st.server;
  const b = d.header;
  const p = d.phase;
  switch (p) {
    case "version": {
      const text = String.fromCharCode(...b);
      if (!/^RFB \d{3}\.\d{3}\n$/.test(text)) throw new Unframeable("not an RFB server");
      parser.setServerPhase("awaitVersion", 0);
      return false;
    }
    case "awaitVersion":
    case "awaitChoice":
      serverAdvanceWait(parser);
      return false;
    case "securityType": {
      const type = u32(b, 0);
      st.securityType = type;
      if (type === 0) parser.setServerPhase("failureReason", 4);
      else if (type === 1) parser.setServerPhase("serverInit", 24);
      else if (type === 2) {
        parser.setServerPhase("securityResult", 4);
        d.body = 16; // challenge
      } else throw new Unframeable(`security type ${type} cannot be inspected`);
      parser.resumeClient();
      return false;
    }
    case "securityList":
      if (b[0] === 0) parser.setServerPhase("failureReason", 4);
      else {
        // The offered types, one at a time: the viewer's choice is checked against them.
        st.offeredTypes = [0, 0, 0, 0, 0, 0, 0, 0];
        st.offeredToRead = b[0]!;
        parser.setServerPhase("offeredType", 1);
      }
      return false;
    case "offeredType": {
      const words = st.offeredTypes!;
      const type = b[0]!;
      words[type >> 5] = (words[type >> 5]! | (1 << (type & 31))) >>> 0;
      st.offeredToRead--;
      if (st.offeredToRead > 0) parser.setServerPhase("offeredType", 1);
      else parser.setServerPhase("awaitChoice", 0);
      return false;
    }
    case "securityResult":
      if (u32(b, 0) === 0) parser.setServerPhase("serverInit", 24);
      else if (st.minorVersion === 8) parser.setServerPhase("failureReason", 4);
      else parser.setServerPhase("failed", 0);
      return false;
    case "failureReason":
      d.body = u32(b, 0);
      parser.setServerPhase("failed", 0);
      return false;
    case "failed": {
      // The server closes after a failure: whatever else it sends is passed and not parsed, and
      // a viewer that did not notice sends nothing more that needs inspecting.
      d.body = FOREVER;
      const c = st.client;
      if ((c.phase === "securityChoice" || c.phase === "clientInit") && c.body === 0) {
        c.phase = "failed";
        c.need = 0;
        c.header = [];
      }
      return false;
    }
    case "serverInit":
      // A viewer may send SetPixelFormat before ServerInit reaches it: the server applies it after.
      if (st.bytesPerPixel === 0) setPixelFormat(st, b, 4);
      d.body = u32(b, 20); // name
      parser.setServerPhase("serverInitEnd", 0);
      return false;
    case "serverInitEnd":
      st.handshakeDone = true;
      if (!parser.mode.viewOnly && !parser.mode.fenceCredit) {
        // Nothing needs the console's messages framed: stop parsing them. Without watchInput
        // nothing needs the viewer's either, which is "lost" by another name.
        if (parser.mode.watchInput) st.serverUnframed = true;
        else st.lost = true;
        return false;
      }
      parser.setServerPhase("message", 1);
      return false;
    default:
      return messagePhase(p);
  }
}

/** Message phases are server-framing.ts's (a phase missing from both switches does not compile). */
function messagePhase(p: ServerMessagePhase): never {
  throw new Unframeable(`parser phase ${p}`);
}

/** Leaves a waiting phase once what it waited for is known. */
function serverAdvanceWait(parser: RfbParser): void {
  const st = parser.st;
  const d = st.server;
  if (d.phase === "awaitVersion" && st.minorVersion !== 0) {
    if (st.minorVersion === 3) parser.setServerPhase("securityType", 4);
    else parser.setServerPhase("securityList", 1);
  }
  if (d.phase === "awaitChoice" && st.securityType >= 0) {
    if (st.securityType === 1) {
      if (st.minorVersion === 8) parser.setServerPhase("securityResult", 4);
      else parser.setServerPhase("serverInit", 24);
    } else if (st.securityType === 2) {
      parser.setServerPhase("securityResult", 4);
      d.body = 16; // challenge
    } else {
      throw new Unframeable(`security type ${st.securityType} cannot be inspected`);
    }
  }
}

/** One viewer-direction decision before ClientInit has passed (the header is in st.client.header). */
export function clientHandshakeStep(parser: RfbParser, phase: ClientHandshakePhase): void {
  const st = parser.st;
  const mode = parser.mode;
  const d = st.client;
  const b = d.header;
  switch (phase) {
    case "version": {
      const m = /^RFB 003\.00([378])\n$/.exec(String.fromCharCode(...b));
      if (!m) throw new Unframeable("unsupported RFB version");
      parser.emit(b);
      st.minorVersion = Number(m[1]);
      if (st.minorVersion === 3) parser.setClientPhase("awaitSecurityType", 0);
      else parser.setClientPhase("securityChoice", 1);
      parser.resumeServer();
      return;
    }
    case "awaitSecurityType":
      // Only reached once the server's type is known.
      if (st.securityType === 1) parser.setClientPhase("clientInit", 1);
      else if (st.securityType === 2) {
        parser.setClientPhase("clientInit", 1);
        d.body = 16; // VNC auth response
        d.passBody = true;
      } else if (st.securityType === 0) parser.setClientPhase("failed", 0);
      else throw new Unframeable(`security type ${st.securityType} cannot be inspected`);
      return;
    case "securityChoice": {
      const type = b[0]!;
      // Only a type the server offered, for every viewer: a lenient server that accepts another
      // would take what follows as that type's data (a view-only viewer choosing VNC auth where
      // only None was offered smuggled a ClientInit and a KeyEvent in as its "auth response").
      // The list is always read first: the viewer only sees it once the tracker has parsed it.
      const offered = st.offeredTypes;
      const listed = offered !== null && st.offeredToRead === 0;
      if (!listed || ((offered[type >> 5]! >>> (type & 31)) & 1) === 0) throw notOffered(type, listed);
      // Needed no more: the state stays small (under 1 KiB) once counters grow.
      st.offeredTypes = null;
      st.offeredToRead = 0;
      if (type !== 1 && type !== 2) throw new Unframeable(`security type ${type} cannot be inspected`);
      parser.emit(b);
      st.securityType = type;
      parser.setClientPhase("clientInit", 1);
      if (type === 2) {
        d.body = 16; // VNC auth response
        d.passBody = true;
      }
      parser.resumeServer();
      return;
    }
    case "clientInit":
      // 0 would disconnect every other viewer: a view-only viewer is always shared.
      parser.emit(mode.viewOnly ? [1] : b);
      if (!mode.viewOnly && !mode.fenceCredit && !mode.watchInput) {
        parser.setClientPhase("passAll", 0);
        d.body = FOREVER;
        d.passBody = true;
      } else parser.setClientPhase("message", 1);
      return;
    case "failed":
      // The server refused and closes: nothing more goes to it from a view-only viewer.
      d.body = FOREVER;
      d.passBody = !mode.viewOnly;
      return;
    case "passAll":
      d.body = FOREVER;
      d.passBody = true;
      return;
    default:
      return unknownPhase(phase);
  }
}

function unknownPhase(phase: never): never {
  throw new Unframeable(`parser phase ${String(phase)}`);
}
