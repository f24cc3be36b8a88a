/**
 * One end-to-end test file's own site on the shared edge and desktop (global-setup.ts): the
 * setup every such file needs, registered with vitest's beforeAll/afterAll. It depends on no
 * other file's state: its own site (a name no other file uses), its own connectors, its own
 * browser and foreign page, all stopped after the file.
 *
 *   const site = e2eSite("e2e-share", { lab: () => [{ id: "desk", name: "Desktop", port: site.desktop.port }], browser: true });
 *   it("…", async () => { await site.api.openConsole(site.name, "lab", "desk"); … });
 */
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, inject } from "vitest";
import { ApiClient } from "./api.ts";
import { foreignPage, launchBrowser } from "./browser.ts";
import { labConfig, type RunningConnector, startConnector } from "./connector.ts";
import { type Edge, type EdgeOptions, startEdge } from "./edge.ts";

export type LabVm = { id: string; name: string; port: number };
export type ForeignPage = Awaited<ReturnType<typeof foreignPage>>;

export interface E2eSiteOptions {
  /** A `wrangler dev` edge of the file's own with these options, instead of the shared one (`site.ownEdge`). */
  edge?: EdgeOptions;
  /** The connector's config for the site's token. Without it (or `lab`) no connector is started. */
  connector?: (token: string) => unknown;
  /** Shorthand for `connector`: one plain-VNC hypervisor "lab" with these VMs (`labConfig`). */
  lab?: () => LabVm[];
  /** Start the connector before the tests (default); false: a test starts it (`restartConnector`). */
  startConnector?: boolean;
  /** Wait until the connector's inventory lists a VM before the tests start. */
  waitForVms?: boolean;
  /** Launch Chromium (`site.browser`). */
  browser?: boolean;
  /** An attacker's page on another origin serving this HTML (`site.foreign`). */
  foreign?: () => string;
  /**
   * Run alongside the sign-in, the site's creation and the browser's launch, before the connector
   * starts (whose config may use what it started: a recorder, a simulator).
   */
  prepare?: () => Promise<unknown>;
}

export interface E2eSite {
  readonly name: string;
  /** The shared edge, or the file's own (`options.edge`). */
  readonly edge: { url: string; username: string; password: string };
  /** The file's own edge, when `options.edge` asked for one. */
  readonly ownEdge: Edge;
  readonly desktop: { port: number; width: number; height: number };
  /** Signed in as the edge's built-in administrator. */
  readonly api: ApiClient;
  /** The site's connector token. */
  readonly token: string;
  /** The connector started from the options (the latest, after `restartConnector`). */
  readonly connector: RunningConnector;
  readonly browser: Browser;
  readonly foreign: ForeignPage;
  /** The config the options give for this token (by default the site's own). */
  config(token?: string): unknown;
  /** Starts one more connector (by default with the site's config); it is stopped after the file. */
  startConnector(config?: unknown, options?: Parameters<typeof startConnector>[1]): Promise<RunningConnector>;
  /** Stops the current connector (if still running) and starts a fresh one with the config for `token`. */
  restartConnector(token?: string): Promise<RunningConnector>;
  /** Runs `stop` after the file, once the connectors and the browser have stopped. */
  onTeardown(stop: () => unknown): void;
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`e2eSite: no ${what} (not asked for in the options, or the setup failed)`);
  return value;
}

export function e2eSite(name: string, options: E2eSiteOptions = {}): E2eSite {
  const shared = inject("edge");
  const desktop = inject("desktop");
  let own: Edge | undefined;
  let client: ApiClient | undefined;
  let token: string | undefined;
  let browser: Browser | undefined;
  let foreign: ForeignPage | undefined;
  let current: RunningConnector | undefined;
  const connectors: RunningConnector[] = [];
  const teardowns: (() => unknown)[] = [];

  const configFor = (t: string): unknown => {
    if (options.connector) return options.connector(t);
    if (options.lab) return labConfig(site.edge.url, t, options.lab());
    throw new Error("e2eSite: no connector config in the options");
  };

  const site: E2eSite = {
    name,
    desktop,
    get edge() {
      if (options.edge) return required(own, "edge of its own");
      return shared;
    },
    get ownEdge() {
      return required(own, "edge of its own");
    },
    get api() {
      client ??= new ApiClient(site.edge.url);
      return client;
    },
    get token() {
      return required(token, "token");
    },
    get connector() {
      return required(current, "connector");
    },
    get browser() {
      return required(browser, "browser");
    },
    get foreign() {
      return required(foreign, "foreign page");
    },
    config: (t = site.token) => configFor(t),
    async startConnector(config = configFor(site.token), startOptions) {
      const c = await startConnector(config, startOptions);
      connectors.push(c);
      return c;
    },
    async restartConnector(t = site.token) {
      await current?.stop();
      current = await site.startConnector(configFor(t));
      return current;
    },
    onTeardown(stop) {
      teardowns.push(stop);
    },
  };

  beforeAll(async () => {
    // All settled before failing, so that whatever did start is known to the teardown.
    const started = await Promise.allSettled([
      (async () => {
        if (options.edge) own = await startEdge(options.edge);
        await site.api.signIn(site.edge.username, site.edge.password);
        token = await site.api.createSite(name);
      })(),
      options.browser ? launchBrowser().then((b) => (browser = b)) : undefined,
      options.foreign ? foreignPage(options.foreign).then((f) => (foreign = f)) : undefined,
      options.prepare?.(),
    ]);
    const failed = started.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
    if ((options.connector || options.lab) && options.startConnector !== false) {
      current = await site.startConnector();
      if (options.waitForVms) await site.api.waitForVms(name);
    }
  });

  afterAll(async () => {
    await Promise.allSettled([...connectors.map((c) => c.stop()), browser?.close(), foreign?.close()]);
    await Promise.allSettled(teardowns.map(async (stop) => stop()));
    await own?.stop();
  });

  return site;
}
