/**
 * Waiting to be let in through a share link that asks first, for every client that does it: the
 * console page (worker/page/console-target.ts) and `porthole listen` (connector/cli/listen.ts).
 * After `POST /l/:site/join`, look at `GET /l/:site/join/:id` every `every` ms until someone in
 * control answers or the edge's deadline passes. The secret and the request's token travel in
 * headers, never in a URL.
 */
import { ApiFailure, type ApiClient } from "./client.ts";
import type { LinkJoinAsked, LinkJoinState } from "./types.ts";

/** How often a waiting viewer looks. */
export const JOIN_LOOK_MS = 1000;
/** How long past the deadline a viewer that cannot reach the edge keeps trying: the answer can then only be no. */
const UNREACHABLE_GRACE_MS = 60_000;

export interface LookOptions {
  /** Default: setTimeout. */
  sleep?: (ms: number) => Promise<void>;
  every?: number;
  /** Before each look: the whole seconds left before no answer means no. */
  waiting?: (secondsLeft: number) => void;
}

/**
 * The request's final state: `allowed` (with the socket's `pass`), `denied`, `timed_out`, `ended`
 * or `used`. A refusal (the link ended, the request is unknown) is thrown as the edge's
 * ApiFailure; so is the edge's silence once it lasted UNREACHABLE_GRACE_MS past the deadline.
 * Trouble before that (network, 5xx) is looked past: the answer waits at the edge.
 */
export async function lookUntilAnswered(api: Pick<ApiClient, "call">, site: string, secret: string, asked: LinkJoinAsked, options: LookOptions = {}): Promise<LinkJoinState> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const deadline = Date.parse(asked.expiresAt);
  const headers = { "X-Porthole-Link": secret, "X-Porthole-Join": asked.token };
  for (;;) {
    options.waiting?.(Math.max(0, Math.ceil((deadline - Date.now()) / 1000)));
    await sleep(options.every ?? JOIN_LOOK_MS);
    let state: LinkJoinState;
    try {
      state = await api.call("GET /l/:site/join/:id", { params: { site, id: asked.id }, headers });
    } catch (err) {
      const transient = !(err instanceof ApiFailure) || err.status === 0 || err.status >= 500;
      if (transient && Date.now() <= deadline + UNREACHABLE_GRACE_MS) continue;
      throw err;
    }
    if (state.state !== "waiting") return state;
  }
}
