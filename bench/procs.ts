/** Memory of process trees, read from /proc. */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

function readOr(path: string, fallback = ""): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return fallback;
  }
}

/** The process and all its descendants. */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readOr(`/proc/${entry}/stat`);
    // pid (comm) state ppid …; comm may contain spaces and parentheses.
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid)!.push(Number(entry));
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length) {
    const pid = todo.pop()!;
    out.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

export function comm(pid: number): string {
  return readOr(`/proc/${pid}/comm`).trim();
}

/** Resident set size in bytes (0 if the process is gone). */
export function rss(pid: number): number {
  const m = readOr(`/proc/${pid}/status`).match(/^VmRSS:\s+(\d+) kB/m);
  return m ? Number(m[1]) * 1024 : 0;
}

/** Proportional set size in bytes: shared pages split between the processes sharing them. */
export function pss(pid: number): number {
  const m = readOr(`/proc/${pid}/smaps_rollup`).match(/^Pss:\s+(\d+) kB/m);
  return m ? Number(m[1]) * 1024 : 0;
}

export interface TreeMemory {
  processes: number;
  rss: number;
  pss: number;
}

/** Memory of a process tree. */
export function treeMemory(root: number): TreeMemory {
  const pids = descendants(root);
  return { processes: pids.length, rss: pids.reduce((a, p) => a + rss(p), 0), pss: pids.reduce((a, p) => a + pss(p), 0) };
}

/**
 * CPU time (user + system) a process has used, in seconds; with `reaped`, also what its children
 * that have exited and been waited for used.
 */
export function cpuSeconds(pid: number, reaped = false): number {
  const stat = readOr(`/proc/${pid}/stat`);
  if (!stat) return 0;
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields after comm: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14); clock ticks of 1/100 s.
  return (Number(f[11]) + Number(f[12]) + (reaped ? Number(f[13]) + Number(f[14]) : 0)) / 100;
}

/** CPU seconds of a process tree, including children that already exited and were reaped. */
export function treeCpuSeconds(root: number): number {
  let total = cpuSeconds(root, true);
  for (const pid of descendants(root)) if (pid !== root) total += cpuSeconds(pid, true);
  return total;
}

/** TCP ports a process listens on (IPv4), from /proc: no `ss` needed. */
export function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  let fds: string[] = [];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return [];
  }
  for (const fd of fds) {
    try {
      const m = readlinkSync(`/proc/${pid}/fd/${fd}`).match(/^socket:\[(\d+)\]$/);
      if (m) inodes.add(m[1]!);
    } catch {}
  }
  const ports: number[] = [];
  for (const line of readOr(`/proc/${pid}/net/tcp`).split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[3] !== "0A") continue; // 0A: LISTEN
    if (inodes.has(f[9]!)) ports.push(Number.parseInt(f[1]!.split(":")[1]!, 16));
  }
  return ports;
}

export function cmdline(pid: number): string {
  return readOr(`/proc/${pid}/cmdline`).split("\0").join(" ").trim();
}

/** Seconds a process's main thread has waited on a run queue for a CPU (/proc/<pid>/schedstat). */
export function runQueueSeconds(pid: number): number {
  const f = readOr(`/proc/${pid}/schedstat`).trim().split(/\s+/);
  return f.length >= 2 ? Number(f[1]) / 1e9 : 0;
}

/** A process's environment (empty if unreadable). */
export function environ(pid: number): Record<string, string> {
  return Object.fromEntries(
    readOr(`/proc/${pid}/environ`)
      .split("\0")
      .filter((kv) => kv.includes("="))
      .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
  );
}

/** The whole machine's CPU seconds, busy and in all (every core), from /proc/stat. */
export function machineCpuSeconds(): { busy: number; total: number } {
  const f = readOr("/proc/stat").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal …: idle and iowait are the idle ones.
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: (total - f[3]! - f[4]!) / 100, total: total / 100 };
}
