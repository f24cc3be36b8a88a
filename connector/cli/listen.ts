/**
 * `porthole listen <share-link URL | console pageUrl | wsUrl | edge URL with --token> [--listen host:port]`
 * (and `npm run listen -- …` from a checkout): a local TCP port that a native VNC viewer (TigerVNC,
 * RealVNC, Remmina, macOS Screen Sharing) connects to. Each TCP connection becomes one console
 * through the edge, over a WebSocket that returns credit (porthole.credit.v1) as the TCP socket
 * drains.
 *
 * Memory per connection is bounded: the edge never has more than one stream window
 * (STREAM_WINDOW_BYTES, 512 KiB) of unacknowledged console bytes in flight, and bytes are
 * acknowledged only once the TCP socket has flushed them to the kernel; the viewer's input is
 * paused while more than INPUT_HIGH_WATER bytes wait to go to the edge.
 */
import { createServer, isIP, type Server, type Socket } from "node:net";
import WebSocket from "ws";
import { ApiFailure, apiClient } from "../../shared/api/client.ts";
import { CREDIT_CHUNK_BYTES, CREDIT_SUBPROTOCOL, JOIN_NAME_MAX, MAX_MESSAGE_BYTES, VIEWER_NOTICE_IDLE_WARNING, VIEWER_NOTICE_RECORDED, VIEWER_NOTICE_WATCHING } from "../../shared/protocol/limits.ts";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { NAME_PATTERN } from "../../shared/protocol/messages.ts";
import { consoleSocketUrl, linkSocketUrl } from "../../shared/urls/console.ts";
import { VERSION } from "../version.ts";
import { commandArgs, UsageError } from "./usage.ts";
import { defaultName, LinkGate, LinkGateError } from "./listen-link.ts";
import { hostname, userInfo } from "node:os";
import { createInterface } from "node:readline/promises";

export const LISTEN_USAGE = `usage: porthole listen <url> [--listen host:port] [--pin <code>] [--name <name>] [--token <token> --site <s> --hypervisor <h> --vm <v>]

  <url>                  a share link (https://edge/l/<site>#<secret>), a console's pageUrl or wsUrl
                         (single use: serves one connection), or, with --token, the edge's URL
  --listen host:port     where the VNC viewer connects (default 127.0.0.1:5900); loopback unless
                         you mean otherwise: anyone who reaches the port gets the console
  --pin <code>           a share link's PIN (or env PORTHOLE_PIN); asked on the terminal if missing
  --name <name>          who you are, for a link that asks before each viewer joins (default:
                         your login and this machine's name); each connection then waits to be let in
  --token <token>        an API token (or env PORTHOLE_TOKEN): a fresh console per connection
  --site, --hypervisor, --vm   the console to open with --token`;

/** Viewer input waiting for the edge beyond this pauses reading from the viewer. */
export const INPUT_HIGH_WATER = 256 * 1024;
/** Why a TCP socket that has been ended gets destroyed if the viewer never closes its side. */
const END_GRACE_MS = 5000;

/** Where each connection's console comes from. */
export interface Source {
  /** The edge's http(s) origin. */
  origin: string;
  site: string;
  kind: "link" | "ticket" | "token";
  /** A link's secret, a ticket, or the API token. */
  secret: string;
  hypervisor?: string;
  vm?: string;
}

function badUrl(input: string, why: string): UsageError {
  return new UsageError(`not a Porthole console URL: ${JSON.stringify(input.length > 200 ? `${input.slice(0, 200)}…` : input)}: ${why}\n\n${LISTEN_USAGE}`);
}

function siteName(input: string, raw: string): string {
  let site: string;
  try {
    site = decodeURIComponent(raw);
  } catch {
    throw badUrl(input, "the site name is not valid");
  }
  if (!NAME_PATTERN.test(site)) throw badUrl(input, `"${site}" is not a site name`);
  return site;
}

