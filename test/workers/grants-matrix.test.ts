/**
 * Issue 19, the matrix: roles × scopes (site, hypervisor, VM, pattern) × levels × window (before,
 * inside, after) against every route that lists or opens something. The expected level comes from
 * a small oracle written here, independently of worker/access/decide.ts.
 */
import { describe, expect, it } from "vitest";
import type { AccessLevel, Role, SiteVm } from "../../shared/api/types.ts";
import { FrameType } from "../../shared/protocol/frames.ts";
import { HEARTBEAT_REQUEST } from "../../shared/protocol/limits.ts";
import { later } from "./clock.ts";
import { call, connectConnector, createSite, signIn, userSession } from "./helpers.ts";

const HYPERVISORS = [
  {
    name: "pool1",
    type: "vnc" as const,
    reachable: true,
    vms: [
      { id: "w1", name: "web-1", powerState: "running" as const },
      { id: "w2", name: "web-2", powerState: "running" as const },
      { id: "d1", name: "db-1", powerState: "running" as const },
    ],
  },
  { name: "pool2", type: "vnc" as const, reachable: true, vms: [{ id: "w3", name: "web-3", powerState: "running" as const }] },
];
const VMS = HYPERVISORS.flatMap((h) => h.vms.map((v) => ({ hypervisor: h.name, ...v })));
type Vm = (typeof VMS)[number];

const SCOPES = {
  site: {},
  hypervisor: { hypervisor: "pool1" },
  vm: { hypervisor: "pool1", vm: "w1" },
  pattern: { vmPattern: "web-*" },
} as const;
type Scope = keyof typeof SCOPES;

const ORDER: (AccessLevel | null)[] = [null, "view", "control", "share"];
const ROLE_GIVES: Record<Role, AccessLevel | null> = { admin: "share", operator: "share", viewer: "view", member: null, auditor: null };

/** The oracle: what the issue says each combination gives on `vm`. */
function expected(role: Role, scope: Scope, level: AccessLevel, inside: boolean, vm: Vm): AccessLevel | null {
  if (role === "auditor") return null;
  const covers = scope === "site" || (scope === "hypervisor" && vm.hypervisor === "pool1") || (scope === "vm" && vm.id === "w1") || (scope === "pattern" && vm.name.startsWith("web-"));
  const fromGrant = inside && covers ? level : null;
  const fromRole = ROLE_GIVES[role];
  return ORDER.indexOf(fromGrant) > ORDER.indexOf(fromRole) ? fromGrant : fromRole;
}

const ROLES: Role[] = ["member", "viewer", "operator", "auditor"];
const LEVELS: AccessLevel[] = ["view", "control", "share"];
// The grant's window is [+10 s, +20 s): "before" is now, "inside" +15 s, "after" +30 s (seconds,
// not hours: the clock moves for the connector too, whose heartbeat deadline is 45 s).
const WINDOWS = { before: 0, inside: 15_000, after: 30_000 } as const;

describe("who may reach which VM", () => {
  it("every role × scope × level × window, on listing, console tickets and share links", async () => {
    const admin = await signIn();
    const site = "matrix";
    const token = await createSite(admin, site);
    const connector = await connectConnector(token, { protocols: [1], software: "test/1", hostname: "m", hypervisors: HYPERVISORS });
    expect((await connector.nextFrame()).type).toBe(FrameType.welcome);
    const people = Object.fromEntries(await Promise.all(ROLES.map(async (r) => [r, await userSession(admin, `m-${r}`, r)] as const))) as Record<Role, string>;

    // `porthole listen --token` opens each console with an API token through POST /api/consoles.
    const tokens = Object.fromEntries(
      await Promise.all(
        ROLES.map(async (r) => {
          const { token } = (await (await call("POST", "/api/tokens", { name: "listen" }, people[r])).json()) as { token: string };
          return [r, { Authorization: `Bearer ${token}` }] as const;
        }),
      ),
    ) as Partial<Record<Role, Record<string, string>>> as Record<Role, Record<string, string>>;

    let checked = 0;
    for (const role of ROLES) {
      for (const scope of Object.keys(SCOPES) as Scope[]) {
        for (const level of LEVELS) {
          // The connector's heartbeat, as a real one sends it: the clock moves 30 s ahead below.
          connector.ws.send(HEARTBEAT_REQUEST);
          const from = new Date(Date.now() + 10_000).toISOString();
          const until = new Date(Date.now() + 20_000).toISOString();
          const res = await call("POST", "/api/grants", { user: `m-${role}`, site, ...SCOPES[scope], level, from, until }, admin);
          expect(res.status, `grant ${role} ${scope} ${level}`).toBe(201);
          const { id } = (await res.json()) as { id: string };
          for (const [window, shift] of Object.entries(WINDOWS)) {
            const inside = window === "inside";
            const what = `${role} · ${scope} · ${level} · ${window}`;
            await later(shift, async () => {
              const cookie = people[role];
              const listed = (await (await call("GET", `/api/sites/${site}/vms`, undefined, cookie)).json()) as SiteVm[];
              const want = VMS.flatMap((vm) => {
                const l = expected(role, scope, level, inside, vm);
                return l ? [`${vm.hypervisor}/${vm.id}:${l}`] : [];
              });
              expect(listed.map((v) => `${v.hypervisor}/${v.id}:${v.level}`).sort(), `${what}: listing`).toEqual(want.sort());
              for (const vm of VMS) {
                const l = expected(role, scope, level, inside, vm);
                const target = { site, hypervisor: vm.hypervisor, vm: vm.id };
                const ticket = await call("POST", "/api/consoles", target, cookie);
                const wantTicket = role === "auditor" ? 403 : l === null ? 404 : 201;
                expect(ticket.status, `${what}: console on ${vm.name}`).toBe(wantTicket);
                if (wantTicket === 201) expect(((await ticket.json()) as { viewOnly: boolean }).viewOnly, `${what}: view-only on ${vm.name}`).toBe(l === "view");
                const listen = await call("POST", "/api/consoles", target, tokens[role]);
                expect(listen.status, `${what}: listen --token on ${vm.name}`).toBe(wantTicket);
                const open = await call("GET", `/open?${new URLSearchParams(target)}`, undefined, { Cookie: cookie, "Sec-Fetch-Site": "same-origin" });
                // A ticket redirects to the console page (which the test's fetch follows).
                expect(open.status, `${what}: /open on ${vm.name}`).toBe(wantTicket === 201 ? 200 : wantTicket);
                const link = await call("POST", "/api/links", { ...target, ttlSeconds: 60, viewOnly: true }, cookie);
                const wantLink = role === "auditor" ? 403 : l === null ? 404 : l === "share" ? 201 : 403;
                expect(link.status, `${what}: link on ${vm.name}`).toBe(wantLink);
                checked++;
              }
            });
          }
          expect((await call("DELETE", `/api/grants/${id}`, undefined, admin)).status).toBe(204);
        }
      }
    }
    expect(checked).toBe(ROLES.length * 4 * LEVELS.length * 3 * VMS.length);
  }, 120_000);
});
