/**
 * A real X desktop on a real VNC server (TigerVNC's Xvnc), with xlogo painting it so the
 * framebuffer has known colours: a red background with a blue logo.
 */
import { existsSync } from "node:fs";
import { connect } from "node:net";
import { freePort, type Proc, start, waitFor } from "./processes.ts";

export interface Desktop {
  display: number;
  port: number;
  width: number;
  height: number;
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

export function portAnswers(port: number, host = "127.0.0.1"): Promise<boolean | undefined> {
  return new Promise((resolve) => {
    const s = connect({ port, host }, () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(undefined));
  });
}

export async function startDesktop(width = 800, height = 600): Promise<Desktop> {
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
    "-desktop", "porthole-test",
  ]);
  await waitFor("Xvnc", () => portAnswers(port), 20_000, xvnc);
  const logo = start("xlogo", ["-display", `:${display}`, "-geometry", `${width}x${height}+0+0`, "-bg", "red", "-fg", "blue"]);
  // Give xlogo a moment to map its window and paint.
  await new Promise((r) => setTimeout(r, 700));
  return {
    display,
    port,
    width,
    height,
    async stop() {
      await logo.stop();
      await xvnc.stop();
    },
  };
}
