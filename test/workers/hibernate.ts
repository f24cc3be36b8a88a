/**
 * Hibernation on demand for tests in the Workers pool. The stream book writes a stream's state to
 * its socket's attachment PERSIST_DELAY_MS after it changes (a pending timer keeps the runtime from
 * hibernating the object meanwhile); tests write it now instead of waiting that long.
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import type { SiteObject } from "../../worker/site/site-object.ts";

/** Writes every dirty stream of the site object now, as its timer would before it may sleep. */
export async function flushStreams(stub: DurableObjectStub): Promise<void> {
  await runInDurableObject(stub, (object: SiteObject) => object["streams"].persistDirty());
}

/** Flushes the site object's streams, then evicts it with its sockets hibernated, as the runtime would when idle. */
export async function hibernate(stub: DurableObjectStub): Promise<void> {
  await flushStreams(stub);
  await evictDurableObject(stub, { webSockets: "hibernate" });
}
