/**
 * JSON payloads of the control frames, validated where they enter (the edge validates HELLO,
 * INVENTORY; the connector validates WELCOME, OPEN).
 */
import { z } from "zod";

export const NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/**
 * Text limits of the inventory, in UTF-16 code units (what zod's `max` counts). The connector
 * shortens longer text before sending (XenServer's `name_label` has no limit; hypervisor errors
 * can be pages long), so one odd name never makes its whole inventory invalid.
 */
export const MAX_VM_NAME_LENGTH = 256;
export const MAX_VM_ID_LENGTH = 128;
export const MAX_ERROR_LENGTH = 512;
export const MAX_VMS_PER_HYPERVISOR = 20_000;
export const MAX_HYPERVISORS = 256;

/**
 * Optional protocol features, announced by the connector in HELLO and accepted by the edge in
 * WELCOME. A frame or field that belongs to a capability is only sent to a peer that announced it,
 * so an older peer never sees what it cannot parse.
 * - `request`: the connector answers REQUEST frames with REPLY (the edge asks for CloudTower URLs).
 * - `drain`: the connector marks itself `draining` in INVENTORY when it stops (SIGTERM); without
 *   it, a stopping connector sends an empty inventory instead.
 * - `ack`: the connector answers every OPEN at once with OPEN_ACK, before any wait (a handshake
 *   turn, the dial, the hypervisor's API, the greeting); the edge offers an OPEN that gets no ack
 *   within OPEN_ACK_TIMEOUT_MS to another connector. Without it, the edge can only wait for any
 *   sign of life from the connector (a heartbeat comes every 15 s).
 */
export const Capability = { request: "request", drain: "drain", ack: "ack" } as const;
export type Capability = (typeof Capability)[keyof typeof Capability];
export const CAPABILITIES: readonly Capability[] = [Capability.request, Capability.drain, Capability.ack];
const Capabilities = z.array(z.string().max(32)).max(32);

export const PowerState = z.enum(["running", "halted", "paused", "suspended", "unknown"]);
export type PowerState = z.infer<typeof PowerState>;

export const Vm = z.object({
  id: z.string().min(1).max(MAX_VM_ID_LENGTH),
  name: z.string().max(MAX_VM_NAME_LENGTH),
  powerState: PowerState,
});
export type Vm = z.infer<typeof Vm>;

export const HypervisorType = z.enum(["vnc", "xenserver", "cloudtower"]);
export type HypervisorType = z.infer<typeof HypervisorType>;

export const HypervisorInventory = z.object({
  name: z.string().regex(NAME_PATTERN),
  type: HypervisorType,
  /** false while the connector cannot reach or sign in to it; `error` says why. */
  reachable: z.boolean(),
  error: z.string().max(MAX_ERROR_LENGTH).optional(),
  vms: z.array(Vm).max(MAX_VMS_PER_HYPERVISOR),
  /** VMs left out because the inventory did not fit one frame (the connector logs a warning). */
  omitted: z.number().int().nonnegative().optional(),
});
export type HypervisorInventory = z.infer<typeof HypervisorInventory>;

export const Inventory = z.object({
  hypervisors: z.array(HypervisorInventory).max(MAX_HYPERVISORS),
  /** Capability `drain`: the connector is stopping and takes no new consoles; open ones go on. */
  draining: z.boolean().optional(),
});
export type Inventory = z.infer<typeof Inventory>;

/** The first frame a connector sends. Only `protocols` must stay readable by every edge version. */
export const Hello = Inventory.extend({
  protocols: z.array(z.number().int().positive()).min(1).max(16),
  software: z.string().max(64),
  hostname: z.string().max(255).optional(),
  /** Optional features this connector supports (see `Capability`); absent on older connectors. */
  capabilities: Capabilities.optional(),
});
export type Hello = z.infer<typeof Hello>;

export const Welcome = z.object({
  protocol: z.number().int().positive(),
  connectorId: z.string(),
  site: z.string(),
  windowBytes: z.number().int().positive(),
  maxDataBytes: z.number().int().positive(),
  heartbeatMs: z.number().int().positive(),
  /** The capabilities of the HELLO that this edge will use; absent from older edges. */
  capabilities: Capabilities.optional(),
});
export type Welcome = z.infer<typeof Welcome>;

/** The edge names a hypervisor and a VM from the connector's own config, never an address. */
export const OpenRequest = z.object({
  hypervisor: z.string().regex(NAME_PATTERN),
  vm: z.string().min(1).max(128),
});
export type OpenRequest = z.infer<typeof OpenRequest>;

/** A question the edge asks a connector outside any console stream. */
export const TunnelRequest = z.object({
  method: z.literal("vncUrls"),
  hypervisor: z.string().regex(NAME_PATTERN),
  vm: z.string().min(1).max(128),
});
export type TunnelRequest = z.infer<typeof TunnelRequest>;

export const TunnelReply = z.union([
  z.object({ ok: z.literal(true), result: z.object({ direct: z.string().max(4096), proxied: z.string().max(4096) }) }),
  z.object({ ok: z.literal(false), code: z.number().int(), message: z.string().max(1024) }),
]);
export type TunnelReply = z.infer<typeof TunnelReply>;
