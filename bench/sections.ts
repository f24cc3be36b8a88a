/**
 * The benchmark's sections. Each is a name, its lanes (a path, or a path and a kind of client),
 * a setup, a measurement of one lane in one run, and a verdict against its target. The runner
 * interleaves lanes run by run (rotating their order), so machine noise hits them alike.
 *
 * This file: the runner and the list. What sections share is `section-kit.ts`; the relay sections
 * (throughput, latency, keys, compression) are `sections-relay.ts`, the load sections (cost,
 * scale, stall) `sections-load.ts`, one site's capacity `sections-capacity.ts`.
 */
import { compression, keys, latency, throughput } from "./sections-relay.ts";
import { cost, scale, stall } from "./sections-load.ts";
import { capacity } from "./sections-capacity.ts";
import { type Config, type Lanes, log, type Results, type Section, type SectionName } from "./section-kit.ts";
import type { World } from "./paths.ts";

export { configFor, type CostRow, type Lanes, type LatencyRow, log, ratioOf, type Results, type SectionName } from "./section-kit.ts";
export { STREAMS } from "./sections-relay.ts";
export { allOpened, connectorPerConsole, COST_RATE, scaleDelta, stallGrowth, stallMet } from "./sections-load.ts";
export { DELIVERED_MIN, ECHO_P99_MAX_MS, held, LATE_P99_MAX_MS, typicalRate, why } from "./sections-capacity.ts";

const rotate = <T>(xs: T[], by: number) => xs.map((_, i) => xs[(i + by) % xs.length]!);

/**
 * Runs a group of sections for their runs (throughput and latency alternate run by run); in each
 * run every section measures every lane, in an order rotated from run to run.
 */
export async function runSections(sections: Section<unknown>[], w: World, c: Config, results: Results, afterRun: () => void): Promise<void> {
  if (sections.length === 0) return;
  for (const s of sections) await s.setup?.(w);
  for (let r = 0; r < Math.max(...sections.map((s) => s.runs(c))); r++) {
    for (const s of sections.filter((x) => r < x.runs(c))) {
      for (const lane of rotate(s.lanes(w, c), r)) {
        const what = `${s.name} run ${r + 1} ${lane}`;
        try {
          const row = await s.measure(w, lane, c);
          ((results[s.name] as Lanes<unknown>)[lane] ??= []).push(row);
          log(`${what}: ${s.line(row)}`);
        } catch (err) {
          results.errors.push(`${what}: ${String(err)}`);
          log(`${what} FAILED: ${String(err)}`);
        }
      }
    }
    afterRun();
  }
}

// ---- sections ---------------------------------------------------------------------------------------

export const SECTIONS = { throughput, latency, keys, compression, cost, stall, scale, capacity } as Record<SectionName, Section<unknown>>;
/** In the order they run: the first two share their runs; each later one runs alone (capacity last: it loads the edge most). */
export const ORDER: SectionName[][] = [["throughput", "latency"], ["keys"], ["compression"], ["cost"], ["stall"], ["scale"], ["capacity"]];
