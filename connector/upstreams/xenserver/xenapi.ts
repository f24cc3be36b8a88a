/**
 * A small XenAPI client: JSON-RPC (`POST /jsonrpc`), falling back to XML-RPC (`POST /`) on hosts
 * that have no JSON-RPC endpoint; one session reused for every call; `HOST_IS_SLAVE` login
 * redirects; one re-login on `SESSION_INVALID` (or HTTP 401).
 *
 * Written here rather than taken from the `xen-api` package: that package brings some 25
 * dependencies (proxy agents, lodash, jest-diff…) and its own TLS handling, while the connector needs
 * exactly these calls under its own certificate pinning. The XML-RPC codec is Xen Orchestra's own
 * (@vates/xml-rpc), not hand-written.
 */
import { Agent } from "node:https";
import { formatXml } from "@vates/xml/format";
import { parseXml } from "@vates/xml/parse";
import { xmlRpcFormatter } from "@vates/xml-rpc/formatter";
import { xmlRpcParser } from "@vates/xml-rpc/parser";
import { httpsPost } from "../https-post.ts";
import type { TlsTrust } from "../tls-trust.ts";


/** A XenAPI failure: `code` is XAPI's error name (SESSION_INVALID, HOST_IS_SLAVE…). */
export class XenApiError extends Error {
  readonly code: string;
  readonly params: string[];

  constructor(code: string, params: string[]) {
    super(params.length ? `${code} ${params.join(" ")}` : code);
    this.code = code;
    this.params = params;
  }
}

export interface XenApiOptions {
  /** https://host[:port] of the pool master (or any member: the login is redirected). */
  url: string;
  username: string;
  password: string;
  /** Resolves the trust for a host, e.g. checking a pinned fingerprint on first use. */
  trustFor(host: string, port: number): Promise<TlsTrust>;
}

export class XenApi {
  private readonly options: XenApiOptions;
  private base: URL;
  private format: "json" | "xml" = "json";
  private session: string | null = null;
  private loggingIn: Promise<string> | null = null;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 4 });
  private nextId = 1;

  constructor(options: XenApiOptions) {
    this.options = options;
    this.base = new URL(options.url);
  }

  /** The master's host name or address (after any HOST_IS_SLAVE redirect). */
  get masterHost(): string {
    return this.base.hostname;
  }

  get wireFormat(): "json" | "xml" {
    return this.format;
  }

  /** The current session ref, signing in if needed. */
  sessionRef(): Promise<string> {
    if (this.session) return Promise.resolve(this.session);
    this.loggingIn ??= this.login().finally(() => {
      this.loggingIn = null;
    });
    return this.loggingIn;
  }

  /** Drops the session and signs in again (after a 401 on a console, say). */
  async relogin(): Promise<string> {
    this.session = null;
    return this.sessionRef();
  }

  /** Calls `method` with the session prepended; signs in again once if the session expired. */
  async call<T>(method: string, ...args: unknown[]): Promise<T> {
    const session = await this.sessionRef();
    try {
      return (await this.rpc(method, [session, ...args])) as T;
    } catch (err) {
      if (!(err instanceof XenApiError) || err.code !== "SESSION_INVALID") throw err;
      if (this.session === session) this.session = null;
      return (await this.rpc(method, [await this.sessionRef(), ...args])) as T;
    }
  }

  async logout(): Promise<void> {
    const session = this.session;
    this.session = null;
    if (session) await this.rpc("session.logout", [session]).catch(() => {});
    this.agent.destroy();
  }

  private async login(): Promise<string> {
    const params = [this.options.username, this.options.password, "1.0", "porthole-connector"];
    try {
      this.session = (await this.rpc("session.login_with_password", params)) as string;
    } catch (err) {
      if (!(err instanceof XenApiError) || err.code !== "HOST_IS_SLAVE" || !err.params[0]) throw err;
      // A pool member: sign in at the master it names, once.
      const master = err.params[0];
      // Every host of a pool listens on the same port.
      const port = this.base.port ? `:${this.base.port}` : "";
      this.base = new URL(`${this.base.protocol}//${master.includes(":") ? `[${master}]` : master}${port}`);
      this.session = (await this.rpc("session.login_with_password", params)) as string;
    }
    return this.session;
  }

  private async rpc(method: string, params: unknown[]): Promise<unknown> {
    if (this.format === "json") {
      const reply = await this.post("/jsonrpc", "application/json", JSON.stringify({ jsonrpc: "2.0", method, params, id: this.nextId++ }));
      let body: { result?: unknown; error?: unknown } | null = null;
      if (reply.status !== 404) {
        try {
          body = JSON.parse(reply.body);
        } catch {
          body = null;
        }
      }
      if (body === null || typeof body !== "object") {
        // An older host without JSON-RPC: speak XML-RPC from now on.
        this.format = "xml";
        return this.rpc(method, params);
      }
      if (reply.status === 401) throw new XenApiError("SESSION_INVALID", []);
      return jsonResult(body);
    }
    const xml = formatXml(xmlRpcFormatter.format_methodCall({ methodName: method, params }), { indent: 0 });
    const reply = await this.post("/", "text/xml", xml);
    if (reply.status === 401) throw new XenApiError("SESSION_INVALID", []);
    if (reply.status !== 200) throw new Error(`XML-RPC call ${method} answered HTTP ${reply.status}`);
    const parsed = xmlRpcParser.parse(parseXml(reply.body));
    const result = parsed.params?.[0] as { Status?: string; Value?: unknown; ErrorDescription?: string[] } | undefined;
    if (result?.Status === "Success") return result.Value;
    const [code = "UNKNOWN_ERROR", ...rest] = result?.ErrorDescription ?? [];
    throw new XenApiError(String(code), rest.map(String));
  }

  private async post(path: string, contentType: string, body: string): Promise<{ status: number; body: string }> {
    const host = this.base.hostname.replace(/^\[|\]$/g, "");
    const trust = await this.options.trustFor(host, Number(this.base.port || 443));
    return httpsPost({ base: this.base, path, body, headers: { "Content-Type": contentType }, trust, agent: this.agent, what: "XenAPI" });
  }
}

function jsonResult(body: { result?: unknown; error?: unknown }): unknown {
  const error = body.error;
  if (error === undefined || error === null) return body.result;
  // JSON-RPC 2.0: {code, message: "SESSION_INVALID", data: [...]}; v1: ["SESSION_INVALID", ...].
  if (Array.isArray(error)) {
    const [code = "UNKNOWN_ERROR", ...rest] = error;
    throw new XenApiError(String(code), rest.map(String));
  }
  const e = error as { message?: unknown; data?: unknown };
  throw new XenApiError(String(e.message ?? "UNKNOWN_ERROR"), Array.isArray(e.data) ? e.data.map(String) : []);
}
