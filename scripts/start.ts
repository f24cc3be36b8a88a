/**
 * `npm start`: the demo on the embedded default, built on the test harness (test/harness/). Starts
 * the edge as `npm run serve` runs it (the deployed bundle on one workerd, no dev proxy: the
 * benchmark measures it about twice as fast as `wrangler dev`) on 127.0.0.1:8787 with fresh local
 * Durable Object storage (wrangler.toml's [build] builds the pages), a desktop on Xvnc (installing Debian's packages first when root and they are
 * missing), a simulated XenServer pool in front of it, creates the site "demo", and runs a
 * connector for it. Ctrl-C, or any of its parts exiting, stops everything it started.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ApiClient } from "../test/harness/api.ts";
import { startConnector } from "../test/harness/connector.ts";
import { type Edge, startServedEdge } from "../test/harness/edge.ts";
import { stopAllOnExit } from "../test/harness/processes.ts";
import { startDesktop } from "../test/harness/xvnc.ts";
import { XapiPool } from "../test/simulators/xapi/pool.ts";

const PORT = Number(process.env.PORT ?? 8787);
const root = new URL("..", import.meta.url).pathname;
const work = join(root, ".porthole");
mkdirSync(work, { recursive: true });
const state = mkdtempSync(join(work, "state-"));
// However the demo ends.
process.once("exit", () => rmSync(state, { recursive: true, force: true }));

let pool: XapiPool | null = null;
let edge: Edge | undefined;
const shutdown = stopAllOnExit(() => Promise.allSettled([pool?.stop(), edge?.stop()]));

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
  ensureDesktopPackages();
  const desktop = await startDesktop(1024, 768, { name: "Porthole demo", background: "#1d3557", foreground: "#e63946", clock: true });
  pool = await startPool(desktop.port);
  edge = await startServedEdge({
    port: PORT,
    persistTo: join(state, "edge"),
    password: process.env.PORTHOLE_DEMO_PASSWORD ?? randomBytes(9).toString("base64url"),
    echo: "edge",
  });
  const api = new ApiClient(edge.url);
  await api.signIn(edge.username, edge.password);
  const token = await api.createSite("demo");
  await startConnector(
    {
      edge: edge.url,
      token,
      hypervisors: [
        ...(pool
          ? [{ name: "pool1", type: "xenserver", url: pool.masterUrl, username: "root", password: "secret", tls: { fingerprint: pool.fingerprint(0) } }]
          : []),
        { name: "lab", type: "vnc", vms: [{ id: "desktop", name: "Demo desktop", address: `127.0.0.1:${desktop.port}` }] },
      ],
    },
    { configDir: state, echo: "connector" },
  );
  await api.waitForVms("demo");

  console.log(`
  Porthole demo is running.

    Open      ${edge.url}
    Sign in   ${edge.username} / ${edge.password}

  Then press "Open console" next to a VM: "web-1" and "web-2" are VMs of a simulated XenServer
  pool (on its non-master host), "Demo desktop" is the same desktop over plain VNC.
  Ctrl-C stops everything.
`);
}

main().catch((err) => {
  console.error(`demo failed to start: ${(err as Error).message}`);
  void shutdown(1);
});
