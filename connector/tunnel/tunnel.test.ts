/**
 * The connector's scheduler, with a stand-in socket that records what would go to the edge:
 * fair turns between streams, credit honoured, bounded buffering.
 */
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { encodeCredit, encodeData, encodeJson, FrameType } from "../../shared/protocol/frames.ts";
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import { MAX_DATA_BYTES, MAX_DATA_BYTES_ACCEPTED, MAX_MESSAGE_BYTES, STREAM_WINDOW_BYTES } from "../../shared/protocol/limits.ts";
import { CAPABILITIES, Hello, type HypervisorInventory, Inventory, TunnelReply } from "../../shared/protocol/messages.ts";
import type { Upstream } from "../upstreams/upstream.ts";
import { FakeEdge, welcomedTunnel } from "./fake-edge.ts";


const tick = () => new Promise((r) => setImmediate(r));
const settle = async () => {
  for (let i = 0; i < 20; i++) await tick();
};

interface TunnelTestOptions {
  hypervisors?: HypervisorInventory[];
  /** What the edge accepts in WELCOME; undefined = an edge that predates capabilities. */
  capabilities?: string[];
  lanUrls?: Upstream["lanUrls"];
  /** WELCOME's maxDataBytes; default: an edge that predates larger frames (32 KiB). */
  maxDataBytes?: number;
}

async function tunnelWith(consoles: Map<string, PassThrough>, options: TunnelTestOptions = {}) {
  const ws = new FakeEdge();
  const upstream = {
    name: "lab",
    type: "vnc",
    openConsole: async (vm: string) => consoles.get(vm)!,
    lanUrls: options.lanUrls,
  } as unknown as Upstream;
  const tunnel = welcomedTunnel(ws, [upstream], options);
  await settle();
  return { ws, tunnel };
}

describe("tunnel scheduler", () => {
  it("a keystroke on one console goes out ahead of a bulk console's queued data", async () => {
    const bulk = new PassThrough();
    const keys = new PassThrough();
    const { ws } = await tunnelWith(new Map([["bulk", bulk], ["keys", keys]]));
    ws.deliver(encodeJson(FrameType.open, 1, { hypervisor: "lab", vm: "bulk" }), encodeJson(FrameType.open, 2, { hypervisor: "lab", vm: "keys" }));
    await settle();
    ws.sent = [];
    bulk.write(Buffer.alloc(STREAM_WINDOW_BYTES, 1)); // a full window of bulk data, all at once
    keys.write(Buffer.from("k"));
    await settle();
    const order = ws.sent.flat().filter((f) => f.type === FrameType.data).map((f) => f.stream);
    // Stream 2 has little to send: it goes ahead of stream 1's bulk frames.
    expect(order[0]).toBe(2);
    expect(order.filter((s) => s === 1).length).toBeGreaterThan(0);
    for (const f of ws.sent.flat()) if (f.type === FrameType.data) expect(f.bytes.length).toBeLessThanOrEqual(MAX_DATA_BYTES);
  });

  it("a keystroke goes out in a message of its own, even while a bulk console fills the socket's in-flight limit", async () => {
    const bulk = new PassThrough();
    const bulk2 = new PassThrough();
    const keys = new PassThrough();
    const { ws } = await tunnelWith(new Map([["bulk", bulk], ["bulk2", bulk2], ["keys", keys]]), { maxDataBytes: MAX_DATA_BYTES_ACCEPTED });
    ws.deliver(
      encodeJson(FrameType.open, 1, { hypervisor: "lab", vm: "bulk" }),
      encodeJson(FrameType.open, 3, { hypervisor: "lab", vm: "bulk2" }),
      encodeJson(FrameType.open, 2, { hypervisor: "lab", vm: "keys" }),
    );
    await settle();
    ws.hold = true; // the socket writes nothing: what was handed over stays in flight
    bulk.write(Buffer.alloc(STREAM_WINDOW_BYTES, 1));
    bulk2.write(Buffer.alloc(STREAM_WINDOW_BYTES, 3));
    await settle();
    const before = ws.sent.length;
    expect(ws.sent.flat().filter((f) => f.type === FrameType.data).length).toBeGreaterThan(0);
    keys.write(Buffer.from("k"));
    await settle();
    // Past the in-flight limit, only the keystroke went: alone in its message.
    const after = ws.sent.slice(before);
    expect(after).toHaveLength(1);
    expect(after[0]!.map((f) => f.stream)).toEqual([2]);
    ws.release();
  });

  it("never sends more than the credit, in order, and resumes where it stopped when credit comes back", async () => {
    const source = new PassThrough({ highWaterMark: 16 * 1024 });
    const { ws, tunnel } = await tunnelWith(new Map([["src", source]]));
    ws.deliver(encodeJson(FrameType.open, 7, { hypervisor: "lab", vm: "src" }));
    await settle();
    // Every byte says where it was in the console's output, so order and gaps show.
    const total = 64 * 64 * 1024;
    const output = Buffer.alloc(total);
    for (let i = 0; i < total; i++) output[i] = (i * 7 + (i >> 12)) & 0xff;
    // Push far more than a window; the stream must stop reading its upstream.
    for (let at = 0; at < total; at += 64 * 1024) {
      source.write(output.subarray(at, at + 64 * 1024));
      await tick();
    }
    await settle();
    const frames = () => ws.sent.flat().filter((f) => f.stream === 7);
    const received = () => Buffer.concat(frames().flatMap((f) => (f.type === FrameType.data ? [f.bytes] : [])));
    expect(frames()[0]!.type).toBe(FrameType.openOk);
    expect(received().length).toBe(STREAM_WINDOW_BYTES);
    expect(received().equals(output.subarray(0, STREAM_WINDOW_BYTES))).toBe(true);
    expect(tunnel.bufferedBytes).toBeLessThanOrEqual(STREAM_WINDOW_BYTES);
    // The connector stopped reading: the rest waits in the console's own socket.
    expect(source.writableLength + source.readableLength).toBeGreaterThan(total - 2 * STREAM_WINDOW_BYTES);
    ws.deliver(encodeCredit(7, 128 * 1024));
    await settle();
    expect(received().equals(output.subarray(0, STREAM_WINDOW_BYTES + 128 * 1024))).toBe(true);
  });
});

