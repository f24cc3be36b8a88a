/**
 * The single-file build: built by `npm run build`'s CLI script (scripts/build-cli.ts) into an empty directory
 * (no package.json, no node_modules) and run with the machine's own Node, as on a guest VM.
 */
import { execFile, execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { WebSocketServer } from "ws";
import { stringify } from "yaml";
import { decodeMessage, FrameType } from "../../shared/protocol/frames.ts";
import { startFakeVnc } from "../../test/harness/fake-vnc.ts";
import { freePort, start, waitFor } from "../../test/harness/processes.ts";

const root = new URL("../../", import.meta.url).pathname;
const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
// The distribution's Node (20 on Debian 12/13) is what a guest VM has; fall back to ours if absent.
const systemNode = ["/usr/local/bin/node", "/usr/bin/node"].find(existsSync) ?? process.execPath;

let dir: string;
let bundle: string;
let vnc: Awaited<ReturnType<typeof startFakeVnc>>;

function config(extra: Record<string, unknown> = {}): string {
  const file = join(dir, `c-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(
    file,
    stringify({
      edge: "http://127.0.0.1:9",
      token: "pht1.lab.secret",
      hypervisors: [{ name: "lab", type: "vnc", vms: [{ id: "d", name: "Desktop", address: `127.0.0.1:${vnc.port}` }] }],
      ...extra,
    }),
  );
  return file;
}

/** Asynchronous: the fake VNC server answers from this same process. */
function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(systemNode, [bundle, ...args], { cwd: dir, env: { ...process.env, ...env }, encoding: "utf8" }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === "number" ? err.code : null) : 0, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  // Only the CLI, straight into an empty directory: `npm run build` would also rewrite
  // .build/assets, which a wrangler dev of the end-to-end tests running meanwhile serves (it reloads).
  dir = mkdtempSync(join(tmpdir(), "porthole-bundle-"));
  bundle = join(dir, "porthole.mjs");
  execFileSync(process.execPath, [join(root, "scripts/build-cli.ts"), bundle], { cwd: root, stdio: "pipe" });
  vnc = await startFakeVnc();
}, 60_000);

afterAll(async () => {
  await vnc?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe(`dist/porthole.mjs on ${systemNode} (${execFileSync(systemNode, ["--version"], { encoding: "utf8" }).trim()})`, () => {
  it("prints package.json's version", async () => {
    expect(await run(["--version"])).toMatchObject({ status: 0, stdout: `${version}\n` });
  });

  it("checks a config and reaches its VNC server", async () => {
    const r = await run(["connector", "--config", config(), "--check"]);
    expect(r.stdout).toContain("ok   lab (vnc)");
    expect(r.stdout).toContain("reachable, RFB 003.008");
    expect(r.status).toBe(0);
  });

  it("reports a broken config with the key at fault, exit 2", async () => {
    const r = await run(["connector", "--config", config({ edge: "not a url" }), "--check"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^invalid config .*\.yaml:\n  edge: an http\(s\) or ws\(s\) URL of the edge\n/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it("refuses an unknown command with the usage, exit 2", async () => {
    const r = await run(["listne"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('unknown command "listne"');
    expect(r.stderr).toContain("usage: porthole <command>");
  });

  it.each([
    [["--log-level", "verbose"], {}, "--log-level"],
    [[], { PORTHOLE_LOG_LEVEL: "verbose" }, "PORTHOLE_LOG_LEVEL"],
  ])("refuses an unknown log level (%j %j) listing the valid ones", async (args, env, source) => {
    const r = await run(["connector", "--config", config(), ...args], env);
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe(`${source}: unknown log level "verbose"; use one of trace, debug, info, warn, error, fatal, silent`);
  });

  it("prints a systemd unit that runs this file with this Node and config", async () => {
    const file = config();
    const r = await run(["install", "--config", file, "--print", "--metrics", "127.0.0.1:9300"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`ExecStart=${systemNode} ${bundle} connector --config ${file} --grace-period 30 --metrics 127.0.0.1:9300\n`);
  });

  it("install refuses a broken config or account name, and changes nothing", async () => {
    const units = mkdtempSync(join(tmpdir(), "porthole-units-"));
    onTestFinished(() => rmSync(units, { recursive: true, force: true }));
    const broken = await run(["install", "--config", config({ token: "" }), "--unit-dir", units]);
    expect(broken.status).toBe(2);
    expect(broken.stderr).toMatch(/^invalid config .*\n  token: /);
    const user = await run(["install", "--config", config(), "--user", "root;rm", "--unit-dir", units]);
    expect(user.status).toBe(2);
    expect(user.stderr).toContain('--user: "root;rm" is not a valid account name');
    expect(readdirSync(units)).toEqual([]);
  });

  // Only where installing would fail anyway: on a machine with systemd this would install for real.
  it.skipIf(existsSync("/run/systemd/system"))("install says so on a machine without systemd, and changes nothing", async () => {
    const units = mkdtempSync(join(tmpdir(), "porthole-units-"));
    onTestFinished(() => rmSync(units, { recursive: true, force: true }));
    const file = config();
    chmodSync(file, 0o600);
    const r = await run(["install", "--config", file, "--unit-dir", units]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("this machine does not run systemd: use --print");
    expect(readdirSync(units)).toEqual([]);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it("dials the edge saying its version in HELLO, and serves its metrics", async () => {
    const port = await freePort();
    const wss = new WebSocketServer({ host: "127.0.0.1", port });
    const hello = new Promise<{ software: string; auth: string | undefined }>((resolve) => {
      wss.on("connection", (ws, req) => {
        ws.once("message", (data: Buffer) => {
          const [frame] = decodeMessage(new Uint8Array(data));
          if (frame?.type === FrameType.hello) resolve({ ...(frame.json as { software: string }), auth: req.headers.authorization });
        });
      });
    });
    const metricsPort = await freePort();
    const proc = start(systemNode, [bundle, "connector", "--config", config({ edge: `http://127.0.0.1:${port}` }), "--metrics", `127.0.0.1:${metricsPort}`, "--grace-period", "0"]);
    try {
      const got = await waitFor("HELLO", async () => hello, 20_000, proc);
      expect(got.software).toBe(`porthole-connector/${version}`);
      expect(got.auth).toBe("Bearer pht1.lab.secret");
      const text = await waitFor("metrics", async () => {
        const t = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        return t.includes('porthole_hypervisor_up{hypervisor="lab",type="vnc"} 1') ? t : undefined;
      }, 20_000, proc);
      expect(text).toContain(`porthole_build_info{version="${version}"} 1\n`);
      expect(text).toContain("# TYPE porthole_connector_streams gauge\n");
    } finally {
      expect(await proc.stop()).toBe(0);
      await new Promise((r) => wss.close(r));
    }
  });
});
