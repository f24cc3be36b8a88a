/**
 * The CloudTower simulator's tower API: `POST /v2/api/login` (LOCAL users, login tokens) and the
 * GraphQL `POST /api` with its `vnc` (one-time console tokens) and `vms` queries.
 */
import { randomBytes, randomInt } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { errorBody, readJson, sendJson } from "./http.ts";
import type { TowerStats, TowerVm } from "./tower.ts";

const VNC_FIELDS = ["vm_uuid", "host_ip", "cluster_ip", "raw_token", "token"] as const;
const VM_FIELDS = ["id", "name", "status", "local_id"] as const;

/** A `vnc` answer: the one-time tokens websockify takes (`raw_token` on the cluster, `token` on the tower). */
export interface Grant {
  vmId: string;
  uuid: string;
  hostIp: string;
  rawToken: string;
  token: string;
  expiresAt: number;
  used: boolean;
}

interface GraphqlBody {
  operationName?: unknown;
  variables?: unknown;
  query?: unknown;
}

/** What the tower API is given: the inventory and settings the test may change in place. */
export interface TowerApiOptions {
  vms: TowerVm[];
  stats: TowerStats;
  cluster: string;
  username: string;
  password: string;
  tokenTtlMs: number;
  vncTokenTtlMs: number;
  /** Read at each `vnc` query (the test's `forceSpecialTokenChars`). */
  forceSpecialTokenChars(): boolean;
}

export class TowerApi {
  /** login token → expiry (ms since epoch; Infinity = never) */
  readonly sessions = new Map<string, number>();
  readonly grantsByRaw = new Map<string, Grant>();
  readonly grantsByToken = new Map<string, Grant>();
  private readonly o: TowerApiOptions;

  constructor(options: TowerApiOptions) {
    this.o = options;
  }

  async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "https://tower.invalid").pathname;
    if (path === "/v2/api/login") {
      if (req.method !== "POST") return sendJson(res, 404, errorBody(req, 404, `Cannot ${req.method} ${path}`, "NOT_FOUND"));
      return this.login(req, res);
    }
    if (path === "/api") {
      if (req.method !== "POST") {
        return sendJson(res, 405, { errors: [{ message: "this simulator takes GraphQL over POST only" }] });
      }
      return this.graphql(req, res);
    }
    sendJson(res, 404, errorBody(req, 404, `Cannot ${req.method} ${path}`, "NOT_FOUND"));
  }

  private async login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req);
    if (!body.ok) {
      this.o.stats.failedLogins++;
      return sendJson(res, 400, errorBody(req, 400, body.message, "BAD_REQUEST", "login"));
    }
    const input = body.value as { username?: unknown; password?: unknown; source?: unknown } | null;
    if (typeof input !== "object" || input === null || typeof input.username !== "string" || typeof input.password !== "string") {
      this.o.stats.failedLogins++;
      return sendJson(res, 400, errorBody(req, 400, "username and password are required", "BAD_REQUEST", "login"));
    }
    if (input.source !== undefined && input.source !== "LOCAL") {
      this.o.stats.failedLogins++;
      const known = ["LDAP", "AUTHN", "SSO"].includes(String(input.source));
      const message = known
        ? `no ${String(input.source)} identity source is configured`
        : `source must be one of LOCAL, LDAP, AUTHN, SSO`;
      return sendJson(res, 400, errorBody(req, 400, message, "BAD_REQUEST", "login"));
    }
    if (input.username !== this.o.username || input.password !== this.o.password) {
      this.o.stats.failedLogins++;
      return sendJson(res, 400, errorBody(req, 400, "username or password is incorrect", "LOGIN_FAILED", "login"));
    }
    this.o.stats.logins++;
    const token = randomBytes(20).toString("hex");
    this.sessions.set(token, Date.now() + this.o.tokenTtlMs);
    sendJson(res, 200, { task_id: cuid(), data: { token } });
  }

  private sessionValid(authorization: string | undefined): boolean {
    if (authorization === undefined) return false;
    const expiresAt = this.sessions.get(authorization);
    if (expiresAt === undefined) return false;
    if (Date.now() >= expiresAt) {
      this.sessions.delete(authorization);
      return false;
    }
    return true;
  }

  private async graphql(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const authorization = req.headers.authorization;
    if (authorization !== undefined) this.o.stats.authorizationHeaders.push(authorization);
    if (!this.sessionValid(authorization)) {
      req.resume();
      return sendJson(res, 401, errorBody(req, 401, "Unauthorized", "UNAUTHORIZED"));
    }
    const parsed = await readJson(req);
    if (!parsed.ok) return sendJson(res, 400, { errors: [{ message: parsed.message, extensions: { code: "BAD_REQUEST" } }] });
    const body = parsed.value as GraphqlBody | null;
    if (typeof body !== "object" || body === null || typeof body.query !== "string" || body.query.trim() === "") {
      return sendJson(res, 400, {
        errors: [{ message: "GraphQL operations must contain a non-empty `query`.", extensions: { code: "BAD_REQUEST" } }],
      });
    }
    const query = body.query;
    const operation = operationOf(body.operationName, query);
    if (operation === "vnc") return this.vnc(res, query, body.variables);
    if (operation === "vms") return this.listVms(res, query);
    const root = /^\s*(?:query\b[^{]*)?\{\s*(\w+)/.exec(query)?.[1] ?? "?";
    sendJson(res, 400, validationError(`Cannot query field "${root}" on type "Query". (simulator: only vnc and vms)`));
  }

  private vnc(res: ServerResponse, query: string, variables: unknown): void {
    this.o.stats.vncQueries++;
    const m = /^\s*vnc\s*\(\s*input\s*:\s*\$(\w+)\s*\)\s*\{([^{}]*)\}/.exec(rootSelection(query));
    if (!m) {
      return sendJson(
        res,
        400,
        validationError("simulator: expected `vnc(input: $input) { vm_uuid host_ip cluster_ip raw_token token }`"),
      );
    }
    const fields = selection(m[2] ?? "");
    const unknown = fields.find((f) => f !== "__typename" && !(VNC_FIELDS as readonly string[]).includes(f));
    if (unknown !== undefined || fields.length === 0) return sendJson(res, 400, fieldError(unknown, "Vnc"));
    const variable = m[1] ?? "input";
    const input = (variables as Record<string, unknown> | null | undefined)?.[variable] as
      | { vm?: { id?: unknown } }
      | undefined;
    const vmId = input?.vm?.id;
    if (typeof vmId !== "string") {
      return sendJson(
        res,
        400,
        validationError(`Variable "$${variable}" got invalid value; Field "vm" of required type "VmWhereUniqueInput!" was not provided.`),
      );
    }
    const vm = this.o.vms.find((v) => v.id === vmId);
    if (!vm) {
      return sendJson(res, 200, {
        data: { vnc: null },
        errors: [{ message: "VM not found", path: ["vnc"], extensions: { code: "VM_NOT_FOUND" } }],
      });
    }
    if (vm.status === "STOPPED") {
      return sendJson(res, 200, {
        data: { vnc: null },
        errors: [
          {
            message: `VM ${vm.name} is not running (status ${vm.status}): power it on to open its console`,
            path: ["vnc"],
            extensions: { code: "VM_NOT_RUNNING" },
          },
        ],
      });
    }
    const grant = this.issue(vm);
    const all: Record<string, string> = {
      __typename: "Vnc",
      vm_uuid: grant.uuid,
      host_ip: grant.hostIp,
      cluster_ip: this.o.cluster,
      raw_token: grant.rawToken,
      token: grant.token,
    };
    const vnc: Record<string, string> = {};
    for (const f of fields) vnc[f] = all[f] ?? "";
    sendJson(res, 200, { data: { vnc } });
  }

  private listVms(res: ServerResponse, query: string): void {
    this.o.stats.vmsQueries++;
    const m = /^\s*vms\s*(?:\([^)]*\))?\s*\{([^}]*)\}/.exec(rootSelection(query));
    const fields = m ? selection(m[1] ?? "") : ["id", "name", "status"];
    const unknown = fields.find((f) => f !== "__typename" && !(VM_FIELDS as readonly string[]).includes(f));
    if (unknown !== undefined || fields.length === 0) return sendJson(res, 400, fieldError(unknown, "Vm"));
    const vms = this.o.vms.map((vm) => {
      const all: Record<string, string> = { __typename: "Vm", id: vm.id, name: vm.name, status: vm.status, local_id: vm.uuid };
      const out: Record<string, string> = {};
      for (const f of fields) out[f] = all[f] ?? "";
      return out;
    });
    sendJson(res, 200, { data: { vms } });
  }

  private issue(vm: TowerVm): Grant {
    const now = Date.now();
    for (const [raw, g] of this.grantsByRaw) {
      if (g.expiresAt <= now) {
        this.grantsByRaw.delete(raw);
        this.grantsByToken.delete(g.token);
      }
    }
    const grant: Grant = {
      vmId: vm.id,
      uuid: vm.uuid,
      hostIp: vm.hostIp,
      rawToken: randomBytes(16).toString("hex"),
      token: base64Token(this.o.forceSpecialTokenChars()),
      expiresAt: now + this.o.vncTokenTtlMs,
      used: false,
    };
    this.grantsByRaw.set(grant.rawToken, grant);
    this.grantsByToken.set(grant.token, grant);
    return grant;
  }
}

