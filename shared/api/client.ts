/**
 * The one client of the edge's HTTP API, for the operator app, the console page, `porthole listen`
 * and the test harnesses (browser, Node ≥ 20 and workerd: only `fetch`). Calls are named by their
 * route (`api.call("GET /api/sites/:site/vms", { params: { site } })`), so body, path parameters
 * and reply are typed from `types.ts`; path parameters are encoded here. A reply that is not 2xx
 * becomes an `ApiFailure` whose message is the edge's own sentence (`{"error":{"code","message"}}`).
 */
import type { Route, Routes } from "./types.ts";

/** An API call that did not succeed: `message` is the edge's own sentence when it sent one. */
export class ApiFailure extends Error {
  /** 0: the edge could not be reached (`cause` says why). */
  readonly status: number;
  readonly code: string;
  /** The message is the edge's own words (not one made up from the status). */
  readonly fromEdge: boolean;
  constructor(status: number, code: string, message: string, fromEdge = false, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.status = status;
    this.code = code;
    this.fromEdge = fromEdge;
  }
}

type PathOf<R extends Route> = R extends `${string} ${infer P}` ? P : never;
type ParamNames<P extends string> = P extends `${string}:${infer N}/${infer Rest}` ? N | ParamNames<Rest> : P extends `${string}:${infer N}` ? N : never;

/** What a call of route `R` is given: path parameters, body and query as the route takes them. */
export type CallInput<R extends Route> = ([ParamNames<PathOf<R>>] extends [never] ? { params?: undefined } : { params: Record<ParamNames<PathOf<R>>, string> }) &
  (Routes[R] extends { body: infer B } ? { body: B } : { body?: undefined }) &
  (Routes[R] extends { query: infer Q } ? { query?: Q } : { query?: undefined }) & {
    /** Extra headers for this call (e.g. a share link's secret). */
    headers?: Record<string, string>;
  };

/** The input is optional for routes that take nothing. */
type Args<R extends Route> = {} extends CallInput<R> ? [input?: CallInput<R>] : [input: CallInput<R>];

export interface Answer<T> {
  status: number;
  statusText: string;
  headers: Headers;
  body: T;
}

type Fetch = (url: string, init: RequestInit) => Promise<Response>;

export interface ClientOptions {
  /** The edge's origin (`https://edge.example.com`); "" in the browser, same origin. */
  base?: string;
  /** Sent with every call: an API token, a cookie, a User-Agent. Asked per call (a cookie changes). */
  headers?: () => Record<string, string>;
  /** More of every request: `cache`, `credentials`, a timeout's `signal`. */
  init?: () => RequestInit;
  /** workerd's `exports.default.fetch` in the Workers pool; the global `fetch` otherwise. */
  fetch?: Fetch;
  /** Hears every failure before it is thrown (the app returns to sign-in on a 401). */
  onFailure?: (failure: ApiFailure, route: Route) => void;
}

/** `/api/sites/:site/vms` with `{site: "a b"}` → `/api/sites/a%20b/vms`. */
export function routePath<R extends Route>(route: R, input?: CallInput<R>): string {
  let path = route.slice(route.indexOf(" ") + 1).replace(/:([A-Za-z]+)/g, (_, name: string) => encodeURIComponent((input?.params as Record<string, string>)[name]!));
  const query = input?.query as Record<string, string | number | undefined> | undefined;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== "") q.set(k, String(v));
    if (q.size) path += `?${q}`;
  }
  return path;
}

export type ApiClient = ReturnType<typeof apiClient>;

export function apiClient(options: ClientOptions = {}) {
  const base = options.base ?? "";
  const doFetch: Fetch = options.fetch ?? ((url, init) => fetch(url, init));

  /** Any request, answered whatever its status (tests of refusals, a `Link` the edge gave). */
  async function send(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer<unknown>> {
    const res = await doFetch(base + path, {
      ...options.init?.(),
      method,
      headers: { ...(body === undefined ? {} : { "Content-Type": "application/json" }), ...options.headers?.(), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, statusText: res.statusText, headers: res.headers, body: json };
  }

  /** The whole answer of a typed call, for the calls that need headers (`Link`, `Set-Cookie`). */
  async function answer<R extends Route>(route: R, ...[input]: Args<R>): Promise<Answer<Routes[R]["reply"]>> {
    const method = route.slice(0, route.indexOf(" "));
    let res: Answer<unknown>;
    try {
      res = await send(method, routePath(route, input), input?.body, input?.headers);
    } catch (err) {
      const failure = new ApiFailure(0, "network", "Porthole's edge could not be reached: check the network and try again.", false, err);
      options.onFailure?.(failure, route);
      throw failure;
    }
    if (res.status < 200 || res.status > 299) {
      const error = (res.body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
      const fromEdge = typeof error?.message === "string";
      const message = fromEdge ? (error!.message as string) : `The edge answered ${res.status} ${res.statusText}.`;
      const failure = new ApiFailure(res.status, typeof error?.code === "string" ? error.code : `http_${res.status}`, message, fromEdge);
      options.onFailure?.(failure, route);
      throw failure;
    }
    return res as Answer<Routes[R]["reply"]>;
  }

  return {
    send,
    answer,
    /** A typed call's reply; throws `ApiFailure` unless 2xx. */
    async call<R extends Route>(route: R, ...input: Args<R>): Promise<Routes[R]["reply"]> {
      return (await answer(route, ...input)).body;
    },
  };
}
