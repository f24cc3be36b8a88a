/**
 * What the connector sends in HELLO, INVENTORY and REPLY, checked with the very schemas the edge
 * enforces, right before encoding. The edge closes a tunnel whose HELLO or INVENTORY fails its
 * schema, and the connector would redial with the same data forever, so nothing here fails: text
 * that is too long is shortened, VMs that cannot be sent are left out with a warning, an inventory
 * too large for one frame is trimmed, and a hypervisor that still does not validate is replaced by
 * an unreachable entry that says why. Nothing here throws.
 */
import { encodeJson, FrameType } from "../../shared/protocol/frames.ts";
import { MAX_CONTROL_BYTES } from "../../shared/protocol/limits.ts";
import {
  Hello,
  HypervisorInventory,
  HypervisorType,
  Inventory,
  MAX_ERROR_LENGTH,
  MAX_HYPERVISORS,
  MAX_VM_ID_LENGTH,
  MAX_VM_NAME_LENGTH,
  MAX_VMS_PER_HYPERVISOR,
  NAME_PATTERN,
  PowerState,
  TunnelReply,
  type Vm,
} from "../../shared/protocol/messages.ts";
import type { Log } from "../log.ts";

const ELLIPSIS = "…";

/**
 * Cuts `text` to at most `max` UTF-16 code units (what zod's `max` counts), ending in "…", without
 * splitting a surrogate pair (an emoji is never cut in half into an invalid character).
 */
