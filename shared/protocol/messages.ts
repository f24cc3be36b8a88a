/**
 * JSON payloads of the control frames, validated where they enter (the edge validates HELLO,
 * INVENTORY; the connector validates WELCOME, OPEN).
 */
import { z } from "zod";

export const NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export const PowerState = z.enum(["running", "halted", "paused", "suspended", "unknown"]);
export type PowerState = z.infer<typeof PowerState>;

export const Vm = z.object({
  id: z.string().min(1).max(128),
  name: z.string().max(256),
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
  error: z.string().max(512).optional(),
  vms: z.array(Vm).max(20_000),
});
export type HypervisorInventory = z.infer<typeof HypervisorInventory>;

export const Inventory = z.object({
  hypervisors: z.array(HypervisorInventory).max(256),
});
export type Inventory = z.infer<typeof Inventory>;

/** The first frame a connector sends. Only `protocols` must stay readable by every edge version. */
export const Hello = Inventory.extend({
  protocols: z.array(z.number().int().positive()).min(1).max(16),
  software: z.string().max(64),
  hostname: z.string().max(255).optional(),
});
export type Hello = z.infer<typeof Hello>;

export const Welcome = z.object({
  protocol: z.number().int().positive(),
  connectorId: z.string(),
  site: z.string(),
  windowBytes: z.number().int().positive(),
  maxDataBytes: z.number().int().positive(),
  heartbeatMs: z.number().int().positive(),
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
