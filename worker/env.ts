import type { Registry } from "./registry/registry-object.ts";
import type { SiteObject } from "./relay/site-object.ts";

export interface Env {
  SITE: DurableObjectNamespace<SiteObject>;
  REGISTRY: DurableObjectNamespace<Registry>;
  ASSETS: Fetcher;
  ADMIN_USERNAME?: string;
  ADMIN_PASSWORD?: string;
  ACCESS_TEAM_DOMAIN?: string;
  ACCESS_AUD?: string;
}

/** Hono's environment for this app: bindings, and what the auth middleware sets. */
export interface AppEnv {
  Bindings: Env;
  Variables: { user: { name: string; role: Role } };
}

export type Role = "admin" | "operator" | "viewer";
