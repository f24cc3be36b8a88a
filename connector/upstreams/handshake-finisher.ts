/**
 * Finishes an RFB handshake with a VNC server when the viewer it was for is gone (it left, stayed
 * silent, or its console gave up waiting for the server), then closes the connection cleanly.
 *
 * Why: VNC servers count a connection that closes before authentication as a failed attempt from
 * that address. TigerVNC marks the address for every connection it accepts and forgets the marks
 * only when one authenticates; at 5 it refuses the address for 10 s, then 20, 40, … ("Connections:
 * blacklisted"). Every console reaches the server from the connector's one address, so ten viewers
 * closing their page early took every console of that server down. A connection the connector
 * itself completes (security type None) authenticates, which wipes the marks.
 *
 * The connector plays the viewer's part from where the viewer stopped, as a client would: the
 * version (at most the server's, at most 3.8), security type None if the server offers it,
 * ClientInit with shared = 1 (never disconnecting anyone), ServerInit, then a clean close. It knows
 * where the viewer stopped from a transcript of both directions (the handshake's first bytes only;
 * see HandshakeTranscript). A server that only offers a password-based type (VNC authentication,
 * VeNCrypt, …) cannot be finished without the password: the connection is closed at once and that
 * server counts one failed attempt (the turn limit keeps such attempts few, and the next console
 * that authenticates clears them).
 */
import type { Duplex } from "node:stream";

/** Once the server talks, the rest of the handshake is a few round trips: this is generous. */
export const FINISH_TIMEOUT_MS = 10_000;
/**
 * A server that has not greeted yet (hung, or its kernel queued the connection while the process is
 * stopped) is waited for this long, holding the connection's handshake turn, so that the connector
 * adds no more half-open connections to it meanwhile and finishes this one when it wakes up.
 */
export const STALLED_SERVER_PATIENCE_MS = 120_000;
/** After the close, how long the server may take to close its side before the socket is destroyed. */
const CLOSE_GRACE_MS = 2_000;
/**
 * Transcript bytes kept per direction. A client's handshake is at most 30 bytes (version 12,
 * choice 1, VNC-auth response 16, ClientInit 1); a server's before ServerInit at most 288
 * (version 12, count and 255 types, challenge 16, result 4). More only comes with a failure reason,
 * the desktop name or normal traffic, when authentication is decided already.
 */
const MAX_TRANSCRIPT_BYTES = 1024;

/** What each side sent since the connection opened, the first MAX_TRANSCRIPT_BYTES of each. */
export class HandshakeTranscript {
  private server: Buffer[] = [];
  private client: Buffer[] = [];
  private serverLength = 0;
  private clientLength = 0;

  fromServer(chunk: Uint8Array): void {
    if (this.serverLength > MAX_TRANSCRIPT_BYTES) return;
    this.server.push(Buffer.from(chunk.subarray(0, MAX_TRANSCRIPT_BYTES + 1 - this.serverLength)));
    this.serverLength += Math.min(chunk.length, MAX_TRANSCRIPT_BYTES + 1 - this.serverLength);
  }

  /** Bytes the viewer sent that were written to the server. */
  fromClient(chunk: Uint8Array): void {
    if (this.clientLength > MAX_TRANSCRIPT_BYTES) return;
    this.client.push(Buffer.from(chunk.subarray(0, MAX_TRANSCRIPT_BYTES + 1 - this.clientLength)));
    this.clientLength += Math.min(chunk.length, MAX_TRANSCRIPT_BYTES + 1 - this.clientLength);
  }

  /** `overflowed`: a side sent more than the handshake: authentication is decided already. */
  snapshot(): { server: Buffer; client: Buffer; overflowed: boolean } {
    return {
      server: Buffer.concat(this.server),
      client: Buffer.concat(this.client),
      overflowed: this.serverLength > MAX_TRANSCRIPT_BYTES || this.clientLength > MAX_TRANSCRIPT_BYTES,
    };
  }

  /** The handshake is over: nothing more to keep. */
  clear(): void {
    this.server = [];
    this.client = [];
    this.serverLength = this.clientLength = MAX_TRANSCRIPT_BYTES + 1;
  }
}

