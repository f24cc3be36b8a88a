/**
 * The edge's HTTP API as its clients see it: every route's body and reply, declared once. The
 * Worker's routes check what they send against these types (`c.json(x satisfies Reply<…>)`) and
 * their request schemas against the bodies (`valid("json", Schema satisfies Accepts<…>)`); the
 * operator app, the console page, `porthole listen` and the test harnesses import them as types
 * only, through `client.ts`. Types only: nothing here reaches a bundle.
 *
 * Why not `hc<AppType>` (hono/client): its types are inferred from the Worker's own source, so every
 * client's TypeScript program would load the Worker, which needs @cloudflare/workers-types, whose
 * globals clash with lib.dom (the app) and @types/node (`porthole listen`, e2e). See docs/design.md.
 */
import type { PowerState } from "../protocol/messages.ts";

// ---- people ---------------------------------------------------------------------------------------

/** `member`: nothing but its grants; `auditor`: the audit trail and live sessions, never a console. */
export const ROLES = ["admin", "operator", "viewer", "member", "auditor"] as const;
export type Role = (typeof ROLES)[number];

/** What a grant gives on a VM: `view` (view-only), `control` (full control), `share` (and share links). */
export type AccessLevel = "view" | "control" | "share";

/** How a request was authenticated: a sign-in's cookie, an API token, or Cloudflare Access. */
export type Via = "session" | "token" | "access";

/** `POST /api/session` and `GET /api/session`: who is signed in (`via` only from GET). */
export interface Me {
  user: string;
  role: Role;
  via?: Via;
}

export interface SignInBody {
  username: string;
  password: string;
}

/** `GET /api/users`: accounts, the built-in administrator, and Access identities without an account. */
export interface UserEntry {
  username: string;
  role: Role;
  createdAt?: string;
  disabled?: boolean;
  /** The administrator from the ADMIN_USERNAME secret: managed there, not here. */
  builtIn?: boolean;
  /** A Cloudflare Access identity with no account: no password here; Delete blocks it. */
  access?: boolean;
}

export interface NewUserBody {
  username: string;
  password: string;
  role: Role;
}

export interface UserChangeBody {
  role?: Role;
  password?: string;
  disabled?: boolean;
}

export interface UserChanged {
  username: string;
  role: Role;
  disabled: boolean;
  access?: true;
}

/** `GET /api/tokens`. */
export interface Token {
  id: string;
  name: string;
  /** Whose token it is (it acts as them). */
  user: string;
  createdAt: string;
  /** null: never expires. */
  expiresAt: string | null;
  /** To the minute; null if never used. */
  lastUsedAt: string | null;
}

export interface NewTokenBody {
  name: string;
  /** Days until it expires; none: until revoked. */
  ttlDays?: number;
}

/** Shown once. */
export interface TokenCreated {
  id: string;
  token: string;
  expiresAt: string | null;
}

/** `GET /api/signin-blocks`. */
export interface SignInBlock {
  /** null: the whole address is blocked. */
  account: string | null;
  address: string;
  failures: number;
  retryAfter: number;
}

// ---- sites ----------------------------------------------------------------------------------------

export interface HypervisorHealth {
  name: string;
  type: string;
  reachable: boolean;
  error?: string;
  vms: number;
  omitted?: number;
}

export interface ConnectorHealth {
  id: string;
  hostname: string | null;
  /** The connector's version as `--version` prints it (0.3.0). */
  version: string | null;
  /** What it calls itself in HELLO (porthole-connector/0.3.0). */
  software: string | null;
  /** Where it dials from, as the edge sees it (administrators only). */
  address?: string | null;
  /** Stopping: takes no new consoles. */
  draining: boolean;
  /** Why the edge calls it out of date (it still works). */
  outdated?: string;
  hypervisors: HypervisorHealth[];
  connectedAt: string;
  lastHeardAt: string;
  streams: number;
}

/** `GET /api/sites`. */
/** Which of a site's consoles are recorded: none, all, or those opened through share links. */
export const RECORDING_POLICIES = ["off", "all", "links"] as const;
export type RecordingPolicy = (typeof RECORDING_POLICIES)[number];

export interface Site {
  name: string;
  recording: RecordingPolicy;
  /** Whether recorded consoles keep the viewer's input (keys, pointer, clipboard). */
  recordInput: boolean;
  connectors: ConnectorHealth[];
}

/** `PATCH /api/sites/:site` (admin). */
export interface SiteChangeBody {
  recording?: RecordingPolicy;
  recordInput?: boolean;
}

