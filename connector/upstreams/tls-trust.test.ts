/**
 * Pinning must work for every certificate, whatever its length: PEM lines are 64 base64 characters
 * (48 DER bytes), and a DER length that is a multiple of 48 once produced a blank line OpenSSL refused.
 */
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, createServer, type Server } from "node:tls";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveTrust, tlsOptions } from "./tls-trust.ts";

const run = promisify(execFile);

/**
 * Self-signed certificates with growing names until one's DER length is a multiple of 48. Ed25519
 * signatures have a fixed length, so the DER grows by exactly 2 bytes per name character (subject
 * and issuer): a multiple of 48 comes within 24 tries, every run.
 */
async function certificateWithDerLengthMultipleOf48(dir: string): Promise<{ cert: string; key: string; derLength: number }> {
  for (let n = 0; n < 48; n++) {
    const crt = join(dir, "c.pem");
    const key = join(dir, "k.pem");
    await run("openssl", [
      "req", "-x509", "-newkey", "ed25519", "-nodes",
      "-keyout", key, "-out", crt, "-days", "2", "-subj", `/CN=host${"x".repeat(n)}`,
    ]);
    const cert = await readFile(crt, "utf8");
    const derLength = new X509Certificate(cert).raw.length;
    if (derLength % 48 === 0) return { cert, key: await readFile(key, "utf8"), derLength };
  }
  throw new Error("no certificate with a DER length that is a multiple of 48 in 48 tries");
}

describe("TLS pinning", () => {
  let dir: string;
  let server: Server;
  let port: number;
  let fingerprint: string;
  let derLength: number;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "porthole-pin-"));
    const made = await certificateWithDerLengthMultipleOf48(dir);
    derLength = made.derLength;
    fingerprint = new X509Certificate(made.cert).fingerprint256;
    server = createServer({ cert: made.cert, key: made.key }, (s) => s.end("hello"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  }, 60_000);

  afterAll(async () => {
    await new Promise((r) => server?.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  it("verifies a pinned server whose certificate DER length is a multiple of 48", async () => {
    expect(derLength % 48).toBe(0);
    const trust = await resolveTrust({ fingerprint }, dir, "127.0.0.1", port);
    expect(trust.mode).toBe("pinned");
    const greeting = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: "127.0.0.1", port, ...tlsOptions(trust, "127.0.0.1") });
      socket.once("error", reject);
      socket.once("data", (d: Buffer) => {
        socket.destroy();
        resolve(d.toString());
      });
    });
    expect(greeting).toBe("hello");
  });
});
