/**
 * CPU profiles for `npm run bench -- --profile`: the edge's isolate through wrangler dev's
 * inspector (Chrome DevTools Protocol), the connector through its own inspector (SIGUSR1), and a
 * summary of self time per function so the report can say where the time goes.
 */
import WebSocket from "ws";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** A Chrome DevTools Protocol session. */
export class Cdp {
  private readonly ws: WebSocket;
  private next = 1;
  private readonly waiting = new Map<number, (r: { result?: unknown; error?: unknown }) => void>();

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on("message", (d: Buffer) => {
      const m = JSON.parse(d.toString()) as { id?: number; result?: unknown; error?: unknown };
      if (m.id !== undefined) this.waiting.get(m.id)?.(m);
    });
  }

  static open(url: string): Promise<Cdp> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1 << 30 });
      ws.once("open", () => resolve(new Cdp(ws)));
      ws.once("error", reject);
    });
  }

  call<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, (m) => {
        this.waiting.delete(id);
        if (m.error) reject(new Error(`${method}: ${JSON.stringify(m.error)}`));
        else resolve(m.result as T);
      });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  close(): void {
    this.ws.close();
  }
}

/** The inspector port `wrangler dev` was started with (the test harness picks a free one). */
export function wranglerInspectorPort(spawnargs: readonly string[]): number {
  return Number(spawnargs[spawnargs.indexOf("--inspector-port") + 1]);
}

/** The first debuggable target an inspector lists (`http://host:port/json`). */
export async function inspectorTarget(port: number): Promise<string> {
  const list = (await (await fetch(`http://127.0.0.1:${port}/json`)).json()) as { webSocketDebuggerUrl: string }[];
  if (!list[0]) throw new Error(`no inspector target on port ${port}`);
  return list[0].webSocketDebuggerUrl;
}

/** Samples CPU in the target while `during` runs. */
export async function profileWhile<T>(wsUrl: string, during: () => Promise<T>): Promise<{ value: T; profile: CpuProfile }> {
  const cdp = await Cdp.open(wsUrl);
  try {
    await cdp.call("Profiler.enable");
    await cdp.call("Profiler.setSamplingInterval", { interval: 200 });
    await cdp.call("Profiler.start");
    const value = await during();
    const { profile } = await cdp.call<{ profile: CpuProfile }>("Profiler.stop");
    await cdp.call("Profiler.disable");
    return { value, profile };
  } finally {
    cdp.close();
  }
}

export interface HotFunction {
  name: string;
  where: string;
  selfMs: number;
  share: number;
}

/** Self time per function, largest first. */
export function hotFunctions(profile: CpuProfile, top = 15): { totalMs: number; idleMs: number; functions: HotFunction[] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const byName = new Map<string, { name: string; where: string; us: number }>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    total += us;
    if (f.functionName === "(idle)") {
      idle += us;
      continue;
    }
    const where = f.url ? `${f.url.replace(/^.*\/(?=[^/]+\/[^/]+$)/, "")}:${f.lineNumber + 1}` : "";
    const key = `${f.functionName}@${where}`;
    const entry = byName.get(key) ?? { name: f.functionName || "(anonymous)", where, us: 0 };
    entry.us += us;
    byName.set(key, entry);
  }
  const busy = total - idle;
  const functions = [...byName.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((e) => ({ name: e.name, where: e.where, selfMs: e.us / 1000, share: busy ? e.us / busy : 0 }));
  return { totalMs: total / 1000, idleMs: idle / 1000, functions };
}

/** Opens a Node process's inspector (SIGUSR1) and returns its target URL. */
export async function nodeInspector(pid: number, output: () => string): Promise<string> {
  process.kill(pid, "SIGUSR1");
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const m = output().match(/Debugger listening on (ws:\/\/\S+)/);
    if (m) return m[1]!;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the process did not open its inspector");
}
