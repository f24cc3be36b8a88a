/**
 * The recording player (`/player#<recording id>`; admins and auditors, as the API decides): the
 * console page's own noVNC decoder, fed from a recording instead of a socket (docs/recording.md).
 *
 * noVNC takes any WebSocket-like channel. `ReplayChannel` plays the server's side of an RFB 3.8
 * handshake with security None (the recording never holds the real one), then hands noVNC the
 * recorded console bytes, ServerInit first, as the Position reaches their times. Whatever noVNC
 * sends after its ClientInit (pixel format, encodings, update requests) is ignored.
 *
 * Seeking forward feeds everything up to the new Position at once. Seeking back starts a fresh
 * decoder and replays from the start at full speed: noVNC's Tight and ZRLE decoders carry zlib
 * state from the first byte on, which cannot be copied out, so the only keyframe the player can
 * make is the start (Guacamole's keyframes work because its drawing instructions carry no such
 * state). Idle stretches (nothing for more than IDLE_SKIP_MS) are skipped while playing.
 */
import RFB from "@novnc/novnc";
import { ApiFailure, apiClient } from "../../shared/api/client.ts";
import { clock, type Timeline, timeline, verifyChain } from "./player-timeline.ts";

const IDLE_SKIP_MS = 2000;
const TICK_MS = 100;

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const playButton = $<HTMLButtonElement>("play");
const speedSelect = $<HTMLSelectElement>("speed");
const position = $<HTMLInputElement>("position");
const timeText = $("time");
const skipIdle = $<HTMLInputElement>("skip-idle");
const status = $("status");
const verdict = $("verdict");
const screenEl = $("screen");
const marksEl = $("marks");

const api = apiClient({ init: () => ({ cache: "no-store", credentials: "same-origin" }) });

