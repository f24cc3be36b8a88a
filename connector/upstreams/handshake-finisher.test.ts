/**
 * The connector finishes a handshake its viewer left, from wherever the viewer stopped, and
 * closes cleanly; it gives up (and says why) where only the viewer could go on.
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ClientHandshake, finishHandshake, HandshakeTranscript } from "./handshake-finisher.ts";

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const serverInit = (name: string) => Buffer.concat([Buffer.from([1, 64, 0, 200]), Buffer.alloc(16, 1), u32(name.length), Buffer.from(name)]);
const V8 = "RFB 003.008\n";

/** Runs a conversation: server messages in order, collecting what the client side sends. */
function converse(viewerSent: Buffer, serverMessages: Buffer[], split = false) {
  const client = new ClientHandshake(viewerSent);
  const sent: Buffer[] = [];
  let result;
  for (const m of serverMessages) {
    const pieces = split ? [...m].map((b) => Buffer.from([b])) : [m];
    for (const p of pieces) {
      const out = client.feed(p);
      sent.push(...out.send);
      if (out.result) result = out.result;
    }
  }
  return { sent: Buffer.concat(sent), result };
}

describe("ClientHandshake", () => {
  it("does the whole 3.8 handshake with None when the viewer said nothing, in any split", () => {
    for (const split of [false, true]) {
      const { sent, result } = converse(Buffer.alloc(0), [Buffer.from(V8), Buffer.from([2, 2, 1]), u32(0), serverInit("desk")], split);
      expect(sent).toEqual(Buffer.concat([Buffer.from(V8), Buffer.from([1]), Buffer.from([1])]));
      expect(result?.outcome).toBe("finished");
    }
  });

  it("goes on from the viewer's own version and choice (3.7: no SecurityResult for None)", () => {
    const { sent, result } = converse(Buffer.from("RFB 003.007\n\x01"), [Buffer.from(V8), Buffer.from([1, 1]), serverInit("")]);
    expect(sent).toEqual(Buffer.from([1])); // only ClientInit, shared
    expect(result?.outcome).toBe("finished");
  });

  it("speaks 3.3 to a 3.3 server, and finishes after the viewer's full VNC authentication", () => {
    const fresh = converse(Buffer.alloc(0), [Buffer.from("RFB 003.003\n"), u32(1), serverInit("x")]);
    expect(fresh.sent).toEqual(Buffer.concat([Buffer.from("RFB 003.003\n"), Buffer.from([1])]));
    expect(fresh.result?.outcome).toBe("finished");
    const authed = converse(Buffer.concat([Buffer.from(V8), Buffer.from([2]), Buffer.alloc(16, 9)]), [
      Buffer.from(V8), Buffer.from([1, 2]), Buffer.alloc(16, 3), u32(0), serverInit("x"),
    ]);
    expect(authed.sent).toEqual(Buffer.from([1]));
    expect(authed.result?.outcome).toBe("finished");
  });

  it("abandons what needs the viewer's password, and stops on a refusal", () => {
    expect(converse(Buffer.alloc(0), [Buffer.from(V8), Buffer.from([1, 2])]).result).toMatchObject({
      outcome: "abandoned",
      detail: expect.stringMatching(/requires a password/),
    });
    expect(converse(Buffer.from(V8 + "\x02"), [Buffer.from(V8), Buffer.from([2, 1, 2]), Buffer.alloc(16)]).result?.outcome).toBe("abandoned");
    expect(converse(Buffer.from("RFB 003.0"), [Buffer.from(V8)]).result?.outcome).toBe("abandoned");
    expect(converse(Buffer.alloc(0), [Buffer.from(V8), Buffer.from([0])]).result?.outcome).toBe("closed");
    expect(converse(Buffer.alloc(0), [Buffer.from(V8), Buffer.from([1, 1]), u32(1)]).result?.outcome).toBe("closed");
  });
});

