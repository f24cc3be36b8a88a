/**
 * Time travel for tests in the Workers pool: the test and the Durable Objects share one isolate,
 * so `Date.now` seen by the objects is the test's. `later(ms, run)` runs `run` as if `ms` had
 * passed, and always puts the clock back.
 */
export async function later<T>(ms: number, run: () => Promise<T>): Promise<T> {
  const realNow = Date.now;
  try {
    Date.now = () => realNow() + ms;
    return await run();
  } finally {
    Date.now = realNow;
  }
}
