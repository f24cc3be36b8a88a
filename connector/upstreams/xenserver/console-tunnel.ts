/**
 * The XAPI console tunnel: TLS to port 443 of the host in the console location, `CONNECT` with
 * the session as the first cookie, then the raw RFB stream. The reply header may arrive in any
 * number of pieces and may share a read with the first RFB bytes; every byte after the blank line
 * is handed on unchanged.
 */
import type { Duplex } from "node:stream";
import { connect, type ConnectionOptions, type TLSSocket } from "node:tls";
import { CloseCode } from "../../../shared/protocol/close-codes.ts";
import { BlockReader } from "../block-reader.ts";
import { describeTlsError, type TlsTrust, tlsOptions } from "../tls-trust.ts";
import { awaitGreeting, socketFailure, UpstreamError } from "../upstream.ts";

/**
 * XAPI's console port: the location URL carries none, whatever port the API is reached on. A
 * pool config may name another (`consolePort`), for hosts behind a port mapping and for tests.
 */
export const CONSOLE_PORT = 443;
const MAX_HEADER_BYTES = 16 * 1024;
/** For the reply header; the RFB greeting after it has its own limit (awaitGreeting). */
const REPLY_TIMEOUT_MS = 10_000;
const END_OF_HEADER = Buffer.from("\r\n\r\n");

export type ConnectReply =
  /** No blank line yet: read more. */
  | { kind: "incomplete" }
  /** The whole header: its status, and the bytes after the blank line (the first RFB bytes, maybe none). */
  | { kind: "reply"; status: number; rest: Buffer }
  /** Not a reply the connector can use; `message` says why. */
  | { kind: "error"; message: string };

const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})(?: [\t\x20-\x7e\x80-\xff]*)?$/;

/**
 * Parses the reply to `CONNECT /console` from everything received so far (a pure function: the
 * caller keeps the bytes and calls again with more). Never throws; a header that has not ended
 * within `maxHeaderBytes` is an error, not a reason to keep reading.
 */
export function parseConnectReply(received: Buffer, maxHeaderBytes = MAX_HEADER_BYTES): ConnectReply {
  const end = received.indexOf(END_OF_HEADER);
  if (end < 0 || end + END_OF_HEADER.length > maxHeaderBytes) {
    if (received.length <= maxHeaderBytes) return { kind: "incomplete" };
    return { kind: "error", message: `a reply header longer than ${maxHeaderBytes} bytes` };
  }
  const lineEnd = received.indexOf("\r\n");
  const statusLine = received.subarray(0, lineEnd).toString("latin1");
  const match = STATUS_LINE.exec(statusLine);
  if (!match) return { kind: "error", message: "a reply that is not HTTP/1.x" };
  return { kind: "reply", status: Number(match[1]), rest: received.subarray(end + END_OF_HEADER.length) };
}

/** The host answered 401: the caller signs in again once and retries. */
export class ConsoleUnauthorized extends UpstreamError {}

export interface ConsoleRequest {
  /** https://<host>/console?uuid=… as console.get_location gives it. */
  location: string;
  session: string;
  trust: TlsTrust;
  signal: AbortSignal;
  /** For messages: the pool's configured name. */
  pool: string;
  /** Default CONSOLE_PORT. */
  port?: number;
  /** Default GREETING_TIMEOUT_MS. */
  greetingTimeoutMs?: number;
}

function statusError(status: number, pool: string): UpstreamError {
  switch (status) {
    case 401:
      return new ConsoleUnauthorized(CloseCode.upstreamFailed, `XenServer pool ${pool} refused the console session (401).`);
    case 403:
      return new UpstreamError(CloseCode.forbidden, `The XenServer account of pool ${pool} has no role that may open consoles (403).`);
    case 404:
      return new UpstreamError(CloseCode.notFound, "This VM has no graphical console on XenServer (404).");
    case 500:
      return new UpstreamError(
        CloseCode.upstreamFailed,
        "XenServer could not open the console (500): the VM is not running, or it moved to another host. Start it, or try again.",
      );
    case 503:
      return new UpstreamError(
        CloseCode.upstreamFailed,
        "Someone else is using this VM's console: XenServer allows one viewer per console (503). Try again when they are done.",
      );
    default:
      return new UpstreamError(CloseCode.upstreamFailed, `XenServer answered the console request with HTTP ${status}.`);
  }
}

export function openXapiConsole(req: ConsoleRequest): Promise<Duplex> {
  const url = new URL(req.location);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  return new Promise<Duplex>((resolve, reject) => {
    let settled = false;
    let header = Buffer.alloc(0);
    // TLS takes `onread` as TCP does (Node's tls.connect passes it to its socket; @types/node omits
    // it): decrypted console bytes land in reused blocks (block-reader.ts).
    const reader = new BlockReader();
    const onread = { onread: reader.onread } as ConnectionOptions;
    const socket: TLSSocket = reader.bind(connect({ host, port: req.port ?? CONSOLE_PORT, ...tlsOptions(req.trust, host), ...onread }));
    socket.setNoDelay(true);

    const fail = (err: UpstreamError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    /** The reply header is over: the RFB greeting is awaited like every upstream's. */
    const succeed = (first: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.pause();
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.off("error", onError);
      // Until the relay attaches its own handlers, an error must not go unhandled.
      socket.on("error", () => {});
      req.signal.removeEventListener("abort", onAbort);
      if (first.length > 0) socket.unshift(first);
      socket.setKeepAlive(true, 30_000);
      resolve(
        awaitGreeting(socket, {
          signal: req.signal,
          timeoutMs: req.greetingTimeoutMs,
          closed: "XenServer accepted the console request but closed it at once: the VM's display is not available. Try again in a moment.",
        }),
      );
    };
    const onAbort = () => fail(new UpstreamError(CloseCode.ended, "The console request was cancelled."));
    const onError = (err: NodeJS.ErrnoException) =>
      fail(
        new UpstreamError(
          CloseCode.upstreamFailed,
          describeTlsError(err, host, req.trust) ??
            socketFailure(
              err,
              `XenServer host ${host}`,
              `XenServer host ${host} of pool ${req.pool} refused the console connection (port ${req.port ?? CONSOLE_PORT}): is the host up?`,
            ).message,
        ),
      );
    const onEnd = () =>
      fail(new UpstreamError(CloseCode.upstreamFailed, `XenServer host ${host} closed the connection during the console request.`));
    const onData = (chunk: Buffer) => {
      const buf = Buffer.concat([header, chunk]);
      const reply = parseConnectReply(buf);
      switch (reply.kind) {
        case "incomplete":
          header = buf;
          return;
        case "error":
          return fail(new UpstreamError(CloseCode.upstreamFailed, `XenServer host ${host} answered the console request with ${reply.message}.`));
        case "reply":
          if (reply.status !== 200) return fail(statusError(reply.status, req.pool));
          succeed(reply.rest);
      }
    };
    const timer = setTimeout(
      () => fail(new UpstreamError(CloseCode.upstreamTimeout, `XenServer host ${host} did not answer the console request in time.`)),
      REPLY_TIMEOUT_MS,
    );
    if (req.signal.aborted) return onAbort();
    req.signal.addEventListener("abort", onAbort, { once: true });
    socket.on("data", onData);
    socket.once("end", onEnd);
    socket.on("error", onError);
    socket.once("secureConnect", () => {
      // The session goes in the first (only) cookie: XAPI does not look past the first one.
      socket.write(`CONNECT ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${host}\r\nCookie: session_id=${req.session}\r\n\r\n`);
    });
  });
}
