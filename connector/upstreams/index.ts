/** Builds the upstream for each configured hypervisor. */
import type { HypervisorConfig } from "../config.ts";
import type { Upstream } from "./upstream.ts";
import { VncUpstream } from "./vnc.ts";

export class UnsupportedHypervisor extends Error {}

export function createUpstream(config: HypervisorConfig): Upstream {
  switch (config.type) {
    case "vnc":
      return new VncUpstream(config);
    default:
      throw new UnsupportedHypervisor(
        `hypervisor ${config.name}: type ${config.type} is not supported by this connector build yet`,
      );
  }
}
