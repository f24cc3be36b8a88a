/**
 * `npm start`: the demo on the embedded default. Starts `wrangler dev` on 127.0.0.1:8787 with
 * fresh local Durable Object storage (wrangler.toml's [build] builds the pages), a desktop on
 * Xvnc (installing Debian's packages first when root and they are missing), creates the site
 * "demo", and runs a connector for it. Ctrl-C stops everything it started.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { stringify } from "yaml";
import { XapiPool } from "../test/simulators/xapi/pool.ts";

const PORT = Number(process.env.PORT ?? 8787);
const EDGE = `http://127.0.0.1:${PORT}`;
const root = new URL("..", import.meta.url).pathname;
const work = join(root, ".porthole");
mkdirSync(work, { recursive: true });
const state = mkdtempSync(join(work, "state-"));
const children: ChildProcess[] = [];

function run(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}, quiet = false): ChildProcess {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
  children.push(child);
  const prefix = `[${name}] `;
  const echo = (d: Buffer) => {
    if (!quiet) process.stdout.write(d.toString().replace(/^(?=.)/gm, prefix));
  };
  child.stdout!.on("data", echo);
  child.stderr!.on("data", echo);
  child.on("exit", (code, signal) => {
    if (!stopping) {
      console.error(`${prefix}exited (${signal ?? code}); stopping the demo.`);
      stop(1);
    }
  });
  return child;
}

let stopping = false;
const stopHooks: (() => Promise<void>)[] = [];
function stop(code = 0): void {
  if (stopping) return;
  stopping = true;
  for (const hook of stopHooks) void hook();
  for (const c of children) {
    try {
      process.kill(-c.pid!, "SIGTERM");
    } catch {}
  }
  setTimeout(() => {
    for (const c of children) {
      try {
        process.kill(-c.pid!, "SIGKILL");
      } catch {}
    }
    process.exit(code);
  }, 1500).unref();
  process.exitCode = code;
}
// However the demo ends (the timer above is unref'd: it may exit sooner, once its children are gone).
process.once("exit", () => rmSync(state, { recursive: true, force: true }));
process.on("SIGINT", () => stop());
process.on("SIGTERM", () => stop());

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch {}
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * The desktop is Debian's Xvnc with xlogo and a ticking xclock. On a fresh machine the packages are
 * installed here when running as root (as `npm test` and CI do): the demo then shows the same real
 * VNC server the tests use, rather than a stand-in of our own. Not root: it says what to run.
 */
function ensureDesktopPackages(): void {
  const r = spawnSync(join(root, "scripts/system-packages.sh"), ["tigervnc-standalone-server", "x11-apps"], { stdio: "inherit" });
  if (r.status !== 0) {
    console.error("The demo needs a VNC desktop to show: install the packages above and run `npm start` again.");
    process.exit(1);
  }
}

async function startDesktop(): Promise<number> {
  const vncPort = await freePort();
  let display = 77;
  while (existsSync(`/tmp/.X11-unix/X${display}`) || existsSync(`/tmp/.X${display}-lock`)) display++;
  run("xvnc", "Xvnc", [`:${display}`, "-geometry", "1024x768", "-depth", "24", "-SecurityTypes", "None",
    "-rfbport", String(vncPort), "-localhost=1", "-AlwaysShared", "-desktop", "Porthole demo"], {}, true);
  await new Promise((r) => setTimeout(r, 800));
  run("xlogo", "xlogo", ["-display", `:${display}`, "-geometry", "1024x768+0+0", "-bg", "#1d3557", "-fg", "#e63946"], {}, true);
  run("xclock", "xclock", ["-display", `:${display}`, "-geometry", "220x220+790+10", "-update", "1"], {}, true);
  return vncPort;
}

/** A simulated XenServer pool in front of the desktop (needs root for port 443 on loopback addresses). */
async function startPool(vncPort: number): Promise<XapiPool | null> {
  if (process.getuid?.() !== 0) {
    console.log("!! Not root: the demo skips its simulated XenServer pool (it listens on port 443) and shows the plain VNC desktop.");
    return null;
  }
  try {
    return await XapiPool.start({ hosts: ["127.0.10.1", "127.0.10.2"], vncPort });
  } catch (err) {
    console.log(`!! The simulated XenServer pool did not start (${(err as Error).message}): the demo shows the plain VNC desktop only.`);
    return null;
  }
}

async function main(): Promise<void> {
  const username = "admin";
  const password = process.env.PORTHOLE_DEMO_PASSWORD ?? randomBytes(9).toString("base64url");
  ensureDesktopPackages();
  const vncPort = await startDesktop();
  const pool = await startPool(vncPort);
  if (pool) stopHooks.push(() => pool.stop());

  run("edge", process.execPath, [
    join(root, "node_modules/wrangler/bin/wrangler.js"), "dev",
    "--ip", "127.0.0.1", "--port", String(PORT), "--persist-to", state,
    "--var", `ADMIN_USERNAME:${username}`, "--var", `ADMIN_PASSWORD:${password}`,
    "--show-interactive-dev-session=false",
    // wrangler's local observability collector traces every Durable Object event into SQLite:
    // it halves the relay's throughput (docs/benchmarks.md) and production has no such thing.
  ], { CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", X_LOCAL_OBSERVABILITY: "false" });
  await until("the edge", async () => ((await fetch(`${EDGE}/healthz`)).ok ? true : undefined), 120_000);

  const signIn = await fetch(`${EDGE}/api/session`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  const cookie = signIn.headers.get("set-cookie")!.split(";")[0]!;
  const site = await fetch(`${EDGE}/api/sites`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Cookie: cookie },
    body: JSON.stringify({ name: "demo" }),
  });
  const { connectorToken } = (await site.json()) as { connectorToken: string };
  const configFile = join(work, "connector.yaml");
  writeFileSync(
    configFile,
    stringify({
      edge: EDGE,
      token: connectorToken,
      hypervisors: [
        ...(pool
          ? [{ name: "pool1", type: "xenserver", url: pool.masterUrl, username: "root", password: "secret", tls: { fingerprint: pool.fingerprint(0) } }]
          : []),
        { name: "lab", type: "vnc", vms: [{ id: "desktop", name: "Demo desktop", address: `127.0.0.1:${vncPort}` }] },
      ],
    }),
    { mode: 0o600 },
  );
  run("connector", process.execPath, [join(root, "connector/main.ts"), "--config", configFile, "--grace-period", "1"]);
  await until("the connector", async () => {
    const vms = await fetch(`${EDGE}/api/sites/demo/vms`, { headers: { Cookie: cookie } });
    return ((await vms.json()) as unknown[]).length > 0 ? true : undefined;
  });

  console.log(`
  Porthole demo is running.

    Open      ${EDGE}
    Sign in   ${username} / ${password}

  Then press "Open console" next to a VM: "web-1" and "web-2" are VMs of a simulated XenServer
  pool (on its non-master host), "Demo desktop" is the same desktop over plain VNC.
  Ctrl-C stops everything.
`);
}

main().catch((err) => {
  console.error(`demo failed to start: ${(err as Error).message}`);
  stop(1);
});
