import type { Registry } from "./registry/registry-object.ts";
import type { SiteObject } from "./site/site-object.ts";

export interface Env {
  SITE: DurableObjectNamespace<SiteObject>;
  REGISTRY: DurableObjectNamespace<Registry>;
  ASSETS: Fetcher;
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
}

/** Hono's environment for this app: bindings, and what the auth middleware sets. */
export interface AppEnv {
  Bindings: Env;
  Variables: { user: User };
}

export type Role = "admin" | "operator" | "viewer";

export interface User {
  /** Stable: an account's id, `builtin` for the secrets' administrator, `access:<email>` otherwise. */
  id: string;
  name: string;
  role: Role;
  /** How the request was authenticated. */
  via: "session" | "token" | "access";
}
