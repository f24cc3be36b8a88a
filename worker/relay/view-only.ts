/**
 * View-only, enforced by the edge: parses the viewer → console RFB stream (handshake, then client
 * messages), forces ClientInit's shared flag to 1, passes the messages that only ask for pixels and
 * silently drops every kind of input. Anything that cannot be framed closes the stream: the filter
 * never guesses. Messages may be split across or packed into WebSocket messages.
 *
 * Facts: ../shared/reference/rfb-view-only.md (RFC 6143, the community RFB spec, noVNC 1.7).
 */
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { concatFrames as concatBytes } from "../../shared/protocol/frames.ts";
import { StreamFault } from "./stream-fault.ts";

/** ExtendedMouseButtons pseudo-encoding (-316): PointerEvent grows to 7 bytes when bit 7 is set. */
const EXTENDED_MOUSE_BUTTONS = -316;

type Phase =
  | "version"
  | "await-server-security" // RFB 3.3: the server picks the security type; the client sends nothing
  | "security"
  | "vnc-auth"
  | "client-init"
  | "messages";

export class ViewOnlyFilter {
  private phase: Phase = "version";
  private pending: Uint8Array = new Uint8Array(0);
  /** Bytes of a dropped message still to skip (large clipboard texts are never buffered). */
  private skip = 0;
  private extendedMouse = false;
  private v33 = false;
  private server: Uint8Array = new Uint8Array(0);
  private serverDone = false;

  /** Resumes after hibernation: only a filter past the handshake can be resumed safely. */
  static resumed(inMessages: boolean): ViewOnlyFilter {
    const f = new ViewOnlyFilter();
    if (!inMessages) throw new StreamFault(CloseCode.internal, "The console was interrupted: open it again.");
    f.phase = "messages";
    f.serverDone = true;
    return f;
  }

  /** True once the handshake is done (worth remembering across hibernation). */
  get inMessages(): boolean {
    return this.phase === "messages";
  }

  /** Watches the console → viewer stream during the handshake (RFB 3.3 security type). */
  observeServer(bytes: Uint8Array): void {
    if (this.serverDone) return;
    this.server = concatBytes([this.server, bytes.subarray(0, 16 - this.server.length)]);
    if (this.server.length < 16) return;
    this.serverDone = true;
    if (this.phase === "await-server-security") this.afterServerSecurity();
  }

  /** Viewer → console bytes in; the bytes allowed through out (possibly none). */
  push(bytes: Uint8Array): Uint8Array {
    const out: Uint8Array[] = [];
    let input = bytes;
    if (this.skip > 0) {
      const n = Math.min(this.skip, input.length);
      this.skip -= n;
      input = input.subarray(n);
    }
    this.pending = concatBytes([this.pending, input]);
    for (;;) {
      const before = this.pending.length;
      const phaseBefore = this.phase;
      this.step(out);
      if (this.pending.length === before && this.phase === phaseBefore) break;
    }
    if (this.pending.length > 300 * 1024) throw new StreamFault(CloseCode.tooMuchInput, "RFB message too large");
    return out.length === 0 ? new Uint8Array(0) : concatBytes(out);
  }

  private take(n: number): Uint8Array {
    const head = this.pending.subarray(0, n);
    this.pending = this.pending.subarray(n);
    return head;
  }

