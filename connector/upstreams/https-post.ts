/**
 * The one HTTPS client of the hypervisor APIs (XenAPI, CloudTower): a POST with the connection's
 * TLS trust, a time limit, and a cap on the reply, so a hostile or broken API can neither hang a
 * call nor grow the connector's memory.
 */
import { type Agent, request } from "node:https";
import { type TlsTrust, tlsOptions } from "./tls-trust.ts";

/** Largest API reply read (a pool's whole VM list fits with room to spare). */
export const MAX_REPLY_BYTES = 64 * 1024 * 1024;
export const CALL_TIMEOUT_MS = 20_000;

export interface PostOptions {
  /** The API's URL: its host, port (default 443) and TLS name. */
  base: URL;
  path: string;
  body: string;
  headers: Record<string, string>;
  trust: TlsTrust;
  agent: Agent;
  /** Names the API in errors, e.g. "XenAPI". */
  what: string;
  /** Reply cap (default MAX_REPLY_BYTES). */
  maxReplyBytes?: number;
}

export function httpsPost(o: PostOptions): Promise<{ status: number; body: string }> {
  const host = o.base.hostname.replace(/^\[|\]$/g, "");
  const cap = o.maxReplyBytes ?? MAX_REPLY_BYTES;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host,
        port: Number(o.base.port || 443),
        path: o.path,
        method: "POST",
        agent: o.agent,
        timeout: CALL_TIMEOUT_MS,
        headers: { ...o.headers, "Content-Length": Buffer.byteLength(o.body) },
        ...tlsOptions(o.trust, host),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > cap) req.destroy(new Error(`${o.what} reply larger than ${cap} bytes`));
          else chunks.push(c);
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(Object.assign(new Error(`${o.what} call timed out`), { code: "ETIMEDOUT" })));
    req.on("error", reject);
    req.end(o.body);
  });
}
