/** Small statistics for the report: percentiles of samples, medians and spreads of runs. */

/** Nearest-rank percentile (p in 0..100) of unsorted samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export function median(values: readonly number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/** Median of the runs and their range: what the report prints for every figure. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  runs: number;
}

export function summarize(values: readonly number[]): Summary {
  const v = values.filter((x) => Number.isFinite(x));
  return {
    median: median(v),
    min: v.length ? Math.min(...v) : Number.NaN,
    max: v.length ? Math.max(...v) : Number.NaN,
    runs: v.length,
  };
}

/** The summary of one figure of a path's runs. */
export function pick<T>(rows: T[] | undefined, f: (row: T) => number): Summary {
  return summarize((rows ?? []).map(f));
}

/** Values of two paths' rows paired run by run (both lists are in run order). */
export function pairwise<A, B>(a: A[] | undefined, b: B[] | undefined, f: (x: A, y: B) => number): number[] {
  const out: number[] = [];
  for (let i = 0; i < Math.min(a?.length ?? 0, b?.length ?? 0); i++) out.push(f(a![i]!, b![i]!));
  return out;
}
