/**
 * A real X desktop on a real VNC server (TigerVNC's Xvnc), with xlogo painting it so the
 * framebuffer has known colours: a red background with a blue logo.
 */
import { existsSync } from "node:fs";
import { freePort, portAnswers, type Proc, start, waitFor } from "./processes.ts";

export { portAnswers };

export interface Desktop {
  display: number;
  port: number;
  width: number;
  height: number;
  /** Everything Xvnc logged so far (its connection log: `Connections: accepted/closed/blacklisted`). */
  log(): string;
  /** SIGSTOP / SIGCONT: a VNC server that hangs (the kernel still accepts connections into its backlog). */
  freeze(): void;
  thaw(): void;
  stop(): Promise<void>;
}

export const DESKTOP_BACKGROUND = { r: 255, g: 0, b: 0 };

export function requireXvnc(): void {
  if (!existsSync("/usr/bin/Xvnc") || !existsSync("/usr/bin/xlogo")) {
    throw new Error("These tests need a real VNC desktop: apt-get install tigervnc-standalone-server x11-apps");
  }
}

function freeDisplay(): number {
  for (let n = 40 + Math.floor(Math.random() * 100); n < 400; n++) {
    if (!existsSync(`/tmp/.X11-unix/X${n}`) && !existsSync(`/tmp/.X${n}-lock`)) return n;
  }
  throw new Error("no free X display number");
}

export interface DesktopOptions {
  /** The desktop name viewers show. */
  name?: string;
  /** xlogo's colours; the tests look for the default red background. */
  background?: string;
  foreground?: string;
  /** Also a ticking xclock in the top right corner (the demo: the picture visibly updates). */
  clock?: boolean;
}

export async function startDesktop(
  width = 800,
  height = 600,
  { name = "porthole-test", background = "red", foreground = "blue", clock = false }: DesktopOptions = {},
): Promise<Desktop> {
  requireXvnc();
  const display = freeDisplay();
  const port = await freePort();
  const xvnc: Proc = start("Xvnc", [
    `:${display}`,
    "-geometry", `${width}x${height}`,
    "-depth", "24",
    "-SecurityTypes", "None",
    "-rfbport", String(port),
    "-localhost=1",
    "-AlwaysShared",
    "-desktop", name,
  ]);
  await waitFor("Xvnc", () => portAnswers(port), 20_000, xvnc);
  const logo = start("xlogo", ["-display", `:${display}`, "-geometry", `${width}x${height}+0+0`, "-bg", background, "-fg", foreground]);
  const ticking = clock ? start("xclock", ["-display", `:${display}`, "-geometry", `220x220+${width - 234}+10`, "-update", "1"]) : null;
  // Give xlogo a moment to map its window and paint.
  await new Promise((r) => setTimeout(r, 700));
  return {
    display,
    port,
    width,
    height,
    log: () => xvnc.output(),
    freeze: () => process.kill(xvnc.child.pid!, "SIGSTOP"),
    thaw: () => process.kill(xvnc.child.pid!, "SIGCONT"),
    async stop() {
      try {
        process.kill(xvnc.child.pid!, "SIGCONT"); // a frozen server could not exit
      } catch {}
      await ticking?.stop();
      await logo.stop();
      await xvnc.stop();
    },
  };
}