describe("tunnel messages", () => {
  async function download(maxDataBytes: number, bytes: number) {
    const source = new PassThrough();
    const { ws, tunnel } = await tunnelWith(new Map([["src", source]]), { maxDataBytes });
    ws.deliver(encodeJson(FrameType.open, 4, { hypervisor: "lab", vm: "src" }));
    await settle();
    const output = Buffer.alloc(bytes);
    for (let i = 0; i < bytes; i++) output[i] = (i * 13 + (i >> 10)) & 0xff;
    let credited = STREAM_WINDOW_BYTES;
    ws.on("frame", (f) => {
      // The edge returns credit as the viewer consumes: a quarter window at a time.
      if (f.type === FrameType.data && f.stream === 4) {
        credited += f.bytes.length;
        setImmediate(() => ws.deliver(encodeCredit(4, f.bytes.length)));
      }
    });
    for (let at = 0; at < bytes; at += 64 * 1024) source.write(output.subarray(at, at + 64 * 1024));
    while (credited < bytes + STREAM_WINDOW_BYTES) {
      const before = credited;
      await settle();
      if (credited === before) break;
    }
    const data = ws.frames.filter((f) => f.type === FrameType.data && f.stream === 4) as Extract<typeof ws.frames[number], { bytes: Uint8Array }>[];
    return { ws, tunnel, data, output, received: Buffer.concat(data.map((f) => f.bytes)) };
  }

  it("sends frames as large as the edge's WELCOME allows, and no larger", async () => {
    // An edge that predates larger frames announces 32 KiB: this connector keeps to it.
    const old = await download(MAX_DATA_BYTES, 2 * 1024 * 1024);
    expect(old.received.equals(old.output)).toBe(true);
    expect(Math.max(...old.data.map((f) => f.bytes.length))).toBe(MAX_DATA_BYTES);
    // A current edge accepts 256 KiB: a lone busy stream sends one large frame per message.
    const current = await download(MAX_DATA_BYTES_ACCEPTED, 2 * 1024 * 1024);
    expect(current.received.equals(current.output)).toBe(true);
    expect(Math.max(...current.data.map((f) => f.bytes.length))).toBe(MAX_DATA_BYTES_ACCEPTED);
    expect(current.data.length).toBeLessThan(old.data.length / 4);
  });

  it("reuses a message's buffer only after the socket reported it written, and counts its messages", async () => {
    const { ws, tunnel, received, output } = await download(MAX_DATA_BYTES_ACCEPTED, 8 * 1024 * 1024);
    expect(received.equals(output)).toBe(true);
    expect(ws.reusedTooEarly).toEqual([]);
    // 8 MiB went out in about 32 messages from a handful of buffers.
    expect(ws.sent.length).toBeGreaterThan(30);
    expect(ws.buffers.size).toBeLessThanOrEqual(4);
    // What porthole_connector_messages_sent_total reports: every message the edge received.
    expect(tunnel.messagesSent).toBe(ws.sent.length);
  });

  it("a burst of small messages to a slow socket holds no large buffer each", async () => {
    const consoles = new Map(Array.from({ length: 200 }, (_, i) => [`vm${i}`, new PassThrough()]));
    const { ws } = await tunnelWith(consoles, { maxDataBytes: MAX_DATA_BYTES_ACCEPTED });
    ws.deliver(...Array.from({ length: 200 }, (_, i) => encodeJson(FrameType.open, i + 1, { hypervisor: "lab", vm: `vm${i}` })));
    await settle();
    ws.hold = true;
    // Each console has a byte to send, one loop turn after another: 200 messages in flight.
    for (const socket of consoles.values()) {
      socket.write("x");
      await tick();
    }
    await settle();
    const frames = ws.frames.filter((f) => f.type === FrameType.data);
    expect(frames).toHaveLength(200);
    expect(ws.sent.length).toBeGreaterThan(20);
    // One message buffer (about 257 KiB) at most is held, not one per message.
    expect(ws.peakUnwrittenBytes).toBeLessThan(2 * MAX_DATA_BYTES_ACCEPTED);
    ws.release();
  });

  it("puts a console's CREDIT ahead of another console's queued bulk data", async () => {
    const bulk = new PassThrough();
    const typed: Buffer[] = [];
    const keys = new PassThrough();
    keys.on("data", (b: Buffer) => typed.push(b));
    const { ws } = await tunnelWith(new Map([["bulk", bulk], ["keys", keys]]), { maxDataBytes: MAX_DATA_BYTES_ACCEPTED });
    ws.deliver(encodeJson(FrameType.open, 1, { hypervisor: "lab", vm: "bulk" }), encodeJson(FrameType.open, 2, { hypervisor: "lab", vm: "keys" }));
    await settle();
    ws.sent = [];
    bulk.write(Buffer.alloc(STREAM_WINDOW_BYTES, 1));
    // A quarter window of input to console 2: written upstream, so its credit is due.
    for (let i = 0; i < 4; i++) ws.deliver(encodeData(2, new Uint8Array(32 * 1024)));
    await settle();
    const order = ws.sent.flat().filter((f) => f.type === FrameType.credit || (f.type === FrameType.data && f.stream === 1));
    expect(order[0]).toMatchObject({ type: FrameType.credit, stream: 2, bytes: 128 * 1024 });
  });
});

