/**
 * The pool simulator's console tunnel: `CONNECT /console?uuid=…` as xapi answers it (sessions from
 * cookies or the query, Basic auth, its failure replies byte for byte, the 200 header delivered
 * whole, in pieces or merged with the first VNC bytes), bridged to a real VNC server on 127.0.0.1.
 */
import type { IncomingMessage } from "node:http";
import { connect as netConnect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { ConsoleObj, PoolModel, VmObj } from "./model.ts";

export type HeaderDelivery = "whole" | "bytewise" | "merged" | { splitAt: number };
/**
 * "xapi": failure replies byte for byte as xapi writes them (status line, content-length,
 * content-type, `connection: close`, cache-control, an HTML body; 404 is headers only).
 * "minimal": just `HTTP/1.1 <code> <reason>\r\nconnection: close\r\n\r\n`.
 */
export type FailureReplies = "xapi" | "minimal";

export interface ConnectRecord {
  /** the address of the host that received the CONNECT */
  host: string;
  /** e.g. "CONNECT /console?uuid=… HTTP/1.1" */
  requestLine: string;
  /** header names lower-cased; a repeated header keeps its last value (as xapi does) */
  headers: Record<string, string>;
  /** the Cookie header xapi reads (the last one when repeated) */
  cookieHeader: string | undefined;
  /** every header exactly as received: [name, value, name, value, …] */
  rawHeaders: string[];
}

/** xapi's http_200_ok (): always HTTP/1.1 and keep-alive, whatever the request said. */
export const CONNECT_OK = "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nCache-Control: no-cache, no-store\r\n\r\n";

const REASONS: Record<number, string> = {
  401: "Unauthorised",
  403: "Forbidden",
  404: "Not Found",
  500: "Internal Error",
  503: "Connection Limit Exceeded",
};

/** The realm xapi names in WWW-Authenticate: the http action of the console handler. */
const CONSOLE_REALM = "connect_console";

/** Uri.pct_decode: %XX sequences only (no "+" → space), invalid sequences left as they are. */
function pctDecode(s: string): string {
  return s.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/**
 * Http.parse_cookies: split on ";" (or on "&" when there is no ";"), then on "="; names and values
 * are percent-decoded but NOT trimmed, so in "other=1; session_id=X" the second name is " session_id".
 */
function parseXapiCookies(header: string): [string, string][] {
  const sep = header.includes(";") ? ";" : "&";
  return header.split(sep).map((pair) => {
    const [k = "", ...vs] = pair.split("=");
    return [pctDecode(k), pctDecode(vs.join("="))];
  });
}

/** Uri.query of the request target: k=v pairs split on "&", percent-decoded. */
function parseQuery(url: string): { path: string; query: [string, string][] } {
  const q = url.indexOf("?");
  const path = q < 0 ? url : url.slice(0, q);
  if (q < 0) return { path: pctDecode(path), query: [] };
  const query = url
    .slice(q + 1)
    .split("&")
    .filter((p) => p !== "")
    .map((pair): [string, string] => {
      const eq = pair.indexOf("=");
      return eq < 0 ? [pctDecode(pair), ""] : [pctDecode(pair.slice(0, eq)), pctDecode(pair.slice(eq + 1))];
    });
  return { path: pctDecode(path), query };
}

function assoc(list: [string, string][], key: string): string | undefined {
  return list.find(([k]) => k === key)?.[1];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** How the console handler behaves: the pool's settings, read at each CONNECT. */
export interface ConsoleSettings {
  readonly headerDelivery: HeaderDelivery;
  readonly failureReplies: FailureReplies;
  readonly pieceDelayMs: number;
}

export class ConsoleConnect {
  readonly #model: PoolModel;
  readonly #settings: ConsoleSettings;
  readonly #connects: ConnectRecord[];
  readonly #vncPort: number;
  readonly #track: (socket: Duplex) => void;

  constructor(model: PoolModel, settings: ConsoleSettings, connects: ConnectRecord[], vncPort: number, track: (socket: Duplex) => void) {
    this.#model = model;
    this.#settings = settings;
    this.#connects = connects;
    this.#vncPort = vncPort;
    this.#track = track;
  }

  onConnect(hostIndex: number, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#track(socket);
    socket.pause();
    socket.on("error", () => socket.destroy());
    (socket as Socket).setNoDelay?.(true);

    const url = req.url ?? "";
    const headers: Record<string, string> = {};
    let cookieHeader: string | undefined;
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      const k = req.rawHeaders[i]!.toLowerCase();
      const v = req.rawHeaders[i + 1]!;
      headers[k] = v;
      if (k === "cookie") cookieHeader = v; // a later Cookie header replaces an earlier one
    }
    this.#connects.push({
      host: this.#model.host(hostIndex).address,
      requestLine: `${req.method} ${url} HTTP/${req.httpVersion}`,
      headers,
      cookieHeader,
      rawHeaders: [...req.rawHeaders],
    });
    const version = req.httpVersion === "1.0" ? "1.0" : "1.1";

    const { path, query } = parseQuery(url);
    // http_svr routes by longest prefix; a CONNECT nothing handles gets default_callback's 403.
    if (!path.startsWith("/console")) return this.#refuse(socket, 403, version);

    // Xapi_http: session_id from the cookies first, then from the query string.
    const cookies = cookieHeader === undefined ? [] : parseXapiCookies(cookieHeader);
    const sessionRef = assoc(cookies, "session_id") ?? assoc(query, "session_id");
    const authorised = sessionRef !== undefined ? this.#model.sessions.has(sessionRef) : this.#basicAuth(headers.authorization);
    if (!authorised) return this.#refuse(socket, 401, version);

    const cons = this.#consoleOfQuery(query);
    if (!cons) return this.#refuse(socket, 500, version);

    const fault = this.#model.faults.get(cons.vm.sim.uuid);
    if (fault === "no-reply") {
      socket.resume(); // read and drop; never answer
      return;
    }
    if (fault === "eof-after-200") {
      this.#endSoon(socket, Buffer.from(CONNECT_OK, "latin1"));
      return;
    }
    if (fault !== undefined) return this.#refuse(socket, fault, version);

    // check_vm_is_running_here: power_state must be Running (not Paused) and resident here.
    if (cons.vm.sim.powerState !== "Running" || cons.vm.sim.host !== hostIndex) {
      return this.#refuse(socket, 500, version);
    }
    // address_of_console: no VNC endpoint for a text (vt100) or rdp console.
    if (cons.protocol !== "rfb") return this.#refuse(socket, 404, version);

    this.#proxy(socket, head);
  }

  #basicAuth(authorization: string | undefined): boolean {
    if (!authorization?.startsWith("Basic ")) return false;
    const userpass = Buffer.from(authorization.slice(6), "base64").toString("utf8");
    const colon = userpass.indexOf(":");
    return colon >= 0 && userpass.slice(0, colon) === this.#model.username && userpass.slice(colon + 1) === this.#model.password;
  }

  /** console_of_request: ?uuid= names a VM (its first rfb console) or a console; ?ref= likewise by ref. */
  #consoleOfQuery(query: [string, string][]): ConsoleObj | undefined {
    const uuid = assoc(query, "uuid");
    const ref = assoc(query, "ref");
    let vm: VmObj | undefined;
    if (uuid !== undefined) {
      vm = this.#model.vmObjs.find((v) => v.sim.uuid === uuid);
      if (!vm) return [...this.#model.consoles.values()].find((c) => c.uuid === uuid);
    } else if (ref !== undefined) {
      vm = this.#model.vmObjs.find((v) => v.ref === ref);
      if (!vm) return this.#model.consoles.get(ref);
    } else {
      return undefined;
    }
    return vm.consoles.find((c) => c.protocol === "rfb");
  }

  #failureReply(code: 401 | 403 | 404 | 500 | 503, version: string): Buffer {
    const reason = REASONS[code]!;
    if (this.#settings.failureReplies === "minimal") {
      return Buffer.from(`HTTP/1.1 ${code} ${reason}\r\nconnection: close\r\n\r\n`, "latin1");
    }
    if (code === 404) {
      // Http_svr.headers s (Http.http_404_missing ()): headers only, capitalised, always HTTP/1.1.
      return Buffer.from("HTTP/1.1 404 Not Found\r\nConnection: close\r\nCache-Control: no-cache, no-store\r\n\r\n", "latin1");
    }
    let body: string;
    const extra: string[] = [];
    switch (code) {
      case 401:
        body = "<html><body><h1>HTTP 401 unauthorised</h1>Please check your credentials and retry.</body></html>";
        extra.push(`WWW-Authenticate: Basic realm="${CONSOLE_REALM}"`);
        break;
      case 403:
        body = "<html><body><h1>HTTP 403 forbidden</h1>Access to the requested resource is forbidden.</body></html>";
        break;
      case 500:
        body =
          "<html><body><h1>HTTP 500 internal server error</h1>An unexpected error occurred; please wait a while and try again. " +
          "If the problem persists, please contact your support representative.<h1> Additional information </h1>Console.Failure</body></html>";
        break;
      case 503:
        body =
          `<html><body><h1>Connection Limit Exceeded</h1><p>User '${this.#model.username}' is currently connected to this console. ` +
          "No new connections are allowed. Please check the limit_console_sessions config and try again later.</p></body></html>";
        break;
    }
    // Http_svr.response_error_html: content-length first, then content-type, connection, cache-control.
    const head = [
      `HTTP/${version} ${code} ${reason}`,
      `content-length: ${Buffer.byteLength(body)}`,
      "content-type: text/html",
      "connection: close",
      "cache-control: no-cache, no-store",
      ...extra,
      "",
      "",
    ].join("\r\n");
    return Buffer.from(head + body, "latin1");
  }

  #refuse(socket: Duplex, code: 401 | 403 | 404 | 500 | 503, version: string): void {
    this.#endSoon(socket, this.#failureReply(code, version));
  }

  /** Write, then close the connection like xapi (Unix.close after the reply). */
  #endSoon(socket: Duplex, bytes: Buffer): void {
    socket.resume(); // drain whatever the client sends, so the close is a clean FIN
    socket.end(bytes);
    setTimeout(() => socket.destroy(), 2000).unref();
  }

  #proxy(client: Duplex, head: Buffer): void {
    const header = Buffer.from(CONNECT_OK, "latin1");
    const delivery = this.#settings.headerDelivery;
    const vnc = netConnect({ host: "127.0.0.1", port: this.#vncPort });
    this.#track(vnc);
    vnc.setNoDelay(true);
    vnc.on("error", () => {}); // replaced by closeBoth once bridged; the handlers below decide before that
    const closeBoth = (): void => {
      client.destroy();
      vnc.destroy();
    };

    const bridge = (): void => {
      if (client.destroyed) return closeBoth();
      if (head.length > 0) vnc.write(head);
      vnc.removeAllListeners("error");
      vnc.on("error", closeBoth);
      client.on("error", closeBoth);
      client.on("close", () => vnc.destroy());
      vnc.on("close", () => client.end());
      client.pipe(vnc);
      vnc.pipe(client);
    };

    if (delivery === "merged") {
      // Header and the VNC server's first bytes in ONE write (so one TLS record).
      const noData = (): void => {
        if (!client.destroyed && !client.writableEnded) this.#endSoon(client, header);
      };
      vnc.once("error", noData);
      vnc.once("end", noData);
      vnc.once("data", (chunk: Buffer) => {
        vnc.pause();
        vnc.removeListener("error", noData);
        vnc.removeListener("end", noData);
        if (client.destroyed) return closeBoth();
        client.write(Buffer.concat([header, chunk]));
        bridge();
      });
      return;
    }

    // xapi writes the 200 first, then opens the VNC socket: if that fails, the client sees 200 then EOF.
    let vncState: "pending" | "up" | "failed" = "pending";
    let headerSent = false;
    const maybeBridge = (): void => {
      if (!headerSent || client.destroyed) return;
      if (vncState === "up") bridge();
      else if (vncState === "failed") this.#endSoon(client, Buffer.alloc(0));
    };
    vnc.once("connect", () => {
      vncState = "up";
      maybeBridge();
    });
    vnc.once("error", () => {
      vncState = "failed";
      vnc.destroy();
      maybeBridge();
    });
    void this.#sendHeader(client, header, delivery).then(() => {
      headerSent = true;
      maybeBridge();
    });
  }

  async #sendHeader(client: Duplex, header: Buffer, delivery: Exclude<HeaderDelivery, "merged">): Promise<void> {
    if (delivery === "whole") {
      client.write(header);
      return;
    }
    const pieces: Buffer[] = [];
    if (delivery === "bytewise") {
      for (let i = 0; i < header.length; i++) pieces.push(header.subarray(i, i + 1));
    } else {
      const at = Math.max(0, Math.min(header.length, Math.floor(delivery.splitAt)));
      pieces.push(header.subarray(0, at), header.subarray(at));
    }
    let first = true;
    for (const piece of pieces) {
      if (piece.length === 0) continue;
      if (!first) await sleep(this.#settings.pieceDelayMs);
      first = false;
      if (client.destroyed) return;
      client.write(piece);
    }
  }

  // -------------------------------------------------------------------------------------------
  // servers
}
