/**
 * TLS certificates for the simulated hosts, made with the `openssl` CLI.
 * - "self-signed": one self-signed certificate per host (what XenServer / XCP-ng ship by default),
 *   CN and subjectAltName = the host's IP address.
 * - "ca": one simulator CA, and every host certificate signed by it (CN/SAN = the host's IP).
 */
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface HostCertificate {
  certPem: string;
  keyPem: string;
  /** SHA-256, "AB:CD:…" */
  fingerprint: string;
}

export interface CertificateSet {
  hosts: HostCertificate[];
  caPem: string | null;
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

async function openssl(args: string[]): Promise<void> {
  try {
    await run("openssl", args, { timeout: 20_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr || e.message}`);
  }
}

async function readPair(dir: string, name: string): Promise<HostCertificate> {
  const certPem = await readFile(join(dir, `${name}.crt`), "utf8");
  const keyPem = await readFile(join(dir, `${name}.key`), "utf8");
  return { certPem, keyPem, fingerprint: new X509Certificate(certPem).fingerprint256 };
}

export async function makeCertificates(addresses: string[], mode: "self-signed" | "ca"): Promise<CertificateSet> {
  const dir = await mkdtemp(join(tmpdir(), "xapi-sim-certs-"));
  try {
    if (mode === "self-signed") {
      const hosts = await Promise.all(
        addresses.map(async (ip, i) => {
          await openssl([
            "req", "-x509", ...EC, "-days", "2",
            "-subj", `/CN=${ip}`,
            "-addext", `subjectAltName=IP:${ip}`,
            "-keyout", join(dir, `host${i}.key`),
            "-out", join(dir, `host${i}.crt`),
          ]);
          return readPair(dir, `host${i}`);
        }),
      );
      return { hosts, caPem: null };
    }
    await openssl([
      "req", "-x509", ...EC, "-days", "2",
      "-subj", "/CN=XAPI simulator CA",
      "-addext", "basicConstraints=critical,CA:TRUE",
      "-addext", "keyUsage=critical,keyCertSign,cRLSign",
      "-keyout", join(dir, "ca.key"),
      "-out", join(dir, "ca.crt"),
    ]);
    const hosts = await Promise.all(
      addresses.map(async (ip, i) => {
        // OpenSSL 3: `req -x509 -CA` signs the new certificate with the CA directly.
        await openssl([
          "req", "-x509", ...EC, "-days", "2",
          "-CA", join(dir, "ca.crt"), "-CAkey", join(dir, "ca.key"),
          "-subj", `/CN=${ip}`,
          "-addext", `subjectAltName=IP:${ip}`,
          "-addext", "basicConstraints=critical,CA:FALSE",
          "-addext", "extendedKeyUsage=serverAuth",
          "-keyout", join(dir, `host${i}.key`),
          "-out", join(dir, `host${i}.crt`),
        ]);
        return readPair(dir, `host${i}`);
      }),
    );
    const caPem = await readFile(join(dir, "ca.crt"), "utf8");
    return { hosts, caPem };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
