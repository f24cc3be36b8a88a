/** The edge's HTTP API as a signed-in user would call it. */
import { ApiFailure, apiClient, type ApiClient as TypedClient } from "../../shared/api/client.ts";
import type { ConsoleOpened } from "../../shared/api/types.ts";
import { waitFor } from "./processes.ts";

export class ApiClient {
  private cookie = "";
  readonly base: string;
  /** The typed client (shared/api), as this user: `api.call("GET /api/links")`; throws ApiFailure unless 2xx. */
  readonly api: TypedClient;

  constructor(base: string) {
    this.base = base;
    this.api = apiClient({ base, headers: (): Record<string, string> => (this.cookie ? { Cookie: this.cookie } : {}) });
  }

  /** Any request, answered whatever its status (for tests of refusals and of odd paths). */
  async call<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const res = await this.api.send(method, path, body, { "Content-Type": "application/json" });
    return { status: res.status, body: res.body as T };
  }

  /** Any request with the sign-in's cookie (e.g. to follow a page link). */
  raw(url: string, init: RequestInit = {}): Promise<Response> {
    return fetch(url, { ...init, headers: { ...(init.headers ?? {}), ...(this.cookie ? { Cookie: this.cookie } : {}) } });
  }

  async signIn(username: string, password: string): Promise<void> {
    const res = await this.api.answer("POST /api/session", { body: { username, password } }).catch((err: Error) => {
      throw new Error(`sign-in failed: ${err.message}`);
    });
    this.cookie = res.headers.get("set-cookie")!.split(";")[0]!;
  }

  async createSite(name: string): Promise<string> {
    const created = await this.api.call("POST /api/sites", { body: { name } }).catch((err: Error) => {
      throw new Error(`create site: ${err.message}`);
    });
    return created.connectorToken;
  }

  /** Waits until the site's connector has reported an inventory with at least one VM. */
  async waitForVms(site: string, timeoutMs = 60_000): Promise<void> {
    await waitFor(`site ${site}'s VMs`, async () => {
      // A refusal (no connector yet) is polled again; an edge that cannot be reached is an error.
      const vms = await this.api.call("GET /api/sites/:site/vms", { params: { site } }).catch((err: unknown) => {
        if (err instanceof ApiFailure && err.status !== 0) return [];
        throw err;
      });
      return vms.length > 0 ? true : undefined;
    }, timeoutMs);
  }

  async openConsole(site: string, hypervisor: string, vm: string): Promise<ConsoleOpened> {
    return this.api.call("POST /api/consoles", { body: { site, hypervisor, vm } }).catch((err: Error) => {
      throw new Error(`open console: ${err.message}`);
    });
  }
}
