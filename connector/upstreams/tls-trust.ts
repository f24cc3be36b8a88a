/**
 * How the connector trusts a hypervisor's TLS certificate, per the config's `tls` key:
 * - `{ fingerprint }`: the certificate must have exactly this SHA-256. The connector fetches the
 *   certificate once, checks the fingerprint, then trusts that certificate alone (as its own CA),
 *   so every later connection is verified by OpenSSL during the handshake, before a byte is sent.
 * - `{ ca }`: certificates must chain to this CA and name the host.
 * - `{ insecure: true }`: no verification (an explicit choice).
 * - no `tls`: the system's CAs, with host name checks.
 */
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { type ConnectionOptions, connect } from "node:tls";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import type { TlsPolicy } from "../config.ts";
import { UpstreamError } from "./upstream.ts";

export type TlsTrust =
  | { mode: "pinned"; pem: string; fingerprint: string }
  | { mode: "ca"; ca: string }
  | { mode: "system" }
  | { mode: "insecure" };

export function fingerprintOf(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

/** The certificate a server presents, without trusting it (to compare against a pin). */
export function peerCertificate(host: string, port: number, timeoutMs = 10_000): Promise<{ pem: string; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, servername: isIp(host) ? undefined : host, rejectUnauthorized: false, timeout: timeoutMs });
    socket.once("secureConnect", () => {
      const cert = socket.getPeerCertificate(true);
      socket.destroy();
      if (!cert?.raw) return reject(new Error("the server presented no certificate"));
      // node:crypto writes the PEM (a hand-written encoder once left a blank line when the DER
      // length was a multiple of 48, and OpenSSL then refused the pin).
      resolve({ pem: new X509Certificate(cert.raw).toString(), fingerprint: cert.fingerprint256 });
    });
    socket.once("timeout", () => {
      socket.destroy();
      reject(Object.assign(new Error("TLS handshake timed out"), { code: "ETIMEDOUT" }));
    });
    socket.once("error", reject);
  });
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(":");
}

export class TlsMismatch extends UpstreamError {
  constructor(host: string, seen: string, expected: string) {
    super(
      CloseCode.upstreamFailed,
      `The TLS certificate of ${host} does not match the pinned fingerprint: it presented SHA-256 ${seen}.`,
    );
    this.expected = expected;
    this.seen = seen;
  }
  readonly expected: string;
  readonly seen: string;
}

/** Turns a config policy into a trust the connector can use for every connection to `host`. */
export async function resolveTrust(policy: TlsPolicy | undefined, baseDir: string, host: string, port: number): Promise<TlsTrust> {
  if (!policy) return { mode: "system" };
  if ("insecure" in policy) return { mode: "insecure" };
  if ("ca" in policy) {
    const file = isAbsolute(policy.ca) ? policy.ca : join(baseDir, policy.ca);
    try {
      return { mode: "ca", ca: readFileSync(file, "utf8") };
    } catch (err) {
      throw new UpstreamError(CloseCode.upstreamFailed, `Cannot read the CA file ${file}: ${(err as Error).message}`);
    }
  }
  const expected = policy.fingerprint.toUpperCase();
  const seen = await peerCertificate(host, port);
  if (seen.fingerprint !== expected) throw new TlsMismatch(host, seen.fingerprint, expected);
  return { mode: "pinned", pem: seen.pem, fingerprint: seen.fingerprint };
}

/** Trust a host through a certificate learned from a trusted source (XAPI's host.get_server_certificate). */
export function pinnedTrust(pem: string): TlsTrust {
  return { mode: "pinned", pem, fingerprint: fingerprintOf(pem) };
}

/** Options for tls.connect / https.request that enforce the trust during the handshake. */
export function tlsOptions(trust: TlsTrust, host: string): ConnectionOptions {
  const servername = isIp(host) ? undefined : host;
  switch (trust.mode) {
    case "insecure":
      return { rejectUnauthorized: false, servername };
    case "system":
      return { rejectUnauthorized: true, servername };
    case "ca":
      return { rejectUnauthorized: true, ca: trust.ca, servername };
    case "pinned":
      // The exact certificate is the only trust anchor; its names do not matter (hypervisors' default
      // certificates rarely name the address they are reached at).
      return { rejectUnauthorized: true, ca: trust.pem, servername, checkServerIdentity: () => undefined };
  }
}

/** A person-readable cause for a TLS failure under a given trust. */
export function describeTlsError(err: NodeJS.ErrnoException, host: string, trust: TlsTrust): string | null {
  const code = err.code ?? "";
  if (!/CERT|SELF_SIGNED|ERR_TLS|UNABLE_TO|HOSTNAME|DEPTH_ZERO|ALTNAME/.test(code) && !/certificate/i.test(err.message)) return null;
  switch (trust.mode) {
    case "pinned":
      return `The TLS certificate of ${host} is not the one the connector trusts (${code}). Its certificate may have been replaced: check the pinned fingerprint.`;
    case "ca":
      return `The TLS certificate of ${host} is not signed by the configured CA or does not name the host (${code}).`;
    default:
      return `The TLS certificate of ${host} could not be verified (${code}): pin its fingerprint with tls: { fingerprint: … } or name its CA.`;
  }
}

/** One line for `--check`: how the certificate was verified. */
export function describeTrust(trust: TlsTrust): string {
  switch (trust.mode) {
    case "pinned":
      return `TLS verified (SHA-256 ${trust.fingerprint})`;
    case "insecure":
      return "TLS NOT verified (tls: { insecure: true })";
    case "ca":
      return "TLS verified (configured CA)";
    case "system":
      return "TLS verified (system CAs)";
  }
}
