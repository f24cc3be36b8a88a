/**
 * Child processes for tests, the demo and the benchmark: output kept for failure messages (and
 * echoed with a prefix when asked), all of them killed at the end.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { connect, createServer } from "node:net";

const running = new Map<ChildProcess, Proc>();
/** Called when any child exits, whoever stopped it (see `stopAllOnExit`). */
const exitListeners = new Set<(name: string, code: number | null, signal: NodeJS.Signals | null) => void>();

export interface Proc {
  child: ChildProcess;
  /** Everything the process printed so far (stdout and stderr). */
  output(): string;
  /** Resolves with the exit code once it exits. */
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartOptions {
  /** Also print the child's output, each line prefixed with `[echo] ` (the demo shows its parts' logs). */
  echo?: string;
}

/**
 * wrangler dev logs each request's path. An old-style share link (`/l/<site>/<secret>`, still
 * redirected by the edge) carries its live secret there, so what the harness keeps and echoes (the
 * demo's terminal, test failure output) shows `/l/<site>/…` instead.
 */
export function redactSecrets(text: string): string {
  return text.replace(/(\/l\/[^\s/]+\/)(?!status\b)[^\s/?#]+/g, "$1…");
}

export function start(command: string, args: string[], env: NodeJS.ProcessEnv = {}, { echo }: StartOptions = {}): Proc {
  const child = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let out = "";
  const keep = (d: Buffer) => {
    const text = redactSecrets(d.toString());
    out += text;
    if (out.length > 200_000) out = out.slice(-100_000);
    if (echo) process.stdout.write(text.replace(/^(?=.)/gm, `[${echo}] `));
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code, signal) => {
      running.delete(child);
      resolve(code);
      for (const listener of exitListeners) listener(echo ?? command, code, signal);
    });
  });
  const proc: Proc = {
    child,
    output: () => out,
    exited,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      try {
        process.kill(-child.pid!, signal);
      } catch {
        child.kill(signal);
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, "SIGKILL");
        } catch {}
      }, 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  running.set(child, proc);
  return proc;
}

/** Stops every process started here that is still running, gracefully (`signal`, then SIGKILL after 10 s). */
export async function stopAll(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  await Promise.allSettled([...running.values()].map((p) => p.stop(signal)));
}

/**
 * For a script whose children make one whole (the demo): Ctrl-C, SIGTERM or any child exiting on
 * its own stops everything. `before` runs first (stopping what is not a child process, or stopping a
 * child its own way), then every child still running is stopped and the script exits. Returns the
 * shutdown function, for the script's own failures.
 */
export function stopAllOnExit(before: () => Promise<unknown>): (code: number) => Promise<void> {
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    exitListeners.clear();
    await before().catch(() => {});
    await stopAll();
    process.exit(code);
  };
  exitListeners.add((name, code, signal) => {
    console.error(`[${name}] exited (${signal ?? code}); stopping everything.`);
    void shutdown(1);
  });
  process.on("SIGINT", () => void shutdown(0));
  process.on("SIGTERM", () => void shutdown(0));
  return shutdown;
}

/** Kills every process started here that is still running (each with its process group). */
export function killAll(): void {
  for (const child of running.keys()) {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {}
  }
}

// Children run detached (in their own process group, so a stop reaches their children too), which
// also means they outlive this process: however it ends, take them along.
process.once("exit", killAll);

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Whether something accepts TCP connections on the port (undefined if not: a `waitFor` probe). */
export function portAnswers(port: number, host = "127.0.0.1"): Promise<boolean | undefined> {
  return new Promise((resolve) => {
    const s = connect({ port, host }, () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(undefined));
  });
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000, proc?: Proc): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    if (proc && proc.child.exitCode !== null) {
      throw new Error(`${what}: process exited with ${proc.child.exitCode}\n${proc.output()}`);
    }
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (${String(last)})` : ""}${proc ? `\n${proc.output()}` : ""}`);
}
