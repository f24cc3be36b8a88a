/**
 * The connector's YAML config (contract), validated once on load. Every message names the key
 * at fault, e.g. `hypervisors[1].tls.fingerprint: …`.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parse as parseYaml, YAMLParseError } from "yaml";
import { z } from "zod";
import { NAME_PATTERN } from "../shared/protocol/messages.ts";

const Name = z.string().regex(NAME_PATTERN, "use 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit");

const Tls = z.union(
  [
    z.strictObject({
      fingerprint: z
        .string()
        .regex(/^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$/, "a SHA-256 fingerprint: 32 hex bytes separated by ':'"),
    }),
    z.strictObject({ ca: z.string().min(1, "the path of a PEM file") }),
    z.strictObject({ insecure: z.literal(true) }),
  ],
  { error: "tls takes one of { fingerprint: \"AB:CD:…\" }, { ca: file.pem } or { insecure: true }" },
);
export type TlsPolicy = z.infer<typeof Tls>;

const Address = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, "host:port, e.g. 10.0.0.9:5901 or [fd00::9]:5901")
  .refine((a) => Number(a.slice(a.lastIndexOf(":") + 1)) <= 65535, "port must be at most 65535");

const VncVm = z.strictObject({
  id: z.string().min(1).max(128),
  name: z.string().max(256).optional(),
  address: Address,
});

/**
 * Console handshakes the connector has in flight at once with one upstream server (VNC address,
 * XenServer host, CloudTower cluster); the rest wait their turn. VNC servers limit unauthenticated
 * connections per client address (TigerVNC: 5) and blacklist addresses that abandon handshakes.
 */
const MaxConcurrentHandshakes = z.number().int().min(1).max(64, "at most 64");

const Vnc = z.strictObject({
  name: Name,
  type: z.literal("vnc"),
  vms: z.array(VncVm).min(1, "list at least one VM"),
  maxConcurrentHandshakes: MaxConcurrentHandshakes.optional(),
});

const credentialed = {
  name: Name,
  url: z.url({ protocol: /^https?$/, error: "an http(s) URL, e.g. https://10.0.0.5" }),
  username: z.string().min(1),
  password: z.string().optional(),
  passwordEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "an environment variable name").optional(),
  tls: Tls.optional(),
  maxConcurrentHandshakes: MaxConcurrentHandshakes.optional(),
};

const Port = z.number().int().min(1).max(65535, "a TCP port, 1-65535");
const XenServer = z.strictObject({
  ...credentialed,
  type: z.literal("xenserver"),
  /** Port of every host's console tunnel (CONNECT /console); XenServer's is 443. */
  consolePort: Port.optional(),
});
const CloudTower = z.strictObject({ ...credentialed, type: z.literal("cloudtower") });

const Hypervisor = z.discriminatedUnion("type", [Vnc, XenServer, CloudTower], {
  error: "type must be vnc, xenserver or cloudtower",
});

const EnvName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "an environment variable name");

/**
 * A Cloudflare Access service token, sent on the /connect upgrade when an Access application
 * covers the edge's hostname. HTTP header values: printable ASCII only.
 */
const HeaderValue = z.string().min(1).max(1024).regex(/^[\x21-\x7e]+$/, "printable ASCII without spaces");
const Access = z.strictObject({
  clientId: HeaderValue.optional(),
  clientSecret: HeaderValue.optional(),
  clientSecretEnv: EnvName.optional(),
});

const ConfigFile = z.strictObject({
  edge: z.url({ protocol: /^(https?|wss?)$/, error: "an http(s) or ws(s) URL of the edge" }).optional(),
  token: z.string().min(1).optional(),
  access: Access.optional(),
  hypervisors: z.array(Hypervisor).min(1, "list at least one hypervisor"),
});

export type VncHypervisor = z.infer<typeof Vnc>;
export type XenServerHypervisor = Omit<z.infer<typeof XenServer>, "password" | "passwordEnv"> & { password: string };
export type CloudTowerHypervisor = Omit<z.infer<typeof CloudTower>, "password" | "passwordEnv"> & { password: string };
export type HypervisorConfig = VncHypervisor | XenServerHypervisor | CloudTowerHypervisor;

export interface ConnectorConfig {
  /** ws(s):// URL of the edge's /connect endpoint. */
  connectUrl: string;
  token: string;
  /** Cloudflare Access service token for the /connect upgrade, when configured. */
  access?: { clientId: string; clientSecret: string };
  hypervisors: HypervisorConfig[];
  /** Folder of the config file: relative paths in it (tls.ca) resolve from here. */
  baseDir: string;
}