/**
 * Reads what the person gave: every form shared/urls/console.ts makes, plus the older share-link
 * form /l/<site>/<secret>. Throws UsageError with the reason for anything else.
 */
export function parseSource(input: string, opts: { token?: string; site?: string; hypervisor?: string; vm?: string } = {}): Source {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw badUrl(input, "not a URL");
  }
  const scheme = url.protocol;
  if (!["http:", "https:", "ws:", "wss:"].includes(scheme)) throw badUrl(input, `${scheme} is not http(s) or ws(s)`);
  const origin = `${scheme === "wss:" ? "https:" : scheme === "ws:" ? "http:" : scheme}//${url.host}`;
  if (opts.token !== undefined) {
    if (!opts.site || !opts.hypervisor || !opts.vm) throw new UsageError(`--token needs --site, --hypervisor and --vm\n\n${LISTEN_USAGE}`);
    if (url.pathname !== "/" || url.hash || url.search) throw badUrl(input, "with --token, give the edge's URL (https://edge/)");
    return { origin, site: siteName(input, opts.site), kind: "token", secret: opts.token, hypervisor: opts.hypervisor, vm: opts.vm };
  }
  const path = url.pathname;
  let m: RegExpExecArray | null;
  if (scheme === "http:" || scheme === "https:") {
    if ((m = /^\/l\/([^/]+)\/?$/.exec(path))) {
      const secret = safeDecode(url.hash.slice(1));
      if (!secret) throw badUrl(input, "the link's secret (after #) is missing: copy all of the link");
      return { origin, site: siteName(input, m[1]!), kind: "link", secret };
    }
    if ((m = /^\/l\/([^/]+)\/([^/]+)$/.exec(path))) {
      return { origin, site: siteName(input, m[1]!), kind: "link", secret: safeDecode(m[2]!) };
    }
    if (path === "/console" || path === "/console.html") {
      const params = new URLSearchParams(url.hash.slice(1));
      const site = params.get("site");
      const ticket = params.get("ticket");
      if (!site || !ticket) throw badUrl(input, "the console URL has no site or ticket (after #): copy all of it");
      return { origin, site: siteName(input, encodeURIComponent(site)), kind: "ticket", secret: ticket };
    }
  } else {
    if ((m = /^\/ws\/link\/([^/]+)$/.exec(path))) {
      const secret = url.searchParams.get("link");
      if (!secret) throw badUrl(input, "the link's secret (?link=) is missing");
      return { origin, site: siteName(input, m[1]!), kind: "link", secret };
    }
    if ((m = /^\/ws\/console\/([^/]+)$/.exec(path))) {
      const ticket = url.searchParams.get("ticket");
      if (!ticket) throw badUrl(input, "the console's ticket (?ticket=) is missing");
      return { origin, site: siteName(input, m[1]!), kind: "ticket", secret: ticket };
    }
  }
  throw badUrl(input, "expected a share link (/l/<site>#<secret>), a console (/console#site=…&ticket=…) or a wsUrl (/ws/console/… or /ws/link/…)");
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** host:port, with [v6]:port; port 0 picks a free one. */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || !host || port > 65535) throw new UsageError(`--listen takes host:port (e.g. 127.0.0.1:5900), not ${JSON.stringify(value)}`);
  return { host, port };
}

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || (isIP(host) === 4 && host.startsWith("127."));
}

/** A refusal or a failure the person can act on: printed as is, exit status 1. */
class ListenError extends Error {}

/** The edge's API as this source may call it: with the API token when it is one. */
function edgeApi(source: Source) {
  return apiClient({
    base: source.origin,
    headers: () => ({ "User-Agent": `porthole-listen/${VERSION}`, ...(source.kind === "token" ? { Authorization: `Bearer ${source.secret}` } : {}) }),
    init: () => ({ signal: AbortSignal.timeout(15_000) }),
  });
}