describe("capabilities and draining", () => {
  const lab: HypervisorInventory = { name: "lab", type: "vnc", reachable: true, vms: [{ id: "a", name: "A", powerState: "running" }] };
  const controlFrames = (ws: FakeEdge, type: number) =>
    ws.sent.flat().flatMap((f) => (f.type === type && "json" in f ? [f.json] : []));

  it("announces its capabilities in HELLO", async () => {
    const { ws } = await tunnelWith(new Map(), { hypervisors: [lab] });
    const [hello] = controlFrames(ws, FrameType.hello);
    expect(Hello.parse(hello).capabilities).toEqual(CAPABILITIES);
  });

  it("drains with its real inventory when the edge accepted drain, and refuses new consoles", async () => {
    const { ws, tunnel } = await tunnelWith(new Map([["a", new PassThrough()]]), { hypervisors: [lab], capabilities: ["drain", "request"] });
    tunnel.drain([lab]);
    await settle();
    const last = Inventory.parse(controlFrames(ws, FrameType.inventory).at(-1));
    expect(last).toEqual({ hypervisors: [lab], draining: true });
    ws.deliver(encodeJson(FrameType.open, 3, { hypervisor: "lab", vm: "a" }));
    await settle();
    const refusal = ws.sent.flat().find((f) => f.stream === 3);
    expect(refusal).toMatchObject({
      type: FrameType.openError,
      code: CloseCode.connectorOffline,
      reason: "The connector is stopping; try again in a moment.",
    });
    // Inventory changes while draining keep the flag.
    tunnel.sendInventory([lab]);
    await settle();
    expect(Inventory.parse(controlFrames(ws, FrameType.inventory).at(-1)).draining).toBe(true);
  });

  it("drains with an empty inventory when the edge predates capabilities", async () => {
    const { ws, tunnel } = await tunnelWith(new Map(), { hypervisors: [lab] });
    tunnel.drain([lab]);
    await settle();
    expect(controlFrames(ws, FrameType.inventory).at(-1)).toEqual({ hypervisors: [] });
  });

  it("sends an inventory over the frame cap trimmed, without throwing, in messages the edge accepts", async () => {
    const { ws, tunnel } = await tunnelWith(new Map());
    const vms = Array.from({ length: 30_000 }, (_, i) => ({ id: `vm-${i}`, name: `${"ñame 🖥️ ".repeat(60)}${i}`, powerState: "running" as const }));
    const big: HypervisorInventory = { name: "lab", type: "xenserver", reachable: true, vms };
    const sizes: number[] = [];
    ws.on("sent", (n: number) => sizes.push(n));
    expect(() => {
      tunnel.sendInventory([big]);
      tunnel.sendInventory([{ ...big, vms: vms.slice(1) }]);
    }).not.toThrow();
    await settle();
    const inventories = controlFrames(ws, FrameType.inventory).map((j) => Inventory.parse(j));
    // Only the latest of two queued inventories goes out.
    expect(inventories).toHaveLength(1);
    expect(inventories[0]!.hypervisors[0]!.vms.length + inventories[0]!.hypervisors[0]!.omitted!).toBe(29_999);
    for (const n of sizes) expect(n).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
  });

  it("answers a REQUEST whose result is too long with an error the edge accepts", async () => {
    const long = `https://10.0.0.1/${"x".repeat(5000)}`;
    const { ws } = await tunnelWith(new Map(), { lanUrls: async () => ({ direct: long, proxied: long }) });
    ws.deliver(encodeJson(FrameType.request, 9, { method: "vncUrls", hypervisor: "lab", vm: "a" }));
    await settle();
    const [reply] = controlFrames(ws, FrameType.reply);
    expect(TunnelReply.parse(reply)).toMatchObject({ ok: false });
  });
});
