/**
 * The pool simulator's XenAPI: JSON-RPC on `POST /jsonrpc`, XML-RPC on `POST /`, sessions, and the
 * generic class methods (get_all, get_all_records, get_record, get_by_uuid, get_<field>).
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { newRef, type PoolModel } from "./model.ts";
import {
  type CallResult,
  formatJsonRpcResult,
  formatJsonRpcWireError,
  formatXmlRpcResult,
  parseJsonRpcCall,
  parseXmlRpcCall,
} from "./wire.ts";

export interface ApiStats {
  logins: number;
  logouts: number;
  failedLogins: number;
  calls: Record<string, number>;
}

const ok = (value: unknown): CallResult => ({ ok: true, value });
const fail = (...error: string[]): CallResult => ({ ok: false, error });

export class XenApi {
  readonly #model: PoolModel;
  readonly #stats: ApiStats;

  constructor(model: PoolModel, stats: ApiStats) {
    this.#model = model;
    this.#stats = stats;
  }

  /** One HTTP request to a host: an XML-RPC or (unless `jsonRpc` is off) JSON-RPC call, or xapi's 404. */
  async onRequest(hostIndex: number, req: IncomingMessage, res: ServerResponse, jsonRpc: boolean): Promise<void> {
    const path = (req.url ?? "/").split("?")[0];
    const isXml = req.method === "POST" && path === "/";
    const isJson = req.method === "POST" && path === "/jsonrpc" && jsonRpc;
    if (!isXml && !isJson) {
      req.resume();
      const body = "<html><body><h1>HTTP 404 not found</h1>The requested resource was not found.</body></html>";
      res.writeHead(404, "Not Found", {
        "content-type": "text/html",
        connection: "close",
        "cache-control": "no-cache, no-store",
      });
      res.end(body);
      return;
    }
    let body: string;
    try {
      body = await readBody(req, 4 << 20);
    } catch {
      res.destroy();
      return;
    }
    if (isXml) {
      let reply: string;
      try {
        const call = parseXmlRpcCall(body);
        reply = formatXmlRpcResult(this.#call(hostIndex, call.method, call.params));
      } catch (err) {
        reply = formatXmlRpcResult(fail("XMLRPC_UNMARSHAL_FAILURE", (err as Error).message));
      }
      res.writeHead(200, { "content-type": "text/xml", "cache-control": "no-cache, no-store" });
      res.end(reply);
      return;
    }
    let reply: string;
    try {
      const call = parseJsonRpcCall(body);
      reply = formatJsonRpcResult(this.#call(hostIndex, call.method, call.params), call.id, call.v2);
    } catch (err) {
      reply = formatJsonRpcWireError((err as Error).message);
    }
    res.writeHead(200, { "content-type": "application/json", "cache-control": "no-cache, no-store" });
    res.end(reply);
  }

  // -------------------------------------------------------------------------------------------

  #call(hostIndex: number, method: string, params: unknown[]): CallResult {
    this.#stats.calls[method] = (this.#stats.calls[method] ?? 0) + 1;
    // A pool member refuses logins (and, here, every call) with the master's address.
    if (hostIndex !== 0) return fail("HOST_IS_SLAVE", this.#model.host(0).address);

    if (method === "session.login_with_password") {
      // XAPI takes (uname, pwd[, version[, originator]]): old clients send only two.
      if (params.length < 2 || params.length > 4) return fail("MESSAGE_PARAMETER_COUNT_MISMATCH", method, "4", String(params.length));
      const [user, pw] = params;
      if (user !== this.#model.username || pw !== this.#model.password) {
        this.#stats.failedLogins++;
        return fail("SESSION_AUTHENTICATION_FAILED", String(user), "Authentication failure");
      }
      const ref = newRef();
      this.#model.sessions.set(ref, { uuid: randomUUID(), user: this.#model.username });
      this.#stats.logins++;
      return ok(ref);
    }

    const dot = method.indexOf(".");
    const cls = method.slice(0, dot);
    const name = method.slice(dot + 1);
    const handler = dot > 0 ? this.#method(cls, name) : undefined;
    if (!handler) return fail("MESSAGE_METHOD_UNKNOWN", method);
    if (params.length !== handler.arity) {
      return fail("MESSAGE_PARAMETER_COUNT_MISMATCH", method, String(handler.arity), String(params.length));
    }
    const session = params[0];
    if (typeof session !== "string" || !this.#model.sessions.has(session)) return fail("SESSION_INVALID", String(session));
    return handler.run(session, params.slice(1));
  }

  #method(cls: string, name: string): { arity: number; run(session: string, args: unknown[]): CallResult } | undefined {
    if (cls === "session") {
      if (name === "logout") {
        return {
          arity: 1,
          run: (session) => {
            this.#model.sessions.delete(session);
            this.#stats.logouts++;
            return ok(null);
          },
        };
      }
      return undefined;
    }
    if (cls === "host" && name === "get_server_certificate") {
      return {
        arity: 2,
        run: (_s, [ref]) => {
          const h = this.#model.hosts.find((x) => x.ref === ref);
          return h ? ok(h.certPem) : fail("HANDLE_INVALID", "host", String(ref));
        },
      };
    }
    const impl = this.#model.classes[cls];
    if (!impl) return undefined;
    const withRecord = (ref: unknown, f: (r: Record<string, unknown>) => unknown): CallResult => {
      const r = typeof ref === "string" ? impl.record(ref) : undefined;
      return r ? ok(f(r)) : fail("HANDLE_INVALID", cls, String(ref));
    };
    switch (name) {
      case "get_all":
        return { arity: 1, run: () => ok(impl.all()) };
      case "get_all_records":
        return { arity: 1, run: () => ok(Object.fromEntries(impl.all().map((ref) => [ref, impl.record(ref)]))) };
      case "get_record":
        return { arity: 2, run: (_s, [ref]) => withRecord(ref, (r) => r) };
      case "get_by_uuid":
        return {
          arity: 2,
          run: (_s, [uuid]) => {
            const ref = typeof uuid === "string" ? impl.byUuid(uuid) : undefined;
            return ref ? ok(ref) : fail("UUID_INVALID", cls, String(uuid));
          },
        };
    }
    if (name.startsWith("get_")) {
      const field = name.slice(4);
      if (impl.fields.includes(field)) return { arity: 2, run: (_s, [ref]) => withRecord(ref, (r) => r[field]) };
    }
    return undefined;
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.destroy();
        reject(new Error("request body too large"));
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