/**
 * A base64 token. special: 40 random bytes (so "==" padding) with one 3-byte group set to
 * FB FF BF, which encodes as "+/+/": every token holds '+', '/' and '='. Otherwise 39 bytes
 * (no padding) redrawn until no '+' or '/' appears.
 */
function base64Token(special: boolean): string {
  if (special) {
    const bytes = randomBytes(40);
    const at = 3 * randomInt(0, 13);
    bytes[at] = 0xfb;
    bytes[at + 1] = 0xff;
    bytes[at + 2] = 0xbf;
    return bytes.toString("base64");
  }
  for (;;) {
    const t = randomBytes(39).toString("base64");
    if (!/[+/=]/.test(t)) return t;
  }
}

/** A CloudTower-looking id (cuid: "c" + 24 lowercase base36 chars). */
function cuid(): string {
  let s = "c";
  while (s.length < 25) s += randomInt(0, 36).toString(36);
  return s;
}

function operationOf(operationName: unknown, query: string): "vnc" | "vms" | null {
  if (operationName === "vms") return "vms";
  if (operationName === "vnc") return "vnc";
  const root = /^\s*(?:query\b[^{]*)?\{\s*(\w+)/.exec(query)?.[1];
  return root === "vnc" || root === "vms" ? root : null;
}

/** The text inside the operation's outermost braces: `query vms { vms { id } }` → ` vms { id } `. */
function rootSelection(query: string): string {
  const start = query.indexOf("{");
  const end = query.lastIndexOf("}");
  return start >= 0 && end > start ? query.slice(start + 1, end) : "";
}

function selection(text: string): string[] {
  return text.split(/[\s,]+/).filter((f) => f !== "");
}

function fieldError(unknown: string | undefined, type: string) {
  return validationError(
    unknown === undefined ? 'Syntax Error: Expected Name, found "}".' : `Cannot query field "${unknown}" on type "${type}".`,
  );
}

function validationError(message: string) {
  return { errors: [{ message, extensions: { code: "GRAPHQL_VALIDATION_FAILED" } }] };
}
