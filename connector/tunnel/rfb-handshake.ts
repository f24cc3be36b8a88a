/**
 * Watches both directions of a console stream, without changing or holding a byte, to tell when
 * the RFB handshake is over (RFB 3.3, 3.7, 3.8; RFC 6143 §7.1-7.3): the server's ServerInit has
 * passed, so the security handshake succeeded. Until then the connection counts against the VNC
 * server's limit of unauthenticated connections per address (see handshake-limiter.ts).
 *
 * Only security types None (1) and VNC authentication (2) are followed to the end. Any other type
 * (VeNCrypt, TLS, Apple, …) wraps or extends the handshake in ways this small parser does not
 * follow, so for those the handshake counts as done once the type is chosen.
 *
 * The parser only needs a few bytes at a time (at most 255 security types); longer fields (failure
 * reasons, the desktop name) are counted, never buffered. Anything unexpected counts as done: a
 * wrong guess can only release a slot early, never hold it forever.
 */

type Next = Step | (() => Step | "done") | "done";

interface Step {
  /** Bytes this step reads. */
  need: number;
  /** Count the bytes without keeping them (long text fields). */
  skip?: boolean;
  then(bytes: Buffer): Next;
}

const u32 = (b: Buffer) => b.readUInt32BE(0);

/** One direction: feeds bytes through the current step. */
class Reader {
  private next: Next;
  private parts: Buffer[] = [];
  private have = 0;

  constructor(first: Next) {
    this.next = first;
  }

  get finished(): boolean {
    return this.next === "done";
  }

  feed(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.length && this.next !== "done") {
      // A step that depends on the other direction is decided when its first byte arrives.
      if (typeof this.next === "function") {
        this.next = this.next();
        continue;
      }
      const step = this.next;
      const take = Math.min(step.need - this.have, chunk.length - at);
      if (!step.skip) this.parts.push(Buffer.from(chunk.subarray(at, at + take)));
      this.have += take;
      at += take;
      if (this.have === step.need) {
        const bytes = step.skip ? Buffer.alloc(0) : Buffer.concat(this.parts);
        this.parts = [];
        this.have = 0;
        this.next = step.then(bytes);
      }
    }
  }

  stop(): void {
    this.next = "done";
    this.parts = [];
  }
}

export class RfbHandshake {
  /** 3, 7 or 8: the version the client chose; null until it did. */
  private minor: number | null = null;
  /** The security type in use: chosen by the client (3.7+) or imposed by the server (3.3). */
  private security: number | null = null;
  private readonly server: Reader;
  private readonly client: Reader;
  private readonly onDone: () => void;
  private finished = false;

  constructor(onDone: () => void) {
    this.onDone = onDone;
    this.server = new Reader({ need: 12, then: () => () => this.serverSecurity() });
    this.client = new Reader({
      need: 12,
      then: (version) => {
        const minor = Number(/^RFB 003\.(\d{3})\n$/.exec(version.toString("latin1"))?.[1] ?? NaN);
        if (!Number.isInteger(minor)) return this.finish();
        // RFC 6143 §7.1.1: an unknown version is treated as 3.3; Apple's 3.889 behaves as 3.8.
        this.minor = minor >= 8 ? 8 : minor === 7 ? 7 : 3;
        if (this.minor === 3) return () => this.clientAfterSecurity();
        return {
          need: 1,
          then: (choice) => {
            this.security = choice[0]!;
            return this.clientAfterSecurity();
          },
        };
      },
    });
  }

  get done(): boolean {
    return this.finished;
  }

  /** Bytes the upstream server sent. */
  fromServer(chunk: Uint8Array): void {
    if (!this.finished) this.server.feed(chunk);
  }

  /** Bytes the viewer sent. */
  fromClient(chunk: Uint8Array): void {
    if (!this.finished) this.client.feed(chunk);
  }

  private finish(): "done" {
    if (!this.finished) {
      this.finished = true;
      this.server.stop();
      this.client.stop();
      this.onDone();
    }
    return "done";
  }

  // ---- client → server --------------------------------------------------------------------------

  private clientAfterSecurity(): Step | "done" {
    switch (this.security) {
      case 1:
        return this.clientInit();
      case 2:
        return { need: 16, then: () => this.clientInit() }; // the challenge response
      default:
        // Another security type: its handshake is not followed (see the header comment).
        return this.finish();
    }
  }

  private clientInit(): Step {
    // ClientInit (the shared flag) is the client's last handshake message; the server decides the rest.
    return { need: 1, then: () => "done" };
  }

  // ---- server → client --------------------------------------------------------------------------

  private serverSecurity(): Step | "done" {
    if (this.minor === null) return this.finish(); // the server spoke before the client chose a version
    if (this.minor === 3) {
      return {
        need: 4,
        then: (type) => {
          this.security = u32(type);
          if (this.security === 0) return this.finish(); // refused, a reason follows and the server closes
          return this.serverAfterSecurity();
        },
      };
    }
    return {
      need: 1,
      then: (count) => {
        if (count[0] === 0) return this.finish(); // refused, a reason follows and the server closes
        return { need: count[0]!, then: () => () => this.serverAfterChoice() };
      },
    };
  }

  /** 3.7+: the server's next bytes come after the client's choice, which is known by then. */
  private serverAfterChoice(): Step | "done" {
    if (this.security === null) return this.finish();
    return this.serverAfterSecurity();
  }

  private serverAfterSecurity(): Step | "done" {
    switch (this.security) {
      case 1:
        // SecurityResult follows None only in 3.8.
        return this.minor === 8 ? this.securityResult() : this.serverInit();
      case 2:
        return { need: 16, then: () => this.securityResult() }; // the challenge
      default:
        return this.finish();
    }
  }

  private securityResult(): Step {
    return {
      need: 4,
      then: (result) => {
        if (u32(result) === 0) return this.serverInit();
        // Refused: the server closes the connection (after a reason in 3.8); it is over either way.
        return this.finish();
      },
    };
  }

  private serverInit(): Step {
    // width, height (U16 each), pixel format (16), name length (U32), then the name.
    return {
      need: 24,
      then: (init) => {
        const nameLength = init.readUInt32BE(20);
        if (nameLength === 0) return this.finish();
        return { need: nameLength, skip: true, then: () => this.finish() };
      },
    };
  }
}
