/** Builds the upstream for each configured hypervisor. */
import type { HypervisorConfig } from "../config.ts";
import type { Log } from "../log.ts";
import type { Upstream } from "./upstream.ts";
import { CloudTowerUpstream } from "./cloudtower.ts";
import { VncUpstream } from "./vnc.ts";
import { XenServerUpstream } from "./xenserver/xenserver.ts";

export function createUpstream(config: HypervisorConfig, baseDir: string, log: Log): Upstream {
  switch (config.type) {
    case "vnc":
      return new VncUpstream(config);
    case "xenserver":
      return new XenServerUpstream(config, baseDir, log);
    case "cloudtower":
      return new CloudTowerUpstream(config, baseDir, log);
  }
}