/** The server's side of a console, played from a recording. */
class ReplayChannel {
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onclose: ((ev: CloseEvent) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;
  #state: number = WebSocket.CONNECTING;
  #sent = 0;
  #onReady: () => void;

  constructor(onReady: () => void) {
    this.#onReady = onReady;
    setTimeout(() => {
      this.#state = WebSocket.OPEN;
      this.onopen?.(new Event("open"));
      this.push(new TextEncoder().encode("RFB 003.008\n"));
    });
  }
  get protocol(): string {
    return "";
  }
  get readyState(): number {
    return this.#state;
  }
  get binaryType(): string {
    return "arraybuffer";
  }
  set binaryType(_: string) {
    // always arraybuffer
  }
  /**
   * noVNC's handshake, one message per step: version, security choice, ClientInit. Answered in a
   * task of its own: noVNC sends from inside its message handler, which must not be re-entered.
   */
  send(_: unknown): void {
    const step = ++this.#sent;
    setTimeout(() => {
      if (step === 1) this.push(Uint8Array.from([1, 1])); // one security type: None
      else if (step === 2) this.push(Uint8Array.from([0, 0, 0, 0])); // SecurityResult OK
      else if (step === 3) this.#onReady();
    });
  }
  close(): void {
    this.#state = WebSocket.CLOSED;
  }
  push(bytes: Uint8Array): void {
    if (this.#state !== WebSocket.OPEN) return;
    this.onmessage?.(new MessageEvent("message", { data: bytes.slice().buffer }));
  }
}

class Player {
  #t: Timeline;
  #rfb: RFB | null = null;
  #channel: ReplayChannel | null = null;
  /** The next chunk to hand the decoder, and the time the decoder shows. */
  #fed = 0;
  #pos = 0;
  #ready: Promise<void> = Promise.resolve();
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(t: Timeline) {
    this.#t = t;
  }

  get position(): number {
    return this.#pos;
  }
  get playing(): boolean {
    return this.#timer !== null;
  }

  /** A fresh decoder at time 0 (the player's one keyframe). */
  #restart(): Promise<void> {
    this.#rfb?.disconnect();
    screenEl.replaceChildren();
    this.#fed = 0;
    this.#pos = 0;
    this.#ready = new Promise<void>((resolve) => {
      this.#channel = new ReplayChannel(resolve);
      this.#rfb = new RFB(screenEl, this.#channel as unknown as WebSocket, { shared: true });
      this.#rfb.viewOnly = true;
      this.#rfb.scaleViewport = true;
    });
    return this.#ready;
  }

  async start(): Promise<void> {
    await this.#restart();
  }

  async seek(ms: number): Promise<void> {
    const target = Math.max(0, Math.min(ms, this.#t.duration));
    if (target < this.#pos) await this.#restart();
    await this.#ready;
    const chunks = this.#t.chunks;
    while (this.#fed < chunks.length && chunks[this.#fed]!.ms <= target) this.#channel!.push(chunks[this.#fed++]!.bytes);
    this.#pos = target;
    show();
  }

  play(): void {
    if (this.#timer !== null) return;
    if (this.#pos >= this.#t.duration) void this.seek(0);
    this.#timer = setInterval(() => void this.#tick(), TICK_MS);
    show();
  }

  pause(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    show();
  }

  async #tick(): Promise<void> {
    let next = this.#pos + TICK_MS * Number(speedSelect.value);
    const upcoming = this.#t.chunks[this.#fed];
    if (skipIdle.checked && upcoming && upcoming.ms - this.#pos > IDLE_SKIP_MS) next = Math.max(next, upcoming.ms);
    await this.seek(next);
    if (this.#pos >= this.#t.duration) this.pause();
  }
}

let player: Player | null = null;
let duration = 0;

function show(): void {
  if (!player) return;
  playButton.textContent = player.playing ? "Pause" : "Play";
  position.value = String(player.position);
  timeText.textContent = `${clock(player.position)} / ${clock(duration)}`;
  document.body.dataset.position = String(player.position);
}

function showMarks(t: Timeline): void {
  marksEl.replaceChildren();
  for (const m of t.marks) {
    const tick = document.createElement("button");
    tick.type = "button";
    tick.className = `mark mark-${m.kind}`;
    tick.title = `${m.label} (${clock(m.ms)})`;
    tick.setAttribute("aria-label", tick.title);
    // Set through the CSSOM: the page's CSP allows no inline style attributes.
    tick.style.left = `${t.duration > 0 ? (100 * m.ms) / t.duration : 0}%`;
    tick.addEventListener("click", () => void player?.seek(m.ms));
    marksEl.append(tick);
  }
}

async function load(): Promise<void> {
  const id = decodeURIComponent(location.hash.replace(/^#/, ""));
  if (!id) throw new Error("No recording named in the address (#<id>).");
  const rec = await api.call("GET /api/recordings/:id", { params: { id } });
  const res = await fetch(`/api/recordings/${encodeURIComponent(id)}/file`, { credentials: "same-origin", cache: "no-store" });
  if (!res.ok) throw new Error(`The recording's file could not be read (${res.status}).`);
  const file = new Uint8Array(await res.arrayBuffer());
  const t = timeline(file);
  duration = t.duration;
  $("title").textContent = `${rec.vm} on ${rec.site} / ${rec.hypervisor}, ${rec.user ?? `share link ${rec.linkId ?? ""}`}, ${new Date(rec.startedAt).toLocaleString()}`;
  $<HTMLAnchorElement>("download").href = `/api/recordings/${encodeURIComponent(id)}/file`;
  const verified = await verifyChain(file, rec.segmentBytes, rec.chain);
  verdict.textContent =
    verified === true
      ? `The SHA-256 chain verifies (${rec.segments} segments).`
      : verified === false
        ? "The SHA-256 chain does NOT verify: this file differs from what was recorded."
        : "This recording has no chain to verify.";
  verdict.dataset.verified = String(verified);
  if (rec.state !== "complete") verdict.textContent += ` The recording is ${rec.state}.`;
  position.max = String(t.duration);
  position.disabled = false;
  showMarks(t);
  player = new Player(t);
  await player.start();
  await player.seek(0);
  playButton.disabled = false;
  status.textContent = "Ready";
}

playButton.addEventListener("click", () => (player?.playing ? player.pause() : player?.play()));
position.addEventListener("input", () => void player?.seek(Number(position.value)));

load().catch((err: unknown) => {
  status.textContent = err instanceof ApiFailure ? err.message : err instanceof Error ? err.message : String(err);
  document.body.dataset.state = "failed";
});
