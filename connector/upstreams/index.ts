/** Builds the upstream for each configured hypervisor. */
import type { HypervisorConfig } from "../config.ts";
import type { Log } from "../log.ts";
import type { Upstream } from "./upstream.ts";
import { VncUpstream } from "./vnc.ts";
import { XenServerUpstream } from "./xenserver/xenserver.ts";

export class UnsupportedHypervisor extends Error {}

export function createUpstream(config: HypervisorConfig, baseDir: string, log: Log): Upstream {
  switch (config.type) {
    case "vnc":
      return new VncUpstream(config);
    case "xenserver":
      return new XenServerUpstream(config, baseDir, log);
    default:
      throw new UnsupportedHypervisor(
        `hypervisor ${config.name}: type ${config.type} is not supported by this connector build yet`,
      );
  }
}
