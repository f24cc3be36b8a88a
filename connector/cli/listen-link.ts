/**
 * What a share link asks of `porthole listen` before each connection's socket: its PIN (`--pin`, or
 * asked on the terminal, checked once before listening and then traded for a fresh single-use pass
 * per connection) and, for a link that asks before each viewer joins, a name (`--name`) and a wait
 * until someone in control allows this connection. The PIN and the passes never go in a URL the
 * edge logs, only in bodies and the socket's single-use `pass`.
 */
import { ApiFailure, type ApiClient } from "../../shared/api/client.ts";
import { lookUntilAnswered } from "../../shared/api/link-join.ts";
import type { LinkStatus } from "../../shared/api/types.ts";
import { JOIN_NAME_MAX } from "../../shared/protocol/limits.ts";

/** A refusal the person can act on (a wrong PIN with no terminal to ask again, a denial). */
export class LinkGateError extends Error {}

export interface GateOptions {
  pin?: string;
  name?: string;
  /** Asks on the terminal; absent when there is none (the PIN must then come with --pin). */
  prompt?: (question: string) => Promise<string>;
  /** Progress lines ("waiting for someone in control …"). */
  say: (line: string) => void;
}

/** The default name a listening viewer gives: the person's login on this machine. */
export function defaultName(user: string | undefined, host: string): string {
  return `${user || "someone"} on ${host} (porthole listen)`.slice(0, JOIN_NAME_MAX);
}

export class LinkGate {
  private readonly api: Pick<ApiClient, "call">;
  private readonly site: string;
  private readonly secret: string;
  private readonly status: LinkStatus;
  private readonly options: GateOptions;
  private pin: string | null = null;
  /** The pass the PIN's check before listening gave: the first connection's (60 s). */
  private spare: { pass: string; until: number } | null = null;

  constructor(api: Pick<ApiClient, "call">, site: string, secret: string, status: LinkStatus, options: GateOptions) {
    this.api = api;
    this.site = site;
    this.secret = secret;
    this.status = status;
    this.options = options;
  }

  private get headers() {
    return { "X-Porthole-Link": this.secret };
  }

  /** What the summary line adds: "asks for a PIN", "asks before each viewer joins". */
  describe(): string {
    return [this.status.pin ? ", with its PIN" : "", this.status.approval ? ", each connection waits to be let in" : ""].join("");
  }

  /**
   * Before listening: a link with a PIN gets it (--pin, else the terminal, again after a wrong one
   * with the edge's words) and checks it now, so a wrong PIN fails here and not at the viewer.
   */
  async prepare(): Promise<void> {
    if (!this.status.pin) return;
    let pin = this.options.pin ?? null;
    for (;;) {
      if (pin === null) {
        if (!this.options.prompt) throw new LinkGateError("this share link needs its PIN: give it with --pin (whoever shared the link has it)");
        pin = (await this.options.prompt(`PIN for the share link to ${this.status.vm}: `)).trim();
      }
      try {
        const { pass, expiresAt } = await this.api.call("POST /l/:site/pin", { params: { site: this.site }, headers: this.headers, body: { pin } });
        this.pin = pin;
        this.spare = { pass, until: Date.parse(expiresAt) - 5_000 };
        return;
      } catch (err) {
        const wrong = err instanceof ApiFailure && (err.status === 403 || err.status === 400) && err.fromEdge;
        if (!wrong) throw err;
        if (!this.options.prompt) throw new LinkGateError(`the PIN was refused: ${err.message}`);
        this.options.say(err.message);
        pin = null;
      }
    }
  }

  /** The `&pass=` for one connection's socket ("" when the link needs none); waits to be let in when it asks first. */
  async passFor(label: string): Promise<string> {
    let pass = this.status.pin ? await this.pinPass() : null;
    if (this.status.approval) pass = await this.letIn(label, pass);
    return pass ? `&pass=${encodeURIComponent(pass)}` : "";
  }

  private async pinPass(): Promise<string> {
    const spare = this.spare;
    this.spare = null;
    if (spare && Date.now() < spare.until) return spare.pass;
    const { pass } = await this.api.call("POST /l/:site/pin", { params: { site: this.site }, headers: this.headers, body: { pin: this.pin ?? "" } });
    return pass;
  }

  private async letIn(label: string, pinPass: string | null): Promise<string> {
    const name = this.options.name ?? "someone (porthole listen)";
    const asked = await this.api.call("POST /l/:site/join", { params: { site: this.site }, headers: this.headers, body: { name, ...(pinPass ? { pass: pinPass } : {}) } });
    this.options.say(`${label}: asked to join as "${name}"; waiting for someone in control of ${asked.vm} to let it in (no answer in 2 minutes means no)`);
    const state = await lookUntilAnswered(this.api, this.site, this.secret, asked);
    if (state.state !== "allowed" || !state.pass) throw new LinkGateError(state.message);
    this.options.say(`${label}: let in`);
    return state.pass;
  }
}
