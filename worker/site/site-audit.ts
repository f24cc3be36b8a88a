/**
 * The site's rows in the audit trail. They go to the registry with `waitUntil`, never holding up
 * this object's events (a console's bytes must not wait for a write elsewhere).
 */
import { CloseCode } from "../../shared/protocol/close-codes.ts";
import type { Env } from "../env.ts";
import type { AuditEvent } from "../registry/audit-store.ts";
import { registryOf } from "../registry/registry-object.ts";
import type { SiteConfig } from "./site-config.ts";
import type { LostConsole, StreamEnd } from "./stream-book.ts";

export class SiteAudit {
  private readonly ctx: DurableObjectState;
  private readonly env: Env;
  private readonly config: SiteConfig;

  constructor(ctx: DurableObjectState, env: Env, config: SiteConfig) {
    this.ctx = ctx;
    this.env = env;
    this.config = config;
  }

  send(event: AuditEvent): void {
    const site = this.config.site ?? undefined;
    this.ctx.waitUntil(
      registryOf(this.env)
        .audit({ ...event, site })
        .catch((err: unknown) => console.error("audit write failed", err)),
    );
  }

  /** A console ended, however it ended (the stream book reports each once). */
  consoleClosed({ stream, code, reason }: StreamEnd): void {
    const a = stream.attachment;
    this.send({
      type: "console.closed",
      actor: a.user,
      detail: {
        stream: a.stream,
        hypervisor: a.hypervisor,
        vm: a.vm,
        viewOnly: a.viewOnly,
        bytesDown: stream.bytesDown,
        bytesUp: stream.bytesUp,
        seconds: Math.round((Date.now() - a.openedAt) / 1000),
        code,
        reason,
        ...(a.recording ? { recording: a.recording } : {}),
      },
    });
  }

  /** A console that was open when the object last ran and did not survive to this wake. */
  consoleLost(lost: LostConsole): void {
    this.send({
      type: "console.closed",
      actor: lost.user,
      detail: {
        stream: lost.stream,
        hypervisor: lost.hypervisor,
        vm: lost.vm,
        viewOnly: lost.viewOnly,
        seconds: Math.round((Date.now() - lost.openedAt) / 1000),
        code: lost.code ?? CloseCode.connectorOffline,
        reason: lost.reason ?? "The edge restarted.",
        ...(lost.recording ? { recording: lost.recording } : {}),
      },
    });
  }
}