/** A failed call in the person's words: `what` went wrong, because of the edge's own sentence. */
function refused(source: Source, what: string, err: unknown): ListenError {
  if (!(err instanceof ApiFailure)) throw err;
  if (err.status === 0) {
    const fetchError = err.cause as { message?: string; cause?: { code?: string; message?: string } } | undefined;
    const cause = fetchError?.cause;
    return new ListenError(`cannot reach Porthole's edge at ${source.origin}: ${cause?.code ?? cause?.message ?? fetchError?.message}`);
  }
  return new ListenError(`${what}: ${err.fromEdge ? err.message : `the edge answered HTTP ${err.status}`}`);
}

/** Asks on the terminal (stderr, so stdout stays the log), or null when there is no terminal. */
function terminalPrompt(): ((question: string) => Promise<string>) | undefined {
  if (!process.stdin.isTTY) return undefined;
  return async (question) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    try {
      return await rl.question(question);
    } finally {
      rl.close();
    }
  };
}

/**
 * Checks before listening, so a dead link, a wrong PIN or a bad token fails now, not when a viewer
 * connects. A share link's gate (its PIN, its "ask first") serves each connection after.
 */
async function preflight(source: Source, link: { pin?: string; name?: string }): Promise<{ summary: string; gate?: LinkGate }> {
  const api = edgeApi(source);
  if (source.kind === "link") {
    const s = await api
      .call("GET /l/:site/status", { params: { site: source.site }, headers: { "X-Porthole-Link": source.secret } })
      .catch((err: unknown) => {
        throw refused(source, "the share link was refused", err);
      });
    const gate = new LinkGate(api, source.site, source.secret, s, { ...link, prompt: terminalPrompt(), say });
    await gate.prepare().catch((err: unknown) => {
      throw err instanceof LinkGateError ? new ListenError(err.message) : refused(source, "the share link was refused", err);
    });
    return { summary: `share link to ${s.vm ?? "a VM"} on site ${source.site}${s.viewOnly ? ", view only" : ""}${gate.describe()}, until ${s.expiresAt}; every connection reuses it`, gate };
  }
  if (source.kind === "token") {
    await api
      .call("GET /api/sites/:site/vms", { params: { site: source.site } })
      .catch((err: unknown) => {
        throw refused(source, `the edge refused the token for site ${source.site}`, err);
      });
    return { summary: `console of ${source.hypervisor}/${source.vm} on site ${source.site}; a fresh console for every connection` };
  }
  await api.call("GET /healthz").catch((err: unknown) => {
    if (err instanceof ApiFailure && err.status !== 0) throw new ListenError(`Porthole's edge at ${source.origin} is not healthy: HTTP ${err.status}`);
    throw refused(source, "", err);
  });
  return { summary: `console on site ${source.site}: its ticket is single use, so this serves ONE connection (use a share link or --token for more)` };
}

