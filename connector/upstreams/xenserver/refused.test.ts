/**
 * A XenServer pool or host that refuses the connection is reported as that pool or host refusing
 * it, named, never as "is its VNC server running?" (issue #23, item 11: a person at the console
 * page would look for a VNC server that XenServer does not have).
 */
import pino from "pino";
import { describe, expect, it } from "vitest";
import { freePort } from "../../../test/harness/processes.ts";
import { UpstreamError } from "../upstream.ts";
import { openXapiConsole } from "./console-tunnel.ts";
import { XenServerUpstream } from "./xenserver.ts";

describe("a XenServer that refuses the connection", () => {
  it("the pool master refusing XenAPI: the pool and its address are named", async () => {
    const port = await freePort();
    const pool = new XenServerUpstream(
      { name: "pool1", type: "xenserver", url: `https://127.0.0.1:${port}`, username: "root", password: "x", tls: { insecure: true } },
      process.cwd(),
      pino({ level: "silent" }),
    );
    const report = await pool.check();
    expect(report.ok).toBe(false);
    const line = report.details.at(-1)!;
    expect(line).toMatch(/^XenServer pool pool1 \(127\.0\.0\.1\) refused the connection/);
    expect(line).not.toMatch(/VNC/);
    await pool.stop();
  });

  it("a pool host refusing the console connection: the host and its pool are named", async () => {
    const port = await freePort();
    const err = await openXapiConsole({
      location: "https://127.0.0.1/console?uuid=0",
      session: "OpaqueRef:x",
      trust: { mode: "insecure" },
      signal: new AbortController().signal,
      pool: "pool1",
      port,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    const message = (err as UpstreamError).message;
    expect(message).toMatch(/^XenServer host 127\.0\.0\.1 of pool pool1 refused the console connection/);
    expect(message).not.toMatch(/VNC/);
    expect(Buffer.byteLength(message)).toBeLessThanOrEqual(123);
  });
});
