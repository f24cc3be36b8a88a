/**
 * The parse loops of both directions: they feed each phase the header bytes it needs, stream
 * message bodies through (counting, never storing), hold handshake bytes that wait for the other
 * direction, and turn an Unframeable into a fault or lost framing. What a phase decides lives in
 * handshake.ts, server-framing.ts and client-filter.ts; they work on this object's state.
 */
import { clientEncoding, clientMessage } from "./client-filter.ts";
import { Unframeable, viewOnlyFault } from "./faults.ts";
import { clientHandshakeStep, clientWaits, serverHandshakeStep, serverWaits } from "./handshake.ts";
import { serverMessageStep } from "./server-framing.ts";
import { MAX_HELD, type ClientPhase, type Mode, type ServerPhase, type TrackerState } from "./state.ts";

export class RfbParser {
  readonly mode: Mode;
  st: TrackerState;
  /**
   * The header a console-direction step reads: `head[headAt]` to `head[headAt + headLength - 1]`.
   * Either the bytes collected in `st.server.header` (a header split across chunks) or, most of the
   * time, the input itself: a header whole in the input is read where it lies, never copied.
   */
  head: ArrayLike<number> = [];
  headAt = 0;
  headLength = 0;
  /** A step found that its header is longer than it had (st.server.need was raised). */
  private wantMore = false;
  /** Where the last server message ended in the current fromServer input (-1: none). */
  private lastBoundary = -1;
  /** Absolute console-direction offset of the parse cursor while a server chunk is parsed (null: outside). */
  private serverCursor: number | null = null;
  /** Pieces being produced for the console by the current viewer input (or a release). */
  private toServer: Uint8Array[] = [];

  constructor(mode: Mode, st: TrackerState) {
    this.mode = mode;
    this.st = st;
  }

  /** Parses a console chunk; returns where its last message ended (-1: no message ended in it). */
  serverChunk(input: Uint8Array): number {
    this.lastBoundary = -1;
    // fromServer counts the chunk into st.received after parsing it: its first byte is at st.received.
    this.parseServer(input, 0, this.st.received);
    return this.lastBoundary;
  }

  /** Parses a viewer chunk; returns the pieces to forward to the console, in order. */
  viewerChunk(input: Uint8Array): Uint8Array[] {
    this.toServer = [];
    this.parseClient(input, 0);
    const out = this.toServer;
    this.toServer = [];
    return out;
  }

  // ---------------------------------------------------------------- console → viewer

  private parseServer(input: Uint8Array, at: number, base: number): void {
    const st = this.st;
    const d = st.server;
    let i = at;
    try {
      for (;;) {
        if (st.lost || st.serverUnframed) return;
        if (d.body > 0) {
          const n = Math.min(d.body, input.length - i);
          d.body -= n;
          i += n;
          if (d.body > 0) return;
        }
        if (serverWaits(st)) {
          // Nothing the server sends here can be parsed before the viewer's choice is known.
          if (d.held.length + input.length - i > MAX_HELD) throw new Unframeable("console data before the viewer's answer");
          for (; i < input.length; i++) d.held.push(input[i]!);
          return;
        }
        if (st.handshakeDone && d.header.length === 0 && input.length - i >= d.need) {
          // The whole header is in the input: read it there. A step that finds it needs more
          // reads on in place while the input has it, and otherwise keeps what it has in d.header.
          this.head = input;
          this.headAt = i;
          for (;;) {
            this.headLength = d.need;
            const end = serverMessageStep(this);
            if (!this.wantMore) {
              i = this.headAt + this.headLength;
              if (end) this.lastBoundary = i;
              break;
            }
            this.wantMore = false;
            if (input.length - this.headAt < d.need) {
              for (let k = 0; k < this.headLength; k++) d.header.push(input[this.headAt + k]!);
              i = this.headAt + this.headLength;
              break;
            }
          }
          continue;
        }
        while (d.header.length < d.need && i < input.length) d.header.push(input[i++]!);
        if (d.header.length < d.need) return;
        this.head = d.header;
        this.headAt = 0;
        this.headLength = d.header.length;
        this.wantMore = false;
        // Before ServerInit has passed headers are always collected in d.header (headAt is 0).
        this.serverCursor = base + i;
        try {
          if (st.handshakeDone ? serverMessageStep(this) : serverHandshakeStep(this)) this.lastBoundary = i;
        } finally {
          this.serverCursor = null;
        }
      }
    } catch (e) {
      if (!(e instanceof Unframeable)) throw e;
      this.lose(e.message);
      // Not view-only: viewer bytes held back (handshake, or a partial message header) go on
      // untouched, ahead of anything the viewer sends next.
      const c = st.client;
      st.heldForServer.push(...c.held, ...c.header);
      c.held = [];
      c.header = [];
    }
  }

