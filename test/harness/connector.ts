/** The real connector (`node connector/main.ts`) with a config written for the test. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { freePort, type Proc, start, waitFor } from "./processes.ts";

export interface RunningConnector {
  proc: Proc;
  configFile: string;
  metricsUrl: string;
  /** The connector's /metrics as numbers. */
  metrics(): Promise<Record<string, number>>;
  ready(): Promise<boolean>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function writeConfig(config: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), "porthole-connector-"));
  const file = join(dir, "connector.yaml");
  writeFileSync(file, stringify(config));
  return file;
}

export function runConnector(args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  return start(process.execPath, ["connector/main.ts", ...args], env);
}

export async function startConnector(config: unknown, { waitReady = true } = {}): Promise<RunningConnector> {
  const configFile = writeConfig(config);
  const port = await freePort();
  const proc = runConnector(["--config", configFile, "--metrics", `127.0.0.1:${port}`, "--grace-period", "1"]);
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
    stop: (signal) => proc.stop(signal),
  };
}