describe("HandshakeTranscript", () => {
  it("keeps the first bytes of each side only, and says when a side went past the handshake", () => {
    const t = new HandshakeTranscript();
    t.fromServer(Buffer.from(V8));
    t.fromClient(Buffer.from(V8));
    expect(t.snapshot()).toMatchObject({ server: Buffer.from(V8), client: Buffer.from(V8), overflowed: false });
    t.fromServer(Buffer.alloc(5000));
    expect(t.snapshot().overflowed).toBe(true);
    expect(t.snapshot().server.length).toBeLessThanOrEqual(1025);
  });
});

/** An RFB 3.8 server offering `types` that records what it saw and how the client left. */
async function rfbServer(types: number[], { greetAfter }: { greetAfter?: Promise<void> } = {}) {
  const seen = { authenticated: 0, ended: 0, reset: 0, received: [] as Buffer[] };
  const sockets = new Set<Socket>();
  const server: Server = createServer(async (s) => {
    sockets.add(s);
    let buf = Buffer.alloc(0);
    let stage = 0;
    s.on("error", () => seen.reset++);
    s.on("end", () => {
      seen.ended++;
      s.end();
    });
    s.on("data", (d) => {
      seen.received.push(d);
      buf = Buffer.concat([buf, d]);
      if (stage === 0 && buf.length >= 12) {
        buf = buf.subarray(12);
        stage = 1;
        s.write(Buffer.from([types.length, ...types]));
      }
      if (stage === 1 && buf.length >= 1) {
        buf = buf.subarray(1);
        stage = 2;
        s.write(u32(0));
      }
      if (stage === 2 && buf.length >= 1) {
        stage = 3;
        seen.authenticated++;
        s.write(serverInit("finisher"));
      }
    });
    await greetAfter;
    s.write(V8);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    seen,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

const dial = (port: number) =>
  new Promise<Socket>((resolve) => {
    const socket = connect(port, "127.0.0.1", () => resolve(socket));
  });

let stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(stops.map((s) => s()));
  stops = [];
});

describe("finishHandshake on a real socket", () => {
  it("completes the handshake after a viewer that sent only its version, and closes with a FIN", async () => {
    const server = await rfbServer([1]);
    stops.push(server.stop);
    const socket = await dial(server.port);
    // The viewer's console read the greeting and answered it, then left.
    const transcript = new HandshakeTranscript();
    const greeting = await new Promise<Buffer>((r) => socket.once("data", r));
    transcript.fromServer(greeting);
    socket.write(V8);
    transcript.fromClient(Buffer.from(V8));
    socket.pause();
    const result = await finishHandshake(socket, transcript.snapshot());
    expect(result.outcome).toBe("finished");
    await new Promise((r) => socket.once("close", r));
    expect(server.seen).toMatchObject({ authenticated: 1, ended: 1, reset: 0 });
    expect(Buffer.concat(server.seen.received)).toEqual(Buffer.from(V8 + "\x01\x01"));
  });

  it("waits for a stalled server to greet, then finishes; gives up after its patience", async () => {
    let greet!: () => void;
    const late = await rfbServer([1], { greetAfter: new Promise<void>((r) => (greet = r)) });
    stops.push(late.stop);
    const socket = await dial(late.port);
    const finishing = finishHandshake(socket, new HandshakeTranscript().snapshot());
    greet();
    expect((await finishing).outcome).toBe("finished");
    expect(late.seen.authenticated).toBe(1);

    const never = await rfbServer([1], { greetAfter: new Promise<void>(() => {}) });
    stops.push(never.stop);
    const stuck = await dial(never.port);
    expect(await finishHandshake(stuck, new HandshakeTranscript().snapshot(), { patienceMs: 50 })).toMatchObject({
      outcome: "timeout",
      detail: "the server never greeted",
    });
  });

  it("closes at once, unfinished, when the server wants a password", async () => {
    const server = await rfbServer([2]);
    stops.push(server.stop);
    const socket = await dial(server.port);
    expect((await finishHandshake(socket, new HandshakeTranscript().snapshot())).outcome).toBe("abandoned");
    expect(server.seen.authenticated).toBe(0);
  });
});