  /** After the viewer said something a waiting server parse needs: parse what the server sent meanwhile. */
  resumeServer(): void {
    const d = this.st.server;
    if ((d.phase !== "awaitVersion" && d.phase !== "awaitChoice") || serverWaits(this.st)) return;
    const held = Uint8Array.from(d.held);
    d.held = [];
    // Held bytes are the last ones received.
    this.parseServer(held, 0, this.st.received - held.length);
  }

  setServerPhase(phase: ServerPhase, need: number): void {
    const d = this.st.server;
    d.phase = phase;
    d.need = need;
    // Outside a server parse (the viewer's choice advanced a waiting phase) the cursor is where
    // the unparsed (held) server bytes begin.
    if (phase === "serverInit") this.st.serverInitAt = this.serverCursor ?? this.st.received - d.held.length;
    if (d.header.length !== 0) d.header = [];
  }

  /** The current step's header is longer than it had: wait for `need` bytes in all. */
  more(need: number): false {
    this.st.server.need = need;
    this.wantMore = true;
    return false;
  }

  // ---------------------------------------------------------------- viewer → console

  private parseClient(input: Uint8Array, at: number): void {
    const st = this.st;
    const d = st.client;
    let i = at;
    try {
      for (;;) {
        if (st.lost) {
          // Pass the rest untouched, including anything held back so far.
          this.passRest(input, i);
          return;
        }
        if (d.body > 0) {
          const n = Math.min(d.body, input.length - i);
          if (d.passBody) this.emit(input.subarray(i, i + n));
          d.body -= n;
          i += n;
          if (d.body > 0) return;
        }
        if (clientWaits(st)) {
          // RFB 3.3: the server picks the security type; until it is seen, the viewer's next bytes
          // (a pipelined ClientInit, or a VNC auth response) cannot be classified. Held, bounded.
          if (d.held.length + input.length - i > MAX_HELD) throw new Unframeable("viewer data before the security handshake");
          for (; i < input.length; i++) d.held.push(input[i]!);
          return;
        }
        while (d.header.length < d.need && i < input.length) d.header.push(input[i++]!);
        if (d.header.length < d.need) return;
        this.clientStep();
      }
    } catch (e) {
      if (!(e instanceof Unframeable)) throw e;
      this.lose(e.message);
      // Not view-only (lose() throws otherwise): pass everything on untouched.
      this.passRest(input, i);
    }
  }

  private passRest(input: Uint8Array, i: number): void {
    const d = this.st.client;
    this.emit(d.held);
    this.emit(d.header);
    d.held = [];
    d.header = [];
    if (i < input.length) this.emit(input.subarray(i));
  }

  private clientStep(): void {
    const phase = this.st.client.phase;
    if (phase === "message") clientMessage(this);
    else if (phase === "encoding") clientEncoding(this);
    else clientHandshakeStep(this, phase);
  }

  /** The server's 3.3 security type arrived: parse what the viewer sent meanwhile. */
  resumeClient(): void {
    const d = this.st.client;
    if (d.phase !== "awaitSecurityType") return;
    this.clientStep(); // leaves awaitSecurityType
    const held = Uint8Array.from(d.held);
    d.held = [];
    const saved = this.toServer;
    this.toServer = [];
    try {
      this.parseClient(held, 0);
      for (const piece of this.toServer) this.st.heldForServer.push(...piece);
    } finally {
      this.toServer = saved;
    }
  }

  setClientPhase(phase: ClientPhase, need: number): void {
    const d = this.st.client;
    d.phase = phase;
    d.need = need;
    d.header = [];
  }

  /** Forwards bytes to the console (after the pieces before them). */
  emit(bytes: Uint8Array | number[]): void {
    if (bytes.length > 0) this.toServer.push(bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes));
  }

  // ----------------------------------------------------------------

  private lose(reason: string): void {
    if (this.mode.viewOnly) throw viewOnlyFault(reason);
    this.st.lost = true;
    this.st.fences = [];
  }
}