export function shorten(text: string, max: number): string {
  if (text.length <= max) return text;
  let cut = max - ELLIPSIS.length;
  const last = text.charCodeAt(cut - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut--; // a high surrogate whose low half would be cut off
  return text.slice(0, Math.max(0, cut)) + ELLIPSIS;
}

export interface HelloBase {
  protocols: readonly number[];
  software: string;
  hostname: string;
  capabilities: readonly string[];
}

type JsonType = typeof FrameType.hello | typeof FrameType.inventory;

const utf8 = (s: string) => Buffer.byteLength(s, "utf8");

/** The one warning per hypervisor and kind: repeated refreshes of the same inventory stay quiet. */
class Warnings {
  private readonly last = new Map<string, string>();
  private readonly log: Log;

  constructor(log: Log) {
    this.log = log;
  }

  once(key: string, signature: string, fields: Record<string, unknown>, message: string): void {
    if (this.last.get(key) === signature) return;
    if (this.last.size > 4 * MAX_HYPERVISORS) this.last.clear();
    this.last.set(key, signature);
    this.log.warn(fields, message);
  }

  clear(key: string): void {
    this.last.delete(key);
  }
}

export class OutgoingMessages {
  private readonly log: Log;
  private readonly maxPayload: number;
  private readonly warnings: Warnings;

  /** `maxPayload`: the largest HELLO/INVENTORY payload (the frame cap the edge enforces). */
  constructor(log: Log, maxPayload = MAX_CONTROL_BYTES) {
    this.log = log;
    this.maxPayload = maxPayload;
    this.warnings = new Warnings(log);
  }

  /** The HELLO frame. */
  hello(base: HelloBase, hypervisors: readonly HypervisorInventory[]): Uint8Array {
    const fixed = {
      protocols: [...base.protocols],
      software: shorten(base.software, 64),
      hostname: shorten(base.hostname, 255),
      capabilities: [...base.capabilities],
    };
    return this.encode(FrameType.hello, fixed, hypervisors, (p) => Hello.safeParse(p).success);
  }

  /** An INVENTORY frame; `draining` only when the edge accepted the `drain` capability. */
  inventory(hypervisors: readonly HypervisorInventory[], draining?: boolean): Uint8Array {
    const fixed = draining ? { draining: true } : {};
    return this.encode(FrameType.inventory, fixed, hypervisors, (p) => Inventory.safeParse(p).success);
  }

  /** A REPLY payload the edge will accept: too-long text is shortened, anything else becomes an error reply. */
  reply(reply: TunnelReply): TunnelReply {
    const fixed: TunnelReply = reply.ok
      ? reply
      : { ok: false, code: Number.isInteger(reply.code) ? reply.code : 4500, message: shorten(String(reply.message), 1024) };
    if (TunnelReply.safeParse(fixed).success) return fixed;
    this.log.warn({ event: "tunnel.reply_invalid" }, "an answer to the edge did not fit the protocol: sending an error instead");
    return { ok: false, code: 4500, message: "The connector's answer did not fit the protocol (a URL is too long)." };
  }

  // ---- internals -------------------------------------------------------------------------------

  private encode(
    type: JsonType,
    fixed: Record<string, unknown>,
    input: readonly HypervisorInventory[],
    valid: (payload: unknown) => boolean,
  ): Uint8Array {
    try {
      let hypervisors = input;
      if (hypervisors.length > MAX_HYPERVISORS) {
        this.warnings.once(
          "*",
          String(hypervisors.length),
          { event: "inventory.too_many_hypervisors", hypervisors: hypervisors.length, sent: MAX_HYPERVISORS },
          `only the first ${MAX_HYPERVISORS} hypervisors are sent to the edge`,
        );
        hypervisors = hypervisors.slice(0, MAX_HYPERVISORS);
      }
      const cleaned = hypervisors.flatMap((h) => this.clean(h));
      const fitted = this.fit(fixed, cleaned);
      const payload = { ...fixed, hypervisors: fitted };
      if (!valid(payload)) throw new Error("the payload fails the protocol schema");
      return encodeJson(type, 0, payload);
    } catch (err) {
      // Not expected after the steps above; the tunnel must still come up, so say so and send
      // every hypervisor as unreachable rather than nothing the edge would accept.
      this.log.error({ event: "inventory.unsendable", error: (err as Error).message }, "the inventory could not be sent");
      const fallback = input
        .slice(0, MAX_HYPERVISORS)
        .filter((h) => NAME_PATTERN.test(String(h.name)) && HypervisorType.safeParse(h.type).success)
        .map((h) => unreachable(h, "The connector could not send this hypervisor's inventory (see its log)."));
      return encodeJson(type, 0, { ...fixed, hypervisors: fallback });
    }
  }

  /** One hypervisor, with every field within the schema's limits; [] if it cannot be named at all. */
  private clean(h: HypervisorInventory): HypervisorInventory[] {
    const name = String(h.name);
    if (!NAME_PATTERN.test(name) || !HypervisorType.safeParse(h.type).success) {
      this.log.error({ event: "inventory.hypervisor_dropped", hypervisor: shorten(name, 64) }, "a hypervisor with an invalid name or type is not sent");
      return [];
    }
    const vms: Vm[] = [];
    const skipped: string[] = [];
    for (const vm of Array.isArray(h.vms) ? h.vms : []) {
      const id = String(vm?.id ?? "");
      if (id.length === 0 || id.length > MAX_VM_ID_LENGTH) {
        skipped.push(id);
        continue;
      }
      const powerState = PowerState.safeParse(vm.powerState);
      vms.push({ id, name: shorten(String(vm.name ?? ""), MAX_VM_NAME_LENGTH), powerState: powerState.success ? powerState.data : "unknown" });
    }
    if (skipped.length > 0) {
      // An id cannot be shortened: it is what opens the console.
      this.warnings.once(
        `skipped:${name}`,
        skipped.join("\n"),
        { event: "inventory.vm_skipped", hypervisor: name, count: skipped.length, ids: skipped.slice(0, 3).map((id) => shorten(id, 160)) },
        `VMs with an id longer than ${MAX_VM_ID_LENGTH} characters are not listed`,
      );
    } else {
      this.warnings.clear(`skipped:${name}`);
    }
    const out: HypervisorInventory = { name, type: h.type, reachable: h.reachable === true, vms };
    if (h.error !== undefined) out.error = shorten(String(h.error), MAX_ERROR_LENGTH);
    if (h.omitted !== undefined) out.omitted = h.omitted;
    if (HypervisorInventory.safeParse({ ...out, vms: [] }).success) return [out];
    return [unreachable(h, "The connector could not describe this hypervisor within the protocol's limits.")];
  }

  /**
   * Keeps each hypervisor within MAX_VMS_PER_HYPERVISOR and the whole payload within the frame
   * cap. When it must trim, the space is shared fairly (a small hypervisor keeps all its VMs, the
   * large ones split the rest), running VMs are kept first (only they have a console to open),
   * and `omitted` says how many were left out.
   */
  private fit(fixed: Record<string, unknown>, hypervisors: HypervisorInventory[]): HypervisorInventory[] {
    const capped = hypervisors.map((h) => ({ h, keep: Math.min(h.vms.length, MAX_VMS_PER_HYPERVISOR) }));
    const sizes = hypervisors.map((h) => h.vms.map((vm) => utf8(JSON.stringify(vm)) + 1));
    const total = (i: number, n: number) => {
      let sum = 0;
      for (const s of sizes[i]!.slice(0, n)) sum += s;
      return sum;
    };
    // What the payload costs without any VM, with room for an `omitted` count on every hypervisor.
    const overhead = utf8(
      JSON.stringify({ ...fixed, hypervisors: hypervisors.map((h) => ({ ...h, vms: [], omitted: MAX_VMS_PER_HYPERVISOR * 1000 })) }),
    );
    let budget = this.maxPayload - overhead;
    const need = capped.map(({ keep }, i) => (keep === hypervisors[i]!.vms.length ? total(i, keep) : Infinity));
    const fitsAsIs = need.every((n) => n !== Infinity) && need.reduce((a, b) => a + b, 0) <= budget;
    if (fitsAsIs) return hypervisors;

    for (let attempt = 0; attempt < 8; attempt++) {
      const chosen = this.share(hypervisors, sizes, Math.max(0, budget));
      const payloadBytes = utf8(JSON.stringify({ ...fixed, hypervisors: chosen }));
      if (payloadBytes <= this.maxPayload) {
        for (const h of chosen) {
          const original = hypervisors.find((o) => o.name === h.name)!;
          const left = original.vms.length - h.vms.length;
          if (left > 0) {
            this.warnings.once(
              `omitted:${h.name}`,
              // Once per inventory size, not per frame (HELLO and INVENTORY trim slightly differently).
              String(original.vms.length),
              { event: "inventory.trimmed", hypervisor: h.name, vms: original.vms.length, omitted: left },
              "the inventory is too large for one frame: some VMs are not listed at the edge",
            );
          } else {
            this.warnings.clear(`omitted:${h.name}`);
          }
        }
        return chosen;
      }
      budget = Math.floor(budget * 0.9);
    }
    throw new Error("the inventory cannot be trimmed to fit one frame");
  }

  private share(hypervisors: HypervisorInventory[], sizes: number[][], budget: number): HypervisorInventory[] {
    // Water-filling: hypervisors in order of need, each takes at most an equal share of what is left.
    const order = hypervisors.map((_, i) => i).sort((a, b) => sum(sizes[a]!) - sum(sizes[b]!));
    const kept: boolean[][] = hypervisors.map((h) => h.vms.map(() => false));
    let left = budget;
    order.forEach((i, rank) => {
      const h = hypervisors[i]!;
      let share = Math.floor(left / (order.length - rank));
      let count = 0;
      // Running VMs first, then the rest; each group in inventory order.
      const byPriority = h.vms.map((vm, j) => ({ vm, j })).sort((a, b) => rank0(a.vm) - rank0(b.vm) || a.j - b.j);
      for (const { j } of byPriority) {
        if (count >= MAX_VMS_PER_HYPERVISOR || sizes[i]![j]! > share) break;
        share -= sizes[i]![j]!;
        left -= sizes[i]![j]!;
        kept[i]![j] = true;
        count++;
      }
    });
    return hypervisors.map((h, i) => {
      const vms = h.vms.filter((_, j) => kept[i]![j]);
      const omitted = (h.omitted ?? 0) + h.vms.length - vms.length;
      return omitted > 0 ? { ...h, vms, omitted } : { ...h, vms };
    });
  }
}

function sum(values: number[]): number {
  let s = 0;
  for (const v of values) s += v;
  return s;
}

function rank0(vm: Vm): number {
  return vm.powerState === "running" ? 0 : 1;
}

function unreachable(h: HypervisorInventory, why: string): HypervisorInventory {
  return { name: h.name, type: h.type, reachable: false, error: why, vms: [] };
}