/** One recorded console (the index: docs/recording.md). */
export interface Recording {
  /** `<site>.<32 hex>`. */
  id: string;
  site: string;
  hypervisor: string;
  vm: string;
  /** Who opened it (absent for share links). */
  user?: string;
  linkId?: string;
  startedAt: string;
  /** Absent while the console is still open. */
  endedAt?: string;
  /** `recording` (open), `complete`, `incomplete` (storage failed or fell behind: a gap), `interrupted` (the edge restarted). */
  state: "recording" | "complete" | "incomplete" | "interrupted";
  bytes: number;
  segments: number;
  recordInput: boolean;
  /** SHA-256 chain head over the segments, hex (docs/recording.md). */
  chain: string;
}

/** `GET /api/recordings/:id`: also each segment's size, in order, so a player can check the chain. */
export interface RecordingDetail extends Recording {
  segmentBytes: number[];
}

/** `GET /api/recordings` filters; times are ISO. */
export interface RecordingQuery {
  site?: string;
  vm?: string;
  user?: string;
  since?: string;
  until?: string;
}

export interface SiteCreated {
  name: string;
  connectorToken: string;
}

export interface TokenRotated {
  connectorToken: string;
  connectorsDropped: number;
}

/** `GET /api/sites/:site/vms`. */
export interface SiteVm {
  hypervisor: string;
  id: string;
  name: string;
  powerState: PowerState;
  /** What the caller may do on it (the most their role and grants give). */
  level?: AccessLevel;
  /** When the grant that gives `level` ends, if it does. */
  until?: string;
}

// ---- consoles, links, live consoles ---------------------------------------------------------------

/** A VM's console, as the API names it: never an address. */
export interface ConsoleTarget {
  site: string;
  hypervisor: string;
  vm: string;
}

/** `POST /api/consoles`. */
export interface ConsoleOpened {
  pageUrl: string;
  wsUrl: string;
  expiresAt: string;
  viewOnly: boolean;
}

export interface NewLinkBody extends ConsoleTarget {
  ttlSeconds?: number;
  viewOnly?: boolean;
  /** Require a PIN: the reply carries it, once. */
  pin?: boolean;
  /** No console before this ISO time (not in the past, before the expiry). */
  startsAt?: string;
  /** Consoles the link may ever open (1: one-time). */
  maxUses?: number;
  /** Viewers at once (default and most: MAX_CONSOLES_PER_LINK). */
  maxViewers?: number;
  /** Shown with the link (≤ 200 characters, one line). */
  note?: string;
  /** Each viewer gives a name and waits until someone in control of the VM's console allows them. */
  approval?: boolean;
}

/** What a link is limited to, as made (reply and list). */
export interface LinkLimits {
  startsAt: string | null;
  maxUses: number | null;
  maxViewers: number;
  note: string | null;
}

/** `POST /api/links`: the link itself, shown once. */
export interface LinkCreated extends LinkLimits {
  id: string;
  url: string;
  wsUrl: string;
  expiresAt: string;
  viewOnly: boolean;
  /** The link's six-digit PIN (when asked for), shown once: give it through another channel. */
  pin?: string;
}

/** `GET /api/links`. */
export interface Link extends LinkLimits {
  /** Consoles it has opened (for maxUses). */
  uses: number;
  id: string;
  site: string;
  hypervisor: string;
  vm: string;
  viewOnly: boolean;
  createdBy: string;
  createdAt: string;
  expiresAt: string;
  /** `locked`: too many wrong PINs (pinFailures says how many); it opens nothing more. */
  state: "active" | "expired" | "revoked" | "locked";
  pin: boolean;
  pinFailures: number;
  /** It asks before each viewer joins; `waiting`: the viewers waiting now, oldest first. */
  approval: boolean;
  waiting: LinkJoinWaiting[];
  /** Consoles open on the link right now. */
  sessions: number;
  /** Who is on this link's VM's console now (Watching now), by any way in. */
  watchers: string[];
}

/** `GET /l/:site/status` (the secret in `X-Porthole-Link`): a share link that still works. */
export interface LinkStatus {
  expiresAt: string;
  viewOnly: boolean;
  /** The VM's name. */
  vm: string;
  /** It asks for a PIN first (`POST /l/:site/pin`). */
  pin: boolean;
  /** Each viewer asks to join and waits (`POST /l/:site/join`), after the PIN if there is one. */
  approval: boolean;
}