export class ConfigError extends Error {}

function where(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (out, key) => (typeof key === "number" ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)),
    "",
  );
}

/** Validates a parsed config; `env` supplies PORTHOLE_EDGE, PORTHOLE_CONNECTOR_TOKEN and passwordEnv. */
export function validateConfig(raw: unknown, env: NodeJS.ProcessEnv, baseDir: string): ConnectorConfig {
  const parsed = ConfigFile.safeParse(raw ?? {});
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => `${where(i.path) || "config"}: ${i.message}`).join("\n"),
    );
  }
  const file = parsed.data;
  const problems: string[] = [];

  const edge = env.PORTHOLE_EDGE || file.edge;
  const token = env.PORTHOLE_CONNECTOR_TOKEN || file.token;
  if (!edge) problems.push("edge: missing (or set PORTHOLE_EDGE)");
  if (!token) problems.push("token: missing (or set PORTHOLE_CONNECTOR_TOKEN)");
  const access = accessToken(file.access, env, problems);

  const seen = new Set<string>();
  const hypervisors: HypervisorConfig[] = [];
  file.hypervisors.forEach((h, i) => {
    if (seen.has(h.name)) problems.push(`hypervisors[${i}].name: ${h.name} is used twice`);
    seen.add(h.name);
    if (h.type === "vnc") {
      const ids = new Set<string>();
      h.vms.forEach((vm, j) => {
        if (ids.has(vm.id)) problems.push(`hypervisors[${i}].vms[${j}].id: ${vm.id} is used twice`);
        ids.add(vm.id);
      });
      hypervisors.push(h);
      return;
    }
    const { password, passwordEnv, ...rest } = h;
    if ((password === undefined) === (passwordEnv === undefined)) {
      problems.push(`hypervisors[${i}]: set exactly one of password and passwordEnv`);
      return;
    }
    const secret = password ?? env[passwordEnv!];
    if (secret === undefined || secret === "") {
      problems.push(`hypervisors[${i}].passwordEnv: environment variable ${passwordEnv} is not set`);
      return;
    }
    hypervisors.push({ ...rest, password: secret } as HypervisorConfig);
  });
  if (problems.length > 0) throw new ConfigError(problems.join("\n"));

  const url = new URL(edge!);
  url.protocol = url.protocol === "https:" || url.protocol === "wss:" ? "wss:" : "ws:";
  url.pathname = url.pathname.replace(/\/?$/, "/connect");
  return { connectUrl: url.toString(), token: token!, ...(access ? { access } : {}), hypervisors, baseDir };
}

/** `access` or PORTHOLE_ACCESS_CLIENT_ID / _SECRET (the environment wins, like the edge token). */
function accessToken(
  file: z.infer<typeof Access> | undefined,
  env: NodeJS.ProcessEnv,
  problems: string[],
): { clientId: string; clientSecret: string } | undefined {
  if (file && file.clientSecret !== undefined && file.clientSecretEnv !== undefined) {
    problems.push("access: set at most one of clientSecret and clientSecretEnv");
    return undefined;
  }
  const fromEnv = file?.clientSecretEnv !== undefined ? env[file.clientSecretEnv] : undefined;
  if (file?.clientSecretEnv !== undefined && !fromEnv) {
    problems.push(`access.clientSecretEnv: environment variable ${file.clientSecretEnv} is not set`);
    return undefined;
  }
  const clientId = env.PORTHOLE_ACCESS_CLIENT_ID || file?.clientId;
  const clientSecret = env.PORTHOLE_ACCESS_CLIENT_SECRET || fromEnv || file?.clientSecret;
  if (!clientId && !clientSecret) return undefined;
  if (!clientId || !clientSecret) {
    problems.push("access: set both clientId and clientSecret (or PORTHOLE_ACCESS_CLIENT_ID and PORTHOLE_ACCESS_CLIENT_SECRET)");
    return undefined;
  }
  const header = HeaderValue.safeParse(clientId).success && HeaderValue.safeParse(clientSecret).success;
  if (!header) {
    problems.push("access: clientId and clientSecret must be printable ASCII without spaces");
    return undefined;
  }
  return { clientId, clientSecret };
}

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): ConnectorConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true });
  } catch (err) {
    if (err instanceof YAMLParseError) throw new ConfigError(`${file}: ${err.message}`);
    throw err;
  }
  return validateConfig(raw, env, dirname(resolve(file)));
}
