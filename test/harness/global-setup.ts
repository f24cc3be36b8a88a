/**
 * Starts the expensive real parts once for all end-to-end files: one Xvnc desktop and one
 * `wrangler dev` edge. Each test file creates its own site and connector on them.
 */
import type { TestProject } from "vitest/node";
import { type Edge, startEdge } from "./edge.ts";
import { killAll } from "./processes.ts";
import { type Desktop, startDesktop } from "./xvnc.ts";

declare module "vitest" {
  export interface ProvidedContext {
    edge: { url: string; username: string; password: string };
    desktop: { port: number; width: number; height: number };
  }
}

let edge: Edge | undefined;
let desktop: Desktop | undefined;

export async function setup(project: TestProject): Promise<void> {
  try {
    [desktop, edge] = await Promise.all([startDesktop(800, 600), startEdge()]);
  } catch (err) {
    // vitest runs no teardown when setup fails: stop what the other half started (a wrangler dev
    // still starting, an Xvnc already up) before reporting the failure.
    killAll();
    throw err;
  }
  project.provide("edge", { url: edge.url, username: edge.username, password: edge.password });
  project.provide("desktop", { port: desktop.port, width: desktop.width, height: desktop.height });
}

export async function teardown(): Promise<void> {
  // A reload restarts every Durable Object and drops every socket: tests that failed around it
  // failed for that, not for what they check. Something rewrote what wrangler dev watches (the
  // page's assets, worker/ sources) while the tests ran; say so instead of leaving a riddle.
  const reloaded = edge && /reload/i.test(edge.proc.output());
  await Promise.allSettled([edge?.stop(), desktop?.stop()]);
  killAll();
  if (reloaded) throw new Error("wrangler dev reloaded during the end-to-end tests: a file it watches (.build/assets, worker/) was rewritten meanwhile");
}
