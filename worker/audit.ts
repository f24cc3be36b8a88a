/** Records an audit event without making the caller wait for the write. */
import type { AuditEvent } from "./registry/audit-store.ts";
import { registryOf } from "./registry/registry-object.ts";
import type { Env } from "./env.ts";

export function audit(env: Env, waitUntil: (p: Promise<unknown>) => void, event: AuditEvent): void {
  waitUntil(registryOf(env).audit(event).catch((err: unknown) => console.error("audit write failed", err)));
}