/** The wsUrl for the next connection (a share link's after its gate: a PIN's pass, being let in). */
async function nextSocketUrl(source: Source, gate: LinkGate | undefined, label: string): Promise<string> {
  if (source.kind === "link") {
    const pass = gate
      ? await gate.passFor(label).catch((err: unknown) => {
          throw err instanceof LinkGateError ? new ListenError(err.message) : refused(source, "the share link was refused", err);
        })
      : "";
    return linkSocketUrl(source.origin, source.site, source.secret) + pass;
  }
  if (source.kind === "ticket") return consoleSocketUrl(source.origin, source.site, source.secret);
  const { wsUrl } = await edgeApi(source)
    .call("POST /api/consoles", { body: { site: source.site, hypervisor: source.hypervisor ?? "", vm: source.vm ?? "" } })
    .catch((err: unknown) => {
      throw refused(source, "the edge refused a console", err);
    });
  if (typeof wsUrl !== "string" || !/^wss?:\/\//.test(wsUrl)) throw new ListenError("the edge answered without a console URL");
  return wsUrl;
}

function say(line: string): void {
  process.stdout.write(`porthole listen: ${line}\n`);
}

/** One viewer's TCP connection bridged to one console; `final` hears of a close no retry can undo. */
function bridge(sock: Socket, n: number, source: Source, gate: LinkGate | undefined, final: (why: string) => void): void {
  sock.pause();
  sock.setNoDelay(true);
  sock.on("error", () => {});
  const label = `connection ${n} (${sock.remoteAddress}:${sock.remotePort})`;
  say(`${label}: opening the console`);
  let ws: WebSocket | null = null;
  sock.once("close", () => {
    if (ws && (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING)) ws.close(1000, "viewer disconnected");
  });
  const endSock = () => {
    sock.end();
    setTimeout(() => sock.destroy(), END_GRACE_MS).unref();
  };

  nextSocketUrl(source, gate, label).then(
    (url) => {
      if (sock.destroyed) return;
      const w = new WebSocket(url, [CREDIT_SUBPROTOCOL], {
        headers: { "User-Agent": `porthole-listen/${VERSION}` },
        maxPayload: MAX_MESSAGE_BYTES,
        handshakeTimeout: 20_000,
      });
      ws = w;
      let unacked = 0;
      let inputPaused = false;
      w.on("unexpected-response", (_req, res) => {
        say(`${label}: the edge refused the console: HTTP ${res.statusCode}`);
        res.resume();
        w.terminate();
        sock.destroy();
      });
      w.on("open", () => {
        say(`${label}: console open`);
        sock.resume();
      });
      w.on("message", (data: Buffer, isBinary: boolean) => {
        if (!isBinary) {
          notice(label, data.toString("utf8"));
          return;
        }
        const size = data.length;
        sock.write(data, (err) => {
          // Credit only for bytes the kernel has taken: a viewer that stops reading stops the edge.
          if (err || w.protocol !== CREDIT_SUBPROTOCOL) return;
          unacked += size;
          if (unacked >= CREDIT_CHUNK_BYTES && w.readyState === WebSocket.OPEN) {
            w.send(String(unacked));
            unacked = 0;
          }
        });
      });
      sock.on("data", (chunk: Buffer) => {
        if (w.readyState !== WebSocket.OPEN) return;
        w.send(chunk, { binary: true }, () => {
          if (inputPaused && w.bufferedAmount < INPUT_HIGH_WATER / 2) {
            inputPaused = false;
            sock.resume();
          }
        });
        if (w.bufferedAmount >= INPUT_HIGH_WATER) {
          inputPaused = true;
          sock.pause();
        }
      });
      w.on("close", (code: number, reason: Buffer) => {
        const why = reason.toString("utf8") || closeFallback(code);
        say(`${label}: console closed: ${why} (code ${code})`);
        endSock();
        if (code === CloseCode.gone || code === CloseCode.unauthorized) final(why);
      });
      w.on("error", (err) => {
        say(`${label}: ${err.message.startsWith("Unexpected server response") ? "the edge refused the console" : `cannot reach the edge: ${err.message}`}`);
        sock.destroy();
      });
    },
    (err: unknown) => {
      say(`${label}: ${(err as Error).message}`);
      sock.destroy();
    },
  );
}

function closeFallback(code: number): string {
  if (code === 1006) return "the connection to the edge was lost";
  if (code === 1000 || code === 1005) return "the console ended";
  return "the edge closed the console";
}

/** The edge's text notices (recorded, idle warnings, watching now): printed, never written to the viewer's TCP socket. */
function notice(label: string, text: string): void {
  let msg: { type?: unknown; closesAt?: unknown } = {};
  try {
    msg = JSON.parse(text) as typeof msg;
  } catch {
    // not JSON: printed as it came, cut short
  }
  if (msg.type === VIEWER_NOTICE_RECORDED) {
    say(`${label}: this console is recorded${(msg as { input?: unknown }).input === true ? ", input included" : ""}`);
  } else if (msg.type === VIEWER_NOTICE_WATCHING) {
    // Watching now: who is on this VM's console (names only, bounded like the page's list).
    const w = msg as { people?: { name?: unknown }[]; joined?: unknown; left?: unknown };
    const names = (Array.isArray(w.people) ? w.people : []).slice(0, 50).map((p) => String(p?.name ?? "someone").slice(0, 100));
    const change = typeof w.joined === "string" ? ` (${w.joined.slice(0, 100)} joined)` : typeof w.left === "string" ? ` (${w.left.slice(0, 100)} left)` : "";
    say(`${label}: watching now: ${names.join(", ") || "nobody else"}${change}`);
  } else if (msg.type === VIEWER_NOTICE_IDLE_WARNING && typeof msg.closesAt === "string") {
    say(`${label}: no input for a while: the console closes at ${msg.closesAt} unless you type or move the mouse`);
  } else {
    say(`${label}: the edge says: ${text.slice(0, 500)}`);
  }
}

export async function runListen(argv: string[]): Promise<void> {
  const parsed = commandArgs(
    {
      args: argv,
      allowPositionals: true,
      options: {
        listen: { type: "string", short: "l", default: "127.0.0.1:5900" },
        token: { type: "string" },
        site: { type: "string" },
        hypervisor: { type: "string" },
        vm: { type: "string" },
        pin: { type: "string" },
        name: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    },
    LISTEN_USAGE,
  );
  if (!parsed) return;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError(LISTEN_USAGE);
  if (values.name !== undefined && (values.name.trim() === "" || values.name.length > JOIN_NAME_MAX || /[\u0000-\u001f\u007f]/.test(values.name))) {
    throw new UsageError(`--name: 1 to ${JOIN_NAME_MAX} characters on one line (the people who let you in see it)`);
  }
  const token = values.token ?? (values.site ? process.env.PORTHOLE_TOKEN : undefined);
  const source = parseSource(positionals[0]!, { token, site: values.site, hypervisor: values.hypervisor, vm: values.vm });
  const { host, port } = parseListen(values.listen);

  let summary: string;
  let gate: LinkGate | undefined;
  try {
    const name = values.name ?? defaultName(safeUser(), hostname());
    ({ summary, gate } = await preflight(source, { pin: values.pin ?? process.env.PORTHOLE_PIN, name }));
  } catch (err) {
    if (!(err instanceof ListenError)) throw err;
    process.stderr.write(`porthole listen: ${err.message}\n`);
    // Now, not when fetch's idle keep-alive sockets let the process go.
    process.exit(1);
  }

  if (!isLoopback(host)) {
    process.stderr.write(
      `\n  WARNING: listening on ${host}, not on loopback. Anyone who can reach ${host}:${port} gets this\n` +
        `  console without a password. Use --listen 127.0.0.1:${port} unless you mean it.\n\n`,
    );
  }
  const server: Server = createServer();
  let connections = 0;
  server.on("connection", (sock) => {
    connections++;
    bridge(sock, connections, source, gate, (why) => {
      // A revoked or expired link (or a refused token) will refuse every later connection too.
      if (source.kind === "ticket" || !server.listening) return;
      server.close();
      say(`no longer listening: ${why}`);
    });
    if (source.kind === "ticket") {
      // The ticket is spent on this connection: stop listening, end when the console ends.
      server.close();
      say("the ticket is single use: this was its one connection; no longer listening");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  }).catch((err: NodeJS.ErrnoException) => {
    throw new UsageError(`cannot listen on ${host}:${port}: ${err.code === "EADDRINUSE" ? "the port is in use (try another with --listen)" : err.message}`);
  });
  const addr = server.address() as { address: string; port: number };
  const shown = addr.address.includes(":") ? `[${addr.address}]` : addr.address;
  say(summary);
  say(`listening on ${shown}:${addr.port}; point a VNC viewer at it (e.g. vncviewer ${shown}::${addr.port})`);
  const stop = () => {
    server.close();
    process.exit(0);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

/** The login name, or undefined where the system has none for this uid. */
function safeUser(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER;
  }
}
