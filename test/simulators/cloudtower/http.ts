/**
 * What the CloudTower simulator's servers share: self-signed certificates, listening on 443,
 * JSON bodies in and out, CloudTower's REST error body, refusing a WebSocket upgrade.
 */
import { execFile } from "node:child_process";
import { randomUUID, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from "node:http";
import type { Server } from "node:https";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);
const MAX_BODY = 1 << 20;

export interface Certificate {
  key: string;
  cert: string;
  fingerprint: string;
}

export async function selfSigned(dir: string, ip: string): Promise<Certificate> {
  const keyPath = join(dir, `${ip}.key`);
  const certPath = join(dir, `${ip}.crt`);
  await execFileAsync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
    "-subj", `/CN=${ip}`, "-addext", `subjectAltName=IP:${ip}`, "-keyout", keyPath, "-out", certPath,
  ]);
  const [key, cert] = await Promise.all([readFile(keyPath, "utf8"), readFile(certPath, "utf8")]);
  return { key, cert, fingerprint: new X509Certificate(cert).fingerprint256 };
}

export function listen(server: Server, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(new Error(`CloudTower simulator: cannot listen on ${host}:443: ${err.message}`));
    server.once("error", onError);
    server.listen({ host, port: 443, exclusive: true }, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

/** CloudTower's REST error body (swagger `ErrorBody`: path, status, message, operationName?, props?) plus a `code`. */
export function errorBody(req: IncomingMessage, status: number, message: string, code: string, operationName?: string) {
  const path = new URL(req.url ?? "/", "https://tower.invalid").pathname;
  return { path, status, message, code, ...(operationName ? { operationName } : {}) };
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "x-aoc-request-id": randomUUID(),
  });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

export type JsonResult = { ok: true; value: unknown } | { ok: false; message: string };

export async function readJson(req: IncomingMessage): Promise<JsonResult> {
  const type = req.headers["content-type"] ?? "";
  if (!/^application\/json\b/i.test(type)) {
    req.resume();
    return { ok: false, message: "Content-Type must be application/json" };
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > MAX_BODY) return { ok: false, message: "request body too large" };
    chunks.push(buf);
  }
  try {
    return { ok: true, value: JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown };
  } catch {
    return { ok: false, message: "request body is not valid JSON" };
  }
}

export function refuseUpgrade(socket: Duplex, status: number, reason: string): void {
  const statusText = STATUS_CODES[status] ?? "Error";
  const body = `${status} ${statusText}: ${reason}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${statusText}\r\n` +
      "Content-Type: text/plain; charset=utf-8\r\n" +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      "Connection: close\r\n\r\n" +
      body,
    () => socket.destroy(),
  );
}