/** A link's viewer waiting to be let in, as the Share links list shows it. */
export interface LinkJoinWaiting {
  id: string;
  name: string;
  askedAt: string;
  expiresAt: string;
}

/** `POST /l/:site/join` body (the secret in `X-Porthole-Link`). */
export interface LinkJoinBody {
  /** Who is asking, as the people in control will see it (1–60 characters, one line). */
  name: string;
  /** A link with a PIN: the pass `POST /l/:site/pin` gave. */
  pass?: string;
}

/** `POST /l/:site/join` → 201: look with `GET /l/:site/join/:id`, the token in `X-Porthole-Join`. */
export interface LinkJoinAsked {
  id: string;
  token: string;
  /** No answer by then means no. */
  expiresAt: string;
  /** The VM's name. */
  vm: string;
}

/**
 * `GET /l/:site/join/:id`: `waiting`, then `allowed` with the socket's `pass` (add `&pass=` to the
 * link's socket URL within 60 s; given once: a later look says `used`), or `denied`, `timed_out`,
 * `ended`. `message` says it in words.
 */
export interface LinkJoinState {
  state: "waiting" | "allowed" | "used" | "denied" | "timed_out" | "ended";
  expiresAt: string;
  message: string;
  pass?: string;
}

/** `POST /api/links/:id/joins/:join/allow` and `…/deny`. */
export interface LinkJoinAnswered {
  id: string;
  name: string;
  state: "allowed" | "denied";
}

/** `POST /l/:site/pin` body (the secret in `X-Porthole-Link`; the PIN in the body, never a URL). */
export interface LinkPinBody {
  pin: string;
}

/** The right PIN's pass: add `&pass=<pass>` to the link's socket URL within 60 s; single use. */
export interface LinkPass {
  pass: string;
  expiresAt: string;
}

/** `GET /api/sessions`: a live console (the API's "session"; see the glossary). */
export interface LiveConsole {
  /** `<site>.<stream>`: unique across sites. */
  id: string;
  site: string;
  hypervisor: string;
  vm: string;
  /** Who opened it (consoles from tickets), by name and stable id. */
  user?: string;
  userId?: string | null;
  /** The share link it was opened through, and who made that link. */
  linkId?: string;
  linkCreatedBy?: string;
  linkCreatedById?: string | null;
  viewOnly: boolean;
  /** How the others on this VM's console see this viewer (Watching now): a user name, or "link: <note or id>". */
  watcher: string;
  openedAt: string;
  bytesDown: number;
  bytesUp: number;
}

/** `POST /api/vnc-urls`. */
export interface VncUrls {
  edge: string;
  direct?: string;
  proxied?: string;
}

// ---- access: groups, grants, access requests (issue 19) -------------------------------------------

/** `GET /api/groups`. */
export interface Group {
  name: string;
  members: string[];
  createdAt: string;
}

export interface NewGrantBody {
  user?: string;
  group?: string;
  site: string;
  hypervisor?: string;
  vm?: string;
  vmPattern?: string;
  level: AccessLevel;
  /** ISO times; outside them the grant gives nothing. */
  from?: string;
  until?: string;
}

/** `GET /api/grants`, `POST /api/grants`. */
export interface Grant {
  id: string;
  user?: string;
  group?: string;
  site: string;
  hypervisor?: string;
  vm?: string;
  vmPattern?: string;
  level: AccessLevel;
  from?: string;
  until?: string;
  createdBy: string;
  createdAt: string;
  /** The access request it came from, if any. */
  requestId?: string;
}

export interface NewAccessRequestBody {
  site: string;
  hypervisor: string;
  vm: string;
  level: AccessLevel;
  minutes: number;
  reason: string;
}

/** `GET /api/access-requests`. */
export interface AccessRequest {
  id: string;
  user: string;
  site: string;
  hypervisor: string;
  vm: string;
  level: AccessLevel;
  minutes: number;
  reason: string;
  status: "pending" | "approved" | "denied";
  createdAt: string;
  decidedBy?: string;
  decidedAt?: string;
  comment?: string;
  grantId?: string;
}

// ---- audit ----------------------------------------------------------------------------------------

/** An audit event, as the registry stores it. */
export interface AuditEvent {
  type: string;
  /** A user name, `link:<id>`, `connector:<id>` or `system`. */
  actor: string;
  site?: string;
  detail?: Record<string, unknown>;
}