export type FinishOutcome =
  /** ServerInit received: the server counts a successful connection; closed cleanly. */
  | "finished"
  /** Past authentication already, or the server refused (it closes itself): closed at once. */
  | "closed"
  /** Needs something only the viewer has (a password), or an unknown protocol: closed unfinished. */
  | "abandoned"
  /** The server did not complete in time (FINISH_TIMEOUT_MS, or STALLED_SERVER_PATIENCE_MS without a greeting). */
  | "timeout"
  /** The server closed or reset the connection first. */
  | "gone";

export interface FinishResult {
  outcome: FinishOutcome;
  /** For the log: why, in a few words. */
  detail: string;
}

export interface FinishOptions {
  timeoutMs?: number;
  patienceMs?: number;
}

const VERSION = /^RFB 003\.(\d{3})\n$/;

/** RFC 6143 §7.1.1: 3.7 and 3.8 as such, 3.889 (Apple) and later as 3.8, anything else as 3.3. */
export function rfbMinor(version: Buffer): number | null {
  const m = VERSION.exec(version.toString("latin1"));
  if (!m) return null;
  const minor = Number(m[1]);
  return minor >= 8 ? 8 : minor === 7 ? 7 : 3;
}

type Step = "version" | "security33" | "count" | "types" | "challenge" | "result" | "init" | "name";

/**
 * The client's side of the handshake as a state machine over the server's bytes: `feed` returns
 * the bytes the connector must send, or a final result. `sent` is what the viewer already sent:
 * those steps are taken from it instead of being sent again.
 */
export class ClientHandshake {
  private inbox = Buffer.alloc(0);
  private sentAt = 0;
  private minor = 3;
  private step: Step = "version";
  private need = 12;
  private nameLeft = 0;
  private securityType = 0;

  private readonly sent: Buffer;

  constructor(sent: Buffer) {
    this.sent = sent;
  }

  /** Feeds server bytes; returns what to send now and, once over, the result. */
  feed(chunk: Uint8Array): { send: Buffer[]; result?: FinishResult } {
    const send: Buffer[] = [];
    if (this.step === "name") {
      // The desktop name is counted, never kept.
      this.nameLeft -= Math.min(this.nameLeft, chunk.length);
      return this.nameLeft === 0 ? { send, result: { outcome: "finished", detail: "ServerInit received" } } : { send };
    }
    this.inbox = this.inbox.length ? Buffer.concat([this.inbox, chunk]) : Buffer.from(chunk);
    while (this.inbox.length >= this.need) {
      const bytes = this.inbox.subarray(0, this.need);
      this.inbox = this.inbox.subarray(this.need);
      const result = this.advance(bytes, send);
      if (result) return { send, result };
      if ((this.step as Step) === "name") {
        // What is left in the inbox is (the start of) the desktop name.
        this.nameLeft -= Math.min(this.nameLeft, this.inbox.length);
        this.inbox = Buffer.alloc(0);
        return this.nameLeft === 0 ? { send, result: { outcome: "finished", detail: "ServerInit received" } } : { send };
      }
    }
    return { send };
  }

  /**
   * The viewer's bytes for the next client message of `n` bytes: what it sent, or null if it never
   * got that far (the connector sends its own). A message the viewer sent only part of cannot be
   * completed safely: "partial".
   */
  private viewerSent(n: number): Buffer | null | "partial" {
    const left = this.sent.length - this.sentAt;
    if (left === 0) return null;
    if (left < n) return "partial";
    const bytes = this.sent.subarray(this.sentAt, this.sentAt + n);
    this.sentAt += n;
    return bytes;
  }