  private step(out: Uint8Array[]): void {
    const p = this.pending;
    switch (this.phase) {
      case "version": {
        if (p.length < 12) return;
        const version = new TextDecoder().decode(p.subarray(0, 12));
        const m = /^RFB 003\.00([378])\n$/.exec(version);
        if (!m) throw refuse("unsupported RFB version");
        out.push(this.take(12));
        this.v33 = m[1] === "3";
        this.phase = this.v33 ? "await-server-security" : "security";
        if (this.v33 && this.serverDone) this.afterServerSecurity();
        return;
      }
      case "await-server-security":
        if (p.length > 64) throw refuse("input before the security handshake");
        return;
      case "security": {
        if (p.length < 1) return;
        const type = p[0]!;
        if (type !== 1 && type !== 2) throw refuse(`security type ${type} cannot be inspected`);
        out.push(this.take(1));
        this.phase = type === 2 ? "vnc-auth" : "client-init";
        return;
      }
      case "vnc-auth":
        if (p.length < 16) return;
        out.push(this.take(16));
        this.phase = "client-init";
        return;
      case "client-init":
        if (p.length < 1) return;
        this.take(1);
        // 0 would disconnect every other viewer: a view-only viewer is always shared.
        out.push(new Uint8Array([1]));
        this.phase = "messages";
        return;
      case "messages":
        return this.message(out);
    }
  }

  private afterServerSecurity(): void {
    const type = new DataView(this.server.buffer, this.server.byteOffset + 12, 4).getUint32(0);
    if (type === 0) {
      this.phase = "client-init"; // the server failed the handshake and will close
    } else if (type === 1 || type === 2) {
      this.phase = type === 2 ? "vnc-auth" : "client-init";
    } else {
      throw refuse(`security type ${type} cannot be inspected`);
    }
  }

  /** One client message, if complete: passed on, dropped, or skipped over. */
  private message(out: Uint8Array[]): void {
    const p = this.pending;
    if (p.length < 1) return;
    const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
    const type = p[0]!;
    const need = (n: number) => p.length >= n;
    switch (type) {
      case 0: // SetPixelFormat
        if (need(20)) out.push(this.take(20));
        return;
      case 2: {
        // SetEncodings
        if (!need(4)) return;
        const length = 4 + 4 * view.getUint16(2);
        if (!need(length)) return;
        for (let i = 4; i < length; i += 4) if (view.getInt32(i) === EXTENDED_MOUSE_BUTTONS) this.extendedMouse = true;
        out.push(this.take(length));
        return;
      }
      case 3: // FramebufferUpdateRequest
        if (need(10)) out.push(this.take(10));
        return;
      case 150: // EnableContinuousUpdates
        if (need(10)) out.push(this.take(10));
        return;
      case 248: {
        // ClientFence
        if (!need(9)) return;
        const length = 9 + p[8]!;
        if (need(length)) out.push(this.take(length));
        return;
      }
      case 4: // KeyEvent
        return this.drop(8);
      case 5: {
        // PointerEvent
        if (!need(2)) return;
        return this.drop(this.extendedMouse && p[1]! & 0x80 ? 7 : 6);
      }
      case 6: {
        // ClientCutText (a negative length is the extended clipboard)
        if (!need(8)) return;
        const length = Math.abs(view.getInt32(4));
        return this.drop(8 + length);
      }
      case 250: // xvp: shutdown, reboot, reset
        return this.drop(4);
      case 251: {
        // SetDesktopSize
        if (!need(7)) return;
        return this.drop(8 + 16 * p[6]!);
      }
      case 253: {
        // gii
        if (!need(4)) return;
        return this.drop(4 + view.getUint16(2));
      }
      case 255: {
        // QEMU client messages
        if (!need(2)) return;
        const sub = p[1]!;
        if (sub === 0) return this.drop(12); // extended key event
        if (sub === 1) {
          if (!need(4)) return;
          const op = view.getUint16(2);
          if (op === 0 || op === 1) return this.drop(4);
          if (op === 2) return this.drop(10);
        }
        throw refuse(`QEMU message ${sub} cannot be framed`);
      }
      default:
        throw refuse(`RFB message type ${type} cannot be framed`);
    }
  }

  /** Drops a message of `length` bytes, whether or not all of it has arrived. */
  private drop(length: number): void {
    const have = Math.min(length, this.pending.length);
    this.take(have);
    this.skip = length - have;
  }
}

function refuse(what: string): StreamFault {
  return new StreamFault(CloseCode.badRequest, `View-only console closed: ${what}.`);
}