/** `GET /api/audit`, newest first. */
export interface AuditRow extends AuditEvent {
  id: number;
  at: string;
  /** Folded rows: how many events this row stands for, and when the newest happened. */
  count?: number;
  lastAt?: string;
}

export interface AuditQuery {
  type?: string;
  actor?: string;
  site?: string;
  since?: string;
  until?: string;
  /** The `id` of the last row seen (the `Link: rel="next"` header carries it). */
  before?: number;
  limit?: number;
}

// ---- every route ----------------------------------------------------------------------------------

/**
 * Each route: what it takes (`body`, `query`; path parameters come from the `:names` in the key)
 * and what it answers (`reply`; `null` for 204). The client derives its call signatures from this.
 */
export interface Routes {
  "GET /healthz": { reply: { ok: true; version: string } };
  "POST /api/session": { body: SignInBody; reply: Me };
  "GET /api/session": { reply: Me };
  "DELETE /api/session": { reply: null };
  "GET /api/users": { reply: UserEntry[] };
  "POST /api/users": { body: NewUserBody; reply: { username: string; role: Role } };
  "PATCH /api/users/:username": { body: UserChangeBody; reply: UserChanged };
  "DELETE /api/users/:username": { reply: null };
  "GET /api/tokens": { reply: Token[] };
  "POST /api/tokens": { body: NewTokenBody; reply: TokenCreated };
  "DELETE /api/tokens/:id": { reply: null };
  "GET /api/sites": { reply: Site[] };
  "POST /api/sites": { body: { name: string }; reply: SiteCreated };
  "POST /api/sites/:site/token": { reply: TokenRotated };
  "DELETE /api/sites/:site": { reply: null };
  "PATCH /api/sites/:site": { body: SiteChangeBody; reply: { name: string; recording: RecordingPolicy; recordInput: boolean } };
  "GET /api/sites/:site/vms": { reply: SiteVm[] };
  "GET /api/recordings": { query: RecordingQuery; reply: Recording[] };
  "GET /api/recordings/:id": { reply: RecordingDetail };
  "DELETE /api/recordings/:id": { reply: null };
  "POST /api/consoles": { body: ConsoleTarget; reply: ConsoleOpened };
  "POST /api/vnc-urls": { body: ConsoleTarget; reply: VncUrls };
  "GET /api/links": { reply: Link[] };
  "POST /api/links": { body: NewLinkBody; reply: LinkCreated };
  "DELETE /api/links/:id": { reply: null };
  "GET /l/:site/status": { reply: LinkStatus };
  "POST /l/:site/pin": { body: LinkPinBody; reply: LinkPass };
  "POST /l/:site/join": { body: LinkJoinBody; reply: LinkJoinAsked };
  "GET /l/:site/join/:id": { reply: LinkJoinState };
  "POST /api/links/:id/joins/:join/allow": { reply: LinkJoinAnswered };
  "POST /api/links/:id/joins/:join/deny": { reply: LinkJoinAnswered };
  "GET /api/sessions": { reply: LiveConsole[] };
  "DELETE /api/sessions/:id": { reply: null };
  "GET /api/groups": { reply: Group[] };
  "POST /api/groups": { body: { name: string }; reply: Group };
  "DELETE /api/groups/:group": { reply: null };
  "PUT /api/groups/:group/members/:username": { reply: Group };
  "DELETE /api/groups/:group/members/:username": { reply: Group };
  "GET /api/grants": { query: { user?: string; group?: string }; reply: Grant[] };
  "POST /api/grants": { body: NewGrantBody; reply: Grant };
  "DELETE /api/grants/:id": { reply: null };
  "GET /api/access-requests": { query: { status?: AccessRequest["status"] }; reply: AccessRequest[] };
  "POST /api/access-requests": { body: NewAccessRequestBody; reply: AccessRequest };
  "POST /api/access-requests/:id/approve": { body: { comment?: string }; reply: AccessRequest };
  "POST /api/access-requests/:id/deny": { body: { comment?: string }; reply: AccessRequest };
  "GET /api/audit": { query: AuditQuery; reply: AuditRow[] };
  "GET /api/signin-blocks": { reply: SignInBlock[] };
  "DELETE /api/signin-blocks": { query: { account?: string; address?: string }; reply: { cleared: number } };
}

export type Route = keyof Routes;
export type Reply<R extends Route> = Routes[R]["reply"];
export type Body<R extends Route> = Routes[R] extends { body: infer B } ? B : never;

/** The error every route answers with (400 … 504). */
export interface ErrorBody {
  error: { code: string; message: string };
}
