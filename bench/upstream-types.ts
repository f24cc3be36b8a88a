/**
 * The connector's CPU per GiB for each kind of upstream console connection, read in isolation:
 * plain TCP (`vnc`), TLS after an HTTP CONNECT (XenServer's console tunnel, the connector's own
 * `openXapiConsole`), and a WebSocket over TLS (CloudTower's websockify, opened as
 * cloudtower.ts does). A child process serves each and streams random bytes after an RFB
 * greeting; this process relays them through a TunnelStream into reused message buffers, the
 * edge's credit returned at once, and counts its own CPU (`process.cpuUsage`). No edge, no tunnel
 * socket: the figure is the upstream side's share of the connector's cost, comparable across
 * kinds and commits, not the whole connector's (that is the benchmark's throughput table).
 *
 *   node bench/upstream-types.ts [--mib 256] [--runs 3]
 */
import { execFileSync, fork } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import WebSocket, { createWebSocketStream } from "ws";
import type { VncHypervisor } from "../connector/config.ts";
import { STREAM_WINDOW_BYTES } from "../shared/protocol/limits.ts";
import type { StreamHost, TunnelStream as Stream } from "../connector/tunnel/stream.ts";
import { TunnelStream } from "../connector/tunnel/stream.ts";
import { openXapiConsole } from "../connector/upstreams/xenserver/console-tunnel.ts";
import type { Duplex } from "node:stream";
import { awaitGreeting } from "../connector/upstreams/upstream.ts";

const BLOCK = 256 * 1024 + 1024;

if (process.argv[2] === "--serve") {
  // The child: three listeners, each streaming `bytes` after the greeting.
  const [{ createServer: tcp }, { createServer: tls }, { WebSocketServer }] = await Promise.all([
    import("node:net"),
    import("node:tls"),
    import("ws"),
  ]);
  const { key, cert, bytes } = JSON.parse(process.argv[3]!) as { key: string; cert: string; bytes: number };
  const chunk = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 2654435761) >>> 24;
  const pump = (write: (b: Buffer) => boolean, drain: (f: () => void) => void, end: () => void) => {
    let sent = 0;
    const go = () => {
      while (sent < bytes) {
        const n = Math.min(chunk.length, bytes - sent);
        sent += n;
        if (!write(n === chunk.length ? chunk : chunk.subarray(0, n))) return drain(go);
      }
      end();
    };
    write(Buffer.from("RFB 003.008\n"));
    go();
  };
  const plain = tcp((s) => pump((b) => s.write(b), (f) => s.once("drain", f), () => s.end()));
  const xapi = tls({ key, cert }, (s) => {
    s.once("data", () => {
      s.write("HTTP/1.1 200 OK\r\n\r\n");
      pump((b) => s.write(b), (f) => s.once("drain", f), () => s.end());
    });
  });
  const https = (await import("node:https")).createServer({ key, cert });
  const wss = new WebSocketServer({ server: https, perMessageDeflate: false });
  wss.on("connection", (ws) => {
    // websockify sends what it read from the VNC server: messages of up to 64 KiB.
    const sock = (ws as unknown as { _socket: import("node:net").Socket })._socket;
    pump(
      (b) => {
        for (let at = 0; at < b.length; at += 64 * 1024) ws.send(b.subarray(at, at + 64 * 1024));
        return sock.writableLength < 1024 * 1024;
      },
      (f) => sock.once("drain", f),
      () => ws.close(),
    );
  });
  for (const s of [plain, xapi, https]) s.listen(0, "127.0.0.1");
  await Promise.all([plain, xapi, https].map((s) => once(s, "listening")));
  const port = (s: { address(): unknown }) => (s.address() as { port: number }).port;
  process.send!({ tcp: port(plain), tls: port(xapi), ws: port(https) });
} else {
  const args = parseArgs({ options: { mib: { type: "string", default: "256" }, runs: { type: "string", default: "3" } } }).values;
  const bytes = Number(args.mib) * 1024 * 1024;
  // A throwaway self-signed pair: the connector side does not verify it (`insecure` trust).
  const dir = mkdtempSync(join(tmpdir(), "porthole-upstream-types-"));
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "k.pem"), "-out", join(dir, "c.pem"), "-days", "1", "-subj", "/CN=localhost"], { stdio: "ignore" });
  const key = readFileSync(join(dir, "k.pem"), "utf8");
  const cert = readFileSync(join(dir, "c.pem"), "utf8");
  rmSync(dir, { recursive: true });
  const child = fork(new URL(import.meta.url).pathname, ["--serve", JSON.stringify({ key, cert, bytes })]);
  const [ports] = (await once(child, "message")) as [{ tcp: number; tls: number; ws: number }];
  const signal = new AbortController().signal;
  const openers: Record<string, () => Promise<Duplex>> = {
    vnc: async () => {
      // As vnc.ts dials (its `dial` is internal): through VncUpstream with one configured VM.
      const { VncUpstream } = await import("../connector/upstreams/vnc.ts");
      const up = new VncUpstream({ name: "b", type: "vnc", vms: [{ id: "v", address: `127.0.0.1:${ports.tcp}` }] } as VncHypervisor);
      return up.openConsole("v", signal);
    },
    xenserver: () =>
      openXapiConsole({ location: `https://127.0.0.1/console?uuid=x`, session: "s", trust: { mode: "insecure" }, signal, pool: "b", port: ports.tls }),
    cloudtower: () =>
      new Promise((resolve) => {
        const ws = new WebSocket(`wss://127.0.0.1:${ports.ws}/`, ["binary"], { rejectUnauthorized: false, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
        ws.once("open", () => resolve(awaitGreeting(createWebSocketStream(ws), { signal })));
      }),
  };
  for (let run = 0; run < Number(args.runs); run++) {
    for (const [kind, open] of Object.entries(openers)) {
      const socket = await open();
      const out = Buffer.allocUnsafe(BLOCK);
      let got = 0;
      let pumping = false;
      let finish!: () => void;
      const finished = new Promise<void>((r) => (finish = r));
      const host: StreamHost = {
        windowBytes: STREAM_WINDOW_BYTES,
        maxDataBytes: 256 * 1024,
        ready(stream: Stream) {
          if (pumping) return;
          pumping = true;
          setImmediate(() => {
            pumping = false;
            for (let n; (n = stream.writeFrame(out, 0, out.length)) > 0; ) {
              got += n;
              stream.onCredit(n);
            }
          });
        },
        sendControl() {},
        finished: () => finish(),
      };
      const stream = new TunnelStream(host, 1, "b", "v");
      const cpu = process.cpuUsage();
      const t0 = performance.now();
      stream.attach(socket);
      await finished;
      const used = process.cpuUsage(cpu);
      const s = (used.user + used.system) / 1e6;
      console.log(
        JSON.stringify({ kind, run, mb_s: Math.round(got / 1e6 / ((performance.now() - t0) / 1000)), cpu_s_per_gib: +((s * 2 ** 30) / got).toFixed(2) }),
      );
    }
  }
  child.kill();
}
