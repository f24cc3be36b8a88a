/**
 * The Worker's environment. The bindings (SITE, REGISTRY, ASSETS) are generated from wrangler.toml
 * by `wrangler types` into `bindings.d.ts` (`npm run types`; `npm run typecheck` fails when it is
 * stale). Secrets and vars are optional settings wrangler.toml does not declare, so they are here.
 */
export interface Env extends Bindings {
  ADMIN_USERNAME?: string;
  ADMIN_PASSWORD?: string;
  ACCESS_TEAM_DOMAIN?: string;
  ACCESS_AUD?: string;
  /** Role of an Access user with no Porthole account (default viewer). */
  ACCESS_DEFAULT_ROLE?: string;
  /** Longest share link, in seconds (default 86400). */
  LINK_MAX_TTL_SECONDS?: string;
  /** Full-control consoles with no input for this long are closed (default: off). */
  IDLE_TIMEOUT_SECONDS?: string;
  /** Consoles open at once through one share link, per site (default 10). */
  MAX_CONSOLES_PER_LINK?: string;
  /** Consoles one user may have open at once on one site (default 20). */
  MAX_CONSOLES_PER_USER?: string;
  /** Origins (space- or comma-separated) allowed to embed console and share-link pages; default none. */
  FRAME_ANCESTORS?: string;
  /** permessage-deflate on console sockets and on connector tunnels: "on" or "off" (default off). */
  VIEWER_WS_COMPRESSION?: string;
  CONNECTOR_WS_COMPRESSION?: string;
  /** Where to POST `{text}` for each new access request and decision (Slack-compatible); default none. */
  NOTIFY_WEBHOOK_URL?: string;
  /** Finished recordings are deleted this many days after they ended (default 30; docs/recording.md). */
  RECORDING_RETENTION_DAYS?: string;
}

/** Hono's environment for this app: bindings, and what the auth middleware sets. */
export interface AppEnv {
  Bindings: Env;
  Variables: { user: User };
}

import type { Role, Via } from "../shared/api/types.ts";

export type { Role } from "../shared/api/types.ts";

export interface User {
  /** Stable: an account's id, `builtin` for the secrets' administrator, `access:<email>` otherwise. */
  id: string;
  name: string;
  role: Role;
  /** How the request was authenticated. */
  via: Via;
}
