/** The edge's HTTP API as a signed-in user would call it. */
import { waitFor } from "./processes.ts";

export class ApiClient {
  private cookie = "";
  readonly base: string;

  constructor(base: string) {
    this.base = base;
  }

  async call<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const res = await fetch(this.base + path, {
      method,
      headers: { "Content-Type": "application/json", ...(this.cookie ? { Cookie: this.cookie } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  }

  /** Any request with the session cookie (e.g. to follow a page link). */
  raw(url: string, init: RequestInit = {}): Promise<Response> {
    return fetch(url, { ...init, headers: { ...(init.headers ?? {}), ...(this.cookie ? { Cookie: this.cookie } : {}) } });
  }

  async signIn(username: string, password: string): Promise<void> {
    const res = await fetch(`${this.base}/api/session`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username, password }),
    });
    if (!res.ok) throw new Error(`sign-in failed: ${res.status} ${await res.text()}`);
    this.cookie = res.headers.get("set-cookie")!.split(";")[0]!;
  }

  async createSite(name: string): Promise<string> {
    const res = await this.call<{ connectorToken: string }>("POST", "/api/sites", { name });
    if (res.status !== 201) throw new Error(`create site: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.connectorToken;
  }

  /** Waits until the site's connector has reported an inventory with at least one VM. */
  async waitForVms(site: string, timeoutMs = 60_000): Promise<void> {
    await waitFor(`site ${site}'s VMs`, async () => {
      const res = await this.call<unknown[]>("GET", `/api/sites/${site}/vms`);
      return res.status === 200 && Array.isArray(res.body) && res.body.length > 0 ? true : undefined;
    }, timeoutMs);
  }

  async openConsole(site: string, hypervisor: string, vm: string) {
    const res = await this.call<{ pageUrl: string; wsUrl: string; expiresAt: string }>("POST", "/api/consoles", {
      site,
      hypervisor,
      vm,
    });
    if (res.status !== 201) throw new Error(`open console: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }
}