  private advance(bytes: Buffer, send: Buffer[]): FinishResult | null {
    switch (this.step) {
      case "version": {
        const serverMinor = rfbMinor(bytes);
        if (serverMinor === null) return { outcome: "abandoned", detail: "not an RFB greeting" };
        const theirs = this.viewerSent(12);
        if (theirs === "partial") return { outcome: "abandoned", detail: "the viewer sent part of its version" };
        if (theirs) {
          const minor = rfbMinor(theirs);
          if (minor === null) return { outcome: "abandoned", detail: "the viewer sent no RFB version" };
          this.minor = minor;
        } else {
          this.minor = serverMinor;
          send.push(Buffer.from(`RFB 003.00${serverMinor}\n`, "latin1"));
        }
        return this.expect(this.minor === 3 ? "security33" : "count", this.minor === 3 ? 4 : 1);
      }
      case "security33": {
        this.securityType = bytes.readUInt32BE(0);
        if (this.securityType === 0) return { outcome: "closed", detail: "the server refused the connection" };
        return this.afterSecurityType(send);
      }
      case "count":
        if (bytes[0] === 0) return { outcome: "closed", detail: "the server refused the connection" };
        return this.expect("types", bytes[0]!);
      case "types": {
        const theirs = this.viewerSent(1);
        if (theirs === "partial") return { outcome: "abandoned", detail: "inconsistent transcript" };
        if (theirs) this.securityType = theirs[0]!;
        else if (bytes.includes(1)) {
          this.securityType = 1;
          send.push(Buffer.from([1]));
        } else return { outcome: "abandoned", detail: `the server requires a password (security types ${[...bytes].join(",")})` };
        return this.afterSecurityType(send);
      }
      case "challenge": {
        const theirs = this.viewerSent(16);
        if (!theirs || theirs === "partial") return { outcome: "abandoned", detail: "VNC authentication needs the viewer's password" };
        return this.expect("result", 4);
      }
      case "result":
        if (bytes.readUInt32BE(0) !== 0) return { outcome: "closed", detail: "the server refused the authentication" };
        return this.clientInit(send);
      case "init": {
        this.nameLeft = bytes.readUInt32BE(20);
        if (this.nameLeft === 0) return { outcome: "finished", detail: "ServerInit received" };
        this.step = "name";
        return null;
      }
      default:
        return { outcome: "abandoned", detail: "unexpected state" };
    }
  }

  private afterSecurityType(send: Buffer[]): FinishResult | null {
    switch (this.securityType) {
      case 1:
        // SecurityResult follows None only in 3.8.
        return this.minor === 8 ? this.expect("result", 4) : this.clientInit(send);
      case 2:
        return this.expect("challenge", 16);
      default:
        return { outcome: "abandoned", detail: `security type ${this.securityType} is not one the connector can finish` };
    }
  }

  private clientInit(send: Buffer[]): FinishResult | null {
    const theirs = this.viewerSent(1);
    if (theirs === "partial") return { outcome: "abandoned", detail: "inconsistent transcript" };
    // shared = 1: the connector's own connection must never disconnect anyone's console.
    if (!theirs) send.push(Buffer.from([1]));
    return this.expect("init", 24);
  }

  private expect(step: Step, need: number): null {
    this.step = step;
    this.need = need;
    return null;
  }
}

/**
 * Plays the client's part on `socket` to the end of the handshake, then closes it. Never rejects;
 * the socket is closed (ended, or destroyed after a grace) when the promise resolves.
 */
export function finishHandshake(
  socket: Duplex,
  transcript: { server: Buffer; client: Buffer; overflowed: boolean },
  { timeoutMs = FINISH_TIMEOUT_MS, patienceMs = STALLED_SERVER_PATIENCE_MS }: FinishOptions = {},
): Promise<FinishResult> {
  return new Promise<FinishResult>((resolve) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const client = new ClientHandshake(transcript.client);

    const done = (result: FinishResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("end", onGone);
      socket.off("close", onGone);
      // Keep reading (and dropping) until the server closes its side, briefly.
      socket.on("data", () => {});
      socket.on("error", () => {});
      if (!socket.destroyed) {
        socket.end();
        const grace = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
        grace.unref?.();
        socket.once("close", () => clearTimeout(grace));
      }
      resolve(result);
    };
    const arm = (ms: number, detail: string) => {
      clearTimeout(timer);
      timer = setTimeout(() => done({ outcome: "timeout", detail }), ms);
      timer.unref?.();
    };
    const take = (chunk: Uint8Array) => {
      const { send, result } = client.feed(chunk);
      for (const bytes of send) if (!socket.destroyed) socket.write(bytes);
      if (result) done(result);
    };
    let heard = transcript.server.length > 0;
    const onData = (chunk: Buffer) => {
      if (!heard) {
        heard = true;
        arm(timeoutMs, "the server stopped answering");
      }
      take(chunk);
    };
    const onGone = () => done({ outcome: "gone", detail: "the server closed the connection" });

    socket.on("error", () => {});
    if (socket.destroyed) return done({ outcome: "gone", detail: "the connection was closed already" });
    if (transcript.overflowed) return done({ outcome: "closed", detail: "past authentication" });
    arm(heard ? timeoutMs : patienceMs, heard ? "the server stopped answering" : "the server never greeted");
    socket.on("data", onData);
    socket.once("end", onGone);
    socket.once("close", onGone);
    if (transcript.server.length > 0) take(transcript.server);
    if (!settled) socket.resume();
  });
}
