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
import type { ConnectorConfig } from "./config.ts";
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
