/**
 * The connector must never send what the edge's schemas refuse (the edge would close the tunnel
 * and the connector redial with the same data forever), nor throw on odd inventories.
 */
import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { decodeMessage } from "../../shared/protocol/frames.ts";
import { MAX_CONTROL_BYTES, MAX_MESSAGE_BYTES, PROTOCOL_VERSIONS } from "../../shared/protocol/limits.ts";
import {
  CAPABILITIES,
  Hello,
  type HypervisorInventory,
  Inventory,
  MAX_ERROR_LENGTH,
  MAX_VM_NAME_LENGTH,
  MAX_VMS_PER_HYPERVISOR,
} from "../../shared/protocol/messages.ts";
import { OutgoingMessages, shorten } from "./outgoing.ts";

function capturingLog() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split("\n")) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { log: pino({ level: "info" }, sink), lines };
}

/** No lone surrogate (String.prototype.isWellFormed, without needing the ES2024 lib). */
const wellFormed = (s: string) => !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);

const flush = () => new Promise((r) => setImmediate(r));

function payloadOf(frame: Uint8Array): unknown {
  const [decoded] = decodeMessage(frame);
  if (!decoded || !("json" in decoded)) throw new Error("not a JSON frame");
  return decoded.json;
}

const helloBase = { protocols: PROTOCOL_VERSIONS, software: "test", hostname: "host", capabilities: CAPABILITIES };

/** XenServer's name_label has no limit: long, non-ASCII, emoji. */
const xenName = (i: number) => `Produktionsserver für Ärzte — Übersicht ${i} ${"🖥️ 数据库 ".repeat(60)}`;

describe("shorten", () => {
  it("cuts to the limit in UTF-16 units, ends in …, never splits a surrogate pair", () => {
    for (let pad = 0; pad < 4; pad++) {
      const text = `${"a".repeat(pad)}${"😀".repeat(300)}`;
      const out = shorten(text, 256);
      expect(out.length).toBeLessThanOrEqual(256);
      expect(out.endsWith("…")).toBe(true);
      expect(wellFormed(out)).toBe(true);
    }
    expect(shorten("short", 256)).toBe("short");
  });
});

describe("outgoing HELLO and INVENTORY", () => {
  it("shortens 400+ character names and long errors, skips VMs whose id is too long, and passes the edge's schema", async () => {
    const { log, lines } = capturingLog();
    const out = new OutgoingMessages(log);
    const pool: HypervisorInventory = {
      name: "pool",
      type: "xenserver",
      reachable: false,
      error: `XenServer pool pool failed: ${"la connexion a été refusée 🚫 ".repeat(100)}`,
      vms: [
        { id: "3f1c0f6e-0000-4000-8000-000000000001", name: xenName(1), powerState: "running" },
        { id: "x".repeat(200), name: "id too long", powerState: "running" },
        { id: "3f1c0f6e-0000-4000-8000-000000000002", name: "plain", powerState: "halted" },
      ],
    };
    expect(xenName(1).length).toBeGreaterThan(400);
    const hello = Hello.parse(payloadOf(out.hello(helloBase, [pool])));
    const [sent] = hello.hypervisors;
    expect(sent!.vms.map((v) => v.id)).toEqual(["3f1c0f6e-0000-4000-8000-000000000001", "3f1c0f6e-0000-4000-8000-000000000002"]);
    expect(sent!.vms[0]!.name.length).toBe(MAX_VM_NAME_LENGTH);
    expect(sent!.vms[0]!.name.endsWith("…")).toBe(true);
    expect(wellFormed(sent!.vms[0]!.name)).toBe(true);
    expect(sent!.error!.length).toBeLessThanOrEqual(MAX_ERROR_LENGTH);
    expect(sent!.error!.startsWith("XenServer pool pool failed")).toBe(true);
    expect(hello.capabilities).toEqual(CAPABILITIES);
    await flush();
    expect(lines.filter((l) => l.event === "inventory.vm_skipped")).toMatchObject([{ hypervisor: "pool", count: 1 }]);
    // The same inventory again: no second warning.
    out.inventory([pool]);
    await flush();
    expect(lines.filter((l) => l.event === "inventory.vm_skipped")).toHaveLength(1);
  });

  it("trims 30,000 VMs with long names to one frame, fairly, with `omitted` and one warning", async () => {
    const { log, lines } = capturingLog();
    const out = new OutgoingMessages(log);
    const big: HypervisorInventory = {
      name: "big",
      type: "xenserver",
      reachable: true,
      vms: Array.from({ length: 30_000 }, (_, i) => ({
        id: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
        name: xenName(i),
        powerState: i % 2 === 0 ? ("halted" as const) : ("running" as const),
      })),
    };
    const small: HypervisorInventory = {
      name: "small",
      type: "vnc",
      reachable: true,
      vms: [{ id: "desk", name: "Desk", powerState: "unknown" }],
    };
    for (const frame of [out.hello(helloBase, [big, small]), out.inventory([big, small])]) {
      expect(frame.length).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
      const payload = Inventory.parse(payloadOf(frame));
      const [b, s] = payload.hypervisors;
      expect(s).toEqual(small);
      expect(b!.vms.length).toBeGreaterThan(1000);
      expect(b!.vms.length).toBeLessThanOrEqual(MAX_VMS_PER_HYPERVISOR);
      expect(b!.vms.length + b!.omitted!).toBe(30_000);
      // Running VMs (the ones with a console) are kept first.
      expect(b!.vms.every((v) => v.powerState === "running")).toBe(true);
      expect(new TextEncoder().encode(JSON.stringify(payload)).length).toBeLessThanOrEqual(MAX_CONTROL_BYTES);
    }
    await flush();
    expect(lines.filter((l) => l.event === "inventory.trimmed")).toMatchObject([{ level: 40, hypervisor: "big", vms: 30_000 }]);
  });

  it("caps a hypervisor at MAX_VMS_PER_HYPERVISOR even when the frame has room", () => {
    const { log } = capturingLog();
    const out = new OutgoingMessages(log);
    const many: HypervisorInventory = {
      name: "many",
      type: "vnc",
      reachable: true,
      vms: Array.from({ length: MAX_VMS_PER_HYPERVISOR + 5 }, (_, i) => ({ id: `${i}`, name: "", powerState: "unknown" as const })),
    };
    const [sent] = Inventory.parse(payloadOf(out.inventory([many]))).hypervisors;
    expect(sent!.vms).toHaveLength(MAX_VMS_PER_HYPERVISOR);
    expect(sent!.omitted).toBe(5);
  });

  it("replaces a hypervisor that still fails the schema with an unreachable entry, keeping the others", () => {
    const { log } = capturingLog();
    const out = new OutgoingMessages(log);
    const good: HypervisorInventory = { name: "good", type: "vnc", reachable: true, vms: [{ id: "a", name: "A", powerState: "running" }] };
    const bad = { name: "bad", type: "cloudtower", reachable: true, vms: [], omitted: -1 } as HypervisorInventory;
    const payload = Inventory.parse(payloadOf(out.inventory([bad, good])));
    expect(payload.hypervisors).toEqual([
      { name: "bad", type: "cloudtower", reachable: false, error: expect.stringMatching(/limits/), vms: [] },
      good,
    ]);
  });
});
