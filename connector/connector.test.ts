/**
 * The connector's dial: what the edge (or Cloudflare Access in front of it) receives on /connect.
 */
import { execFile } from "node:child_process";
import type { IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { decodeMessage, encodeJson, type Frame, FrameType } from "../shared/protocol/frames.ts";
import { MAX_DATA_BYTES, STREAM_WINDOW_BYTES } from "../shared/protocol/limits.ts";
import { CAPABILITIES, type HypervisorInventory } from "../shared/protocol/messages.ts";
import type { ConnectorConfig } from "./config.ts";
import type { Upstream } from "./upstreams/upstream.ts";
import { Connector } from "./connector.ts";

const run = promisify(execFile);

async function dialOnce(config: Omit<ConnectorConfig, "connectUrl">): Promise<IncomingHttpHeaders> {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise((r) => server.once("listening", r));
  const { port } = server.address() as AddressInfo;
  const connector = new Connector({ ...config, connectUrl: `ws://127.0.0.1:${port}/connect` }, [], pino({ level: process.env.DEBUG_LOG ? "debug" : "silent" }));
  try {
    const headers = new Promise<IncomingHttpHeaders>((resolve) => server.once("connection", (_ws, req) => resolve(req.headers)));
    await connector.start();
    return await headers;
  } finally {
    await connector.stop(0);
    await new Promise((r) => server.close(r));
  }
}

describe("connector dial", () => {
  it("sends the Cloudflare Access service token on the /connect upgrade when configured", async () => {
    const headers = await dialOnce({
      token: "pht1.lab.x",
      access: { clientId: "abc.access", clientSecret: "s3cret-value" },
      hypervisors: [],
      baseDir: "/",
    });
    expect(headers.authorization).toBe("Bearer pht1.lab.x");
    expect(headers["cf-access-client-id"]).toBe("abc.access");
    expect(headers["cf-access-client-secret"]).toBe("s3cret-value");
  });

  it("sends no Access headers without a service token", async () => {
    const headers = await dialOnce({ token: "pht1.lab.x", hypervisors: [], baseDir: "/" });
    expect(headers["cf-access-client-id"]).toBeUndefined();
    expect(headers["cf-access-client-secret"]).toBeUndefined();
  });

  it("never logs the Access client secret", async () => {
    const script = `
      import { log } from "./connector/log.ts";
      log.info({ event: "t1", access: { clientId: "id", clientSecret: "s3cret-value" } }, "x");
      log.info({ event: "t2", clientSecret: "s3cret-value", headers: { "cf-access-client-secret": "s3cret-value" } }, "x");
    `;
    const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], { cwd: new URL("..", import.meta.url).pathname });
    expect(stdout).toContain('"event":"t2"');
    expect(stdout).not.toContain("s3cret-value");
  });
});

describe("connector stop", () => {
  const lab: HypervisorInventory = { name: "lab", type: "vnc", reachable: true, vms: [{ id: "a", name: "A", powerState: "unknown" }] };
  const upstream = {
    name: "lab",
    type: "vnc",
    inventory: () => lab,
    onChange: () => {},
    start: async () => {},
    stop: async () => {},
  } as unknown as Upstream;

  /** An edge that welcomes the connector with `capabilities` and records every frame it gets. */
  async function stopAgainst(capabilities: string[] | undefined): Promise<Frame[]> {
    const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise((r) => server.once("listening", r));
    const { port } = server.address() as AddressInfo;
    const frames: Frame[] = [];
    const welcomed = new Promise<void>((resolve) =>
      server.on("connection", (ws) =>
        ws.on("message", (data: Buffer, binary: boolean) => {
          if (!binary) return;
          for (const f of decodeMessage(new Uint8Array(data))) {
            frames.push(f);
            if (f.type !== FrameType.hello) continue;
            const welcome = { protocol: 1, connectorId: "c1", site: "s", windowBytes: STREAM_WINDOW_BYTES, maxDataBytes: MAX_DATA_BYTES, heartbeatMs: 60_000 };
            ws.send(encodeJson(FrameType.welcome, 0, capabilities ? { ...welcome, capabilities } : welcome));
            resolve();
          }
        }),
      ),
    );
    const connector = new Connector(
      { connectUrl: `ws://127.0.0.1:${port}/connect`, token: "t", hypervisors: [], baseDir: "/" },
      [upstream],
      pino({ level: "silent" }),
    );
    await connector.start();
    await welcomed;
    while (!connector.stats().connected) await new Promise((r) => setImmediate(r));
    await connector.stop(0);
    await new Promise((r) => server.close(r));
    return frames;
  }

  it("announces its capabilities, and drains with its real inventory when the edge accepted drain", async () => {
    const frames = await stopAgainst(["drain", "request"]);
    const hello = frames.find((f) => f.type === FrameType.hello);
    expect(hello && "json" in hello && (hello.json as { capabilities: string[] }).capabilities).toEqual(CAPABILITIES);
    const inventory = frames.filter((f) => f.type === FrameType.inventory).at(-1);
    expect(inventory && "json" in inventory && inventory.json).toEqual({ hypervisors: [lab], draining: true });
  });

  it("sends an empty inventory to an edge that predates capabilities", async () => {
    const frames = await stopAgainst(undefined);
    const inventory = frames.filter((f) => f.type === FrameType.inventory).at(-1);
    expect(inventory && "json" in inventory && inventory.json).toEqual({ hypervisors: [] });
  });
});

