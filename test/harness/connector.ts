/** The real connector (`node connector/main.ts`) with a config written for the test. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { stringify } from "yaml";
import { freePort, type Proc, start, type StartOptions, waitFor } from "./processes.ts";

export interface RunningConnector {
  proc: Proc;
  configFile: string;
  metricsUrl: string;
  /** The connector's /metrics as numbers. */
  metrics(): Promise<Record<string, number>>;
  ready(): Promise<boolean>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Writes the config (it holds the site's token: readable by its owner only) into `dir`, by default a fresh one. */
export function writeConfig(config: unknown, dir = mkdtempSync(join(tmpdir(), "porthole-connector-"))): string {
  const file = join(dir, "connector.yaml");
  writeFileSync(file, stringify(config), { mode: 0o600 });
  return file;
}

const MAIN = new URL("../../connector/main.ts", import.meta.url).pathname;

export function runConnector(args: string[], env: NodeJS.ProcessEnv = {}, options: StartOptions = {}): Proc {
  return start(process.execPath, [MAIN, ...args], env, options);
}

export async function startConnector(
  config: unknown,
  { waitReady = true, configDir, echo }: { waitReady?: boolean; configDir?: string; echo?: string } = {},
): Promise<RunningConnector> {
  const configFile = writeConfig(config, configDir);
  // A directory of its own (it holds the site's token) goes when the connector stops; a caller's stays.
  const ownDir = configDir === undefined ? dirname(configFile) : null;
  const port = await freePort();
  const proc = runConnector(["--config", configFile, "--metrics", `127.0.0.1:${port}`, "--grace-period", "1"], {}, { echo });
  const metricsUrl = `http://127.0.0.1:${port}`;
  const ready = async () => (await fetch(`${metricsUrl}/ready`)).ok;
  if (waitReady) await waitFor("connector ready", async () => ((await ready()) ? true : undefined), 30_000, proc);
  return {
    proc,
    configFile,
    metricsUrl,
    ready,
    async metrics() {
      const text = await (await fetch(`${metricsUrl}/metrics`)).text();
      return Object.fromEntries(
        text
          .split("\n")
          .filter((l) => l && !l.startsWith("#"))
          .map((l) => {
            const [k, v] = l.split(" ");
            return [k!, Number(v)];
          }),
      );
    },
    async stop(signal) {
      const code = await proc.stop(signal);
      if (ownDir) rmSync(ownDir, { recursive: true, force: true });
      return code;
    },
  };
}

/** The e2e tests' usual site: one plain-VNC hypervisor named "lab" with these VMs on loopback ports. */
export function labConfig(edge: string, token: string, vms: { id: string; name: string; port: number }[]) {
  return {
    edge,
    token,
    hypervisors: [{ name: "lab", type: "vnc", vms: vms.map(({ id, name, port }) => ({ id, name, address: `127.0.0.1:${port}` })) }],
  };
}
