/**
 * The greeting ("RFB 003.008\n") each console's VNC server sent last time. With it, a new console
 * gets the greeting at once and its server is dialled only once the viewer answers (stream.ts
 * `greetEarly`): a viewer that never speaks, or leaves first, never opens a connection the server
 * would count as a failed attempt, and holds none of its handshake turns. A server that changed
 * its version is noticed on the next dial, which also updates the entry.
 */
const VERSION = /^RFB \d{3}\.\d{3}\n$/;
/** Entries kept (least recently used dropped first): 12 bytes and a key each. */
const MAX_ENTRIES = 10_000;

export class GreetingCache {
  private readonly entries = new Map<string, Buffer>();
  private readonly max: number;

  constructor(max = MAX_ENTRIES) {
    this.max = max;
  }

  get(hypervisor: string, vm: string): Buffer | undefined {
    const key = `${hypervisor}\0${vm}`;
    const greeting = this.entries.get(key);
    if (greeting) {
      this.entries.delete(key);
      this.entries.set(key, greeting);
    }
    return greeting;
  }

  /** Only a real RFB version is kept. */
  set(hypervisor: string, vm: string, greeting: Buffer): void {
    if (!VERSION.test(greeting.toString("latin1"))) return;
    const key = `${hypervisor}\0${vm}`;
    this.entries.delete(key);
    this.entries.set(key, Buffer.from(greeting));
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
  }

  get size(): number {
    return this.entries.size;
  }
}
