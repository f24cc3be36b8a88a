/**
 * The tunnel's handshake, edge side: read a connector's HELLO (versions, capabilities, the first
 * inventory), answer WELCOME; and read INVENTORY frames.
 *
 * Inventories are read leniently, one hypervisor at a time: an entry that does not validate (an
 * older connector with a 400-character VM name, say) is shortened or reported as unreachable
 * instead of closing the tunnel, because a closed tunnel takes every console of the site down and
 * the connector would redial with the same data forever.
 */
import { ProtocolError, encodeJson, FrameType } from "../../shared/protocol/frames.ts";
import {
  HEARTBEAT_INTERVAL_MS,
  MAX_DATA_BYTES_ACCEPTED,
  PROTOCOL_VERSIONS,
  STREAM_WINDOW_BYTES,
} from "../../shared/protocol/limits.ts";
import {
  CAPABILITIES,
  Hello,
  HypervisorInventory,
  HypervisorType,
  MAX_ERROR_LENGTH,
  MAX_HYPERVISORS,
  MAX_VM_NAME_LENGTH,
  NAME_PATTERN,
} from "../../shared/protocol/messages.ts";
import { z } from "zod";

/** HELLO's fields apart from the inventory, which is read with `readInventory`. */
const HelloHeader = Hello.omit({ hypervisors: true }).extend({ hypervisors: z.array(z.unknown()).max(MAX_HYPERVISORS) });

export interface AcceptedHello {
  protocol: number;
  software: string;
  hostname?: string;
  capabilities: string[];
  hypervisors: HypervisorInventory[];
}

/**
 * The highest common version and the validated HELLO, or why there is none. Only `protocols` is
 * read before a version is agreed: it is the one field every version keeps. A HELLO whose own
 * fields do not validate is a protocol error.
 */
export function negotiate(json: unknown): { ok: true; hello: AcceptedHello } | { ok: false; reason: string } {
  const offered = (json as { protocols?: unknown })?.protocols;
  const common = Array.isArray(offered) ? PROTOCOL_VERSIONS.filter((v) => offered.includes(v)).at(-1) : undefined;
  if (common === undefined) {
    return {
      ok: false,
      reason: `protocol versions ${JSON.stringify(offered)} not supported; this edge speaks ${PROTOCOL_VERSIONS.join(", ")}`,
    };
  }
  const parsed = HelloHeader.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ProtocolError(`bad HELLO at ${issue.path.join(".")}: ${issue.message}`);
  }
  const h = parsed.data;
  const offeredCaps = new Set(h.capabilities ?? []);
  return {
    ok: true,
    hello: {
      protocol: common,
      software: h.software,
      ...(h.hostname ? { hostname: h.hostname } : {}),
      capabilities: CAPABILITIES.filter((c) => offeredCaps.has(c)),
      hypervisors: readHypervisors(h.hypervisors),
    },
  };
}

/** An INVENTORY frame's payload: the hypervisors (degraded where needed) and the draining flag. */
export function readInventory(json: unknown): { hypervisors: HypervisorInventory[]; draining: boolean } {
  const parsed = z
    .object({ hypervisors: z.array(z.unknown()).max(MAX_HYPERVISORS), draining: z.boolean().optional() })
    .safeParse(json);
  if (!parsed.success) throw new ProtocolError(`bad INVENTORY: ${parsed.error.issues[0]?.message}`);
  return { hypervisors: readHypervisors(parsed.data.hypervisors), draining: parsed.data.draining === true };
}

function readHypervisors(entries: unknown[]): HypervisorInventory[] {
  const out: HypervisorInventory[] = [];
  const seen = new Set<string>();
  for (const entry of entries) {
    const hv = readHypervisor(entry);
    if (!hv || seen.has(hv.name)) continue;
    seen.add(hv.name);
    out.push(hv);
  }
  return out;
}

function readHypervisor(entry: unknown): HypervisorInventory | null {
  const direct = HypervisorInventory.safeParse(entry);
  if (direct.success) return direct.data;
  const e = (entry ?? {}) as Record<string, unknown>;
  // Without a valid name and type there is nothing to show or route to.
  if (typeof e.name !== "string" || !NAME_PATTERN.test(e.name)) return null;
  const type = HypervisorType.safeParse(e.type);
  if (!type.success) return null;
  const repaired = HypervisorInventory.safeParse({
    ...e,
    error: typeof e.error === "string" ? shorten(e.error, MAX_ERROR_LENGTH) : e.error,
    vms: Array.isArray(e.vms)
      ? e.vms.map((v: Record<string, unknown>) => (typeof v?.name === "string" ? { ...v, name: shorten(v.name, MAX_VM_NAME_LENGTH) } : v))
      : e.vms,
  });
  if (repaired.success) return repaired.data;
  const issue = repaired.error.issues[0]!;
  return {
    name: e.name,
    type: type.data,
    reachable: false,
    error: shorten(`The connector reported this hypervisor's inventory in a form the edge cannot read (${issue.path.join(".")}: ${issue.message}); update the connector.`, MAX_ERROR_LENGTH),
    vms: [],
  };
}

/** Cuts text to `max` UTF-16 units without splitting a surrogate pair, marking the cut. */
export function shorten(text: string, max: number): string {
  if (text.length <= max) return text;
  let cut = max - 1;
  const code = text.charCodeAt(cut - 1);
  if (code >= 0xd800 && code <= 0xdbff) cut--;
  return `${text.slice(0, cut)}…`;
}

export function welcomeFrame(protocol: number, connectorId: string, site: string, capabilities: string[]): Uint8Array {
  return encodeJson(FrameType.welcome, 0, {
    protocol,
    connectorId,
    site,
    windowBytes: STREAM_WINDOW_BYTES,
    // Connectors send DATA frames up to min(this, their own cap): older ones keep 32 KiB.
    maxDataBytes: MAX_DATA_BYTES_ACCEPTED,
    heartbeatMs: HEARTBEAT_INTERVAL_MS,
    capabilities,
  });
}

/**
 * Why a connector is older than this edge supports well, or null: its version (from HELLO's
 * `software`, `porthole-connector/x.y.z`) is below the edge's minor release, or it lacks
 * capabilities the edge has. It still works; the audit trail and `GET /api/sites` say so.
 */
export function outdated(hello: AcceptedHello, edgeVersion: string): string | null {
  const missing = CAPABILITIES.filter((c) => !hello.capabilities.includes(c));
  const theirs = /^porthole-connector\/(\d+)\.(\d+)\./.exec(hello.software);
  const ours = /^(\d+)\.(\d+)\./.exec(edgeVersion);
  const older = theirs && ours && (Number(theirs[1]) < Number(ours[1]) || (theirs[1] === ours[1] && Number(theirs[2]) < Number(ours[2])));
  if (!older && missing.length === 0) return null;
  const parts = [
    older ? `connector ${hello.software} is older than this edge (${edgeVersion})` : null,
    missing.length ? `it lacks ${missing.join(", ")}` : null,
  ].filter(Boolean);
  return `${parts.join("; ")}: update the connector.`;
}
