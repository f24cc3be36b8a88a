/**
 * Recorded consoles (docs/recording.md): the policy, what a recording holds (from ServerInit on,
 * never the handshake), segments in R2 with their SHA-256 chain, hibernation in the middle, a
 * restart (interrupted), storage that fails (the console carries on, the recording is incomplete),
 * storage that is slow (memory stays within HELD_LIMIT_BYTES), and the routes' roles.
 */
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { later } from "./clock.ts";
import { describe, expect, it } from "vitest";
import type { Recording } from "../../shared/api/types.ts";
import { encodeData, encodeOpenOk } from "../../shared/protocol/frames.ts";
import { CREDIT_SUBPROTOCOL } from "../../shared/protocol/limits.ts";
import { HELD_LIMIT_BYTES } from "../../worker/site/recording-book.ts";
import { decodeRecording, RecordKind } from "../../worker/site/recording-format.ts";
import type { SiteObject } from "../../worker/site/site-object.ts";
import { api, auditUntil, call, createSite, openBrowser, openConsole, rfbHandshake, signIn, type TestSocket, type TestConnector, userSession, welcomedConnector } from "./helpers.ts";
import { hibernate } from "./hibernate.ts";

/** The recording book's bucket, swapped by the tests for a failing or a slow one. */
const bucketOf = (o: SiteObject) => o["recordings"] as unknown as { bucket: R2Bucket };
const stubOf = (name: string) => env.SITE.get(env.SITE.idFromName(name));

/** Cuts every buffer into a segment and waits for the puts, as the flush timer would. */
async function settle(site: string): Promise<void> {
  await runInDurableObject(stubOf(site), async (o: SiteObject) => {
    o["recordings"].flushAll();
    await o["recordings"].settled();
  });
}

async function recordedSite(name: string, recording: "all" | "links" = "all", recordInput = false) {
  const cookie = await signIn();
  const token = await createSite(cookie, name);
  const res = await call("PATCH", `/api/sites/${name}`, { recording, recordInput }, cookie);
  expect(res.status).toBe(200);
  const connector = await welcomedConnector(token);
  return { cookie, connector };
}

/** Opens a credit viewer's console and plays the handshake; returns the stream id. */
async function recordedConsole(cookie: string, site: string, connector: TestConnector): Promise<{ browser: TestSocket; stream: number }> {
  const browser = await openBrowser((await openConsole(cookie, site)).wsUrl, CREDIT_SUBPROTOCOL);
  // The notice comes first, before any console byte.
  expect(JSON.parse((await browser.next()) as string)).toMatchObject({ type: "recorded", input: false });
  const open = await connector.nextFrame();
  connector.send(encodeOpenOk(open.stream));
  await rfbHandshake(connector, open.stream, browser);
  return { browser, stream: open.stream };
}

async function toViewer(connector: TestConnector, browser: TestSocket, stream: number, bytes: Uint8Array): Promise<void> {
  connector.send(encodeData(stream, bytes));
  let got = 0;
  while (got < bytes.length) {
    const m = await browser.next();
    if (typeof m !== "string") got += m.byteLength;
  }
}

async function onlyRecording(cookie: string, site: string): Promise<Recording> {
  const list = (await (await call("GET", `/api/recordings?site=${site}`, undefined, cookie)).json()) as Recording[];
  expect(list).toHaveLength(1);
  return list[0]!;
}

async function file(cookie: string, id: string) {
  const res = await call("GET", `/api/recordings/${id}/file`, undefined, cookie);
  expect(res.status).toBe(200);
  return new Uint8Array(await res.arrayBuffer());
}

const server = (records: { kind: number; payload: Uint8Array }[]) => records.filter((r) => r.kind === RecordKind.server);
const marks = (records: { kind: number; payload: Uint8Array }[]) =>
  records.filter((r) => r.kind === RecordKind.mark).map((r) => (JSON.parse(new TextDecoder().decode(r.payload)) as { mark: string }).mark);

describe("recorded consoles", () => {
  it("records from ServerInit on (no handshake), keeps SetEncodings but not input, and verifies its chain", async () => {
    const { cookie, connector } = await recordedSite("rec-basic");
    const { browser, stream } = await recordedConsole(cookie, "rec-basic", connector);
    await toViewer(connector, browser, stream, new Uint8Array([0, 0, 0, 1, 9, 9, 9]));
    browser.ws.send(new Uint8Array([2, 0, 0, 1, 0, 0, 0, 0])); // SetEncodings [Raw]
    browser.ws.send(new Uint8Array([4, 1, 0, 0, 0, 0, 0, 0x61])); // KeyEvent: not recorded by default
    await connector.nextFrame();
    browser.ws.close(1000, "done");
    await browser.closedWith();
    await settle("rec-basic");

    const rec = await onlyRecording(cookie, "rec-basic");
    expect(rec).toMatchObject({ site: "rec-basic", hypervisor: "lab", vm: "desk", user: "admin", state: "complete", recordInput: false });
    expect(rec.endedAt).toBeDefined();
    const bytes = await file(cookie, rec.id);
    const { header, records } = decodeRecording(bytes);
    expect(header).toMatchObject({ format: 1, id: rec.id, vm: "desk", recordInput: false });
    const down = server(records);
    // ServerInit first: 800 × 600; never the version or security bytes.
    expect(new DataView(down[0]!.payload.buffer, down[0]!.payload.byteOffset).getUint16(0)).toBe(800);
    expect(new TextDecoder().decode(bytes)).not.toContain("RFB 003.008");
    expect(down.at(-1)!.payload).toEqual(new Uint8Array([0, 0, 0, 1, 9, 9, 9]));
    const up = records.filter((r) => r.kind === RecordKind.viewer);
    expect(up.map((r) => r.payload[0])).toEqual([2]);
    expect(marks(records)).toEqual(["connect", "end"]);

    // The chain: SHA-256(header), then SHA-256(previous ‖ segment) per segment.
    const sha = async (b: Uint8Array) => new Uint8Array(await crypto.subtle.digest("SHA-256", b));
    const headerLen = 12 + new DataView(bytes.buffer).getUint32(8);
    let chain = await sha(bytes.subarray(0, headerLen));
    chain = await sha(new Uint8Array([...chain, ...bytes.subarray(headerLen)])); // one segment here
    expect([...chain].map((x) => x.toString(16).padStart(2, "0")).join("")).toBe(rec.chain);
    expect(rec.segments).toBe(1);
    expect(rec.bytes).toBe(bytes.length - headerLen);
    // The audit trail's console.closed row names its recording; the detail gives each segment's size.
    await auditUntil(cookie, "?type=console.closed&site=rec-basic", (rows) => rows.find((r) => r.detail?.recording === rec.id));
    const detail = (await api(cookie).answer("GET /api/recordings/:id", { params: { id: rec.id } })).body;
    expect(detail.segmentBytes).toEqual([rec.bytes]);
  });

  it("carries on across hibernation in the middle of a recording", async () => {
    const { cookie, connector } = await recordedSite("rec-sleep");
    const { browser, stream } = await recordedConsole(cookie, "rec-sleep", connector);
    await toViewer(connector, browser, stream, new Uint8Array([0, 1, 2]));
    await settle("rec-sleep");
    await hibernate(stubOf("rec-sleep"));
    await toViewer(connector, browser, stream, new Uint8Array([3, 4, 5]));
    browser.ws.close(1000, "done");
    await browser.closedWith();
    await settle("rec-sleep");
    const rec = await onlyRecording(cookie, "rec-sleep");
    expect(rec.state).toBe("complete");
    expect(rec.segments).toBe(2);
    const { records } = decodeRecording(await file(cookie, rec.id));
    expect(server(records).slice(-2).map((r) => [...r.payload])).toEqual([[0, 1, 2], [3, 4, 5]]);
    expect(marks(records)).toEqual(["connect", "end"]);
  });

  it("a console cut by a restart (redeploy, crash) ends as interrupted at the next wake", async () => {
    const { cookie, connector } = await recordedSite("rec-cut");
    const { browser, stream } = await recordedConsole(cookie, "rec-cut", connector);
    await toViewer(connector, browser, stream, new Uint8Array([7, 7]));
    await settle("rec-cut");
    await evictDurableObject(stubOf("rec-cut"), { webSockets: "close" });
    await browser.closedWith();
    const rec = await onlyRecording(cookie, "rec-cut"); // this request wakes it
    expect(rec.state).toBe("interrupted");
    expect(rec.endedAt).toBeDefined();
    expect(server(decodeRecording(await file(cookie, rec.id)).records).at(-1)!.payload).toEqual(new Uint8Array([7, 7]));
    // Its audit row (written at the wake) names the recording too.
    await auditUntil(cookie, "?type=console.closed&site=rec-cut", (rows) => rows.find((r) => r.detail?.recording === rec.id));
  });

  it("deleting the site deletes its recordings' objects, once their last segments are written", async () => {
    const { cookie, connector } = await recordedSite("rec-gone");
    const { browser, stream } = await recordedConsole(cookie, "rec-gone", connector);
    await toViewer(connector, browser, stream, new Uint8Array([1, 2]));
    const rec = await onlyRecording(cookie, "rec-gone");
    expect((await call("DELETE", "/api/sites/rec-gone", undefined, cookie)).status).toBe(204);
    await browser.closedWith();
    expect((await env.RECORDINGS.list({ prefix: "rec-gone/" })).objects).toEqual([]);
    await auditUntil(cookie, "?type=recording.deleted", (rows) => rows.find((r) => r.site === "rec-gone" && r.detail?.recordings === 1));
    expect(rec.id.startsWith("rec-gone.")).toBe(true);
  });

  it("storage errors: the console keeps working and the recording is marked incomplete", async () => {
    const { cookie, connector } = await recordedSite("rec-fail");
    const { browser, stream } = await recordedConsole(cookie, "rec-fail", connector);
    await settle("rec-fail");
    await runInDurableObject(stubOf("rec-fail"), (o: SiteObject) => {
      bucketOf(o).bucket = { put: () => Promise.reject(new Error("R2 is down")) } as unknown as R2Bucket;
    });
    await toViewer(connector, browser, stream, new Uint8Array([1, 2, 3]));
    await settle("rec-fail");
    await toViewer(connector, browser, stream, new Uint8Array([4, 5, 6])); // still relayed
    browser.ws.close(1000, "done");
    await browser.closedWith();
    await settle("rec-fail");
    expect((await onlyRecording(cookie, "rec-fail")).state).toBe("incomplete");
  });

  it("a slow bucket: what a recorded stream holds stays within HELD_LIMIT_BYTES, then the recording is incomplete", async () => {
    const { cookie, connector } = await recordedSite("rec-slow");
    const { browser, stream } = await recordedConsole(cookie, "rec-slow", connector);
    await settle("rec-slow");
    let release!: () => void;
    const stuck = new Promise<void>((r) => (release = r));
    await runInDurableObject(stubOf("rec-slow"), (o: SiteObject) => {
      const real = o["recordings"]["bucket"];
      bucketOf(o).bucket = { put: async (...args: Parameters<R2Bucket["put"]>) => (await stuck, real.put(...args)) } as unknown as R2Bucket;
    });
    const chunk = new Uint8Array(32 * 1024).fill(5);
    let most = 0;
    for (let i = 0; i < 64; i++) {
      // 2 MiB in all; the viewer returns credit so the window never stops it.
      await toViewer(connector, browser, stream, chunk);
      browser.ws.send(String(chunk.length));
      most = Math.max(most, await runInDurableObject(stubOf("rec-slow"), (o: SiteObject) => o["recordings"].held(stream)));
    }
    expect(most).toBeLessThanOrEqual(HELD_LIMIT_BYTES);
    expect(most).toBeGreaterThan(HELD_LIMIT_BYTES - 64 * 1024);
    release();
    browser.ws.close(1000, "done");
    await browser.closedWith();
    await settle("rec-slow");
    const rec = await onlyRecording(cookie, "rec-slow");
    expect(rec.state).toBe("incomplete");
    expect(marks(decodeRecording(await file(cookie, rec.id)).records)).toContain("gap");
  });

  it("deleting a recording whose last segment is still on its way leaves nothing behind", async () => {
    const { cookie, connector } = await recordedSite("rec-race");
    const { browser, stream } = await recordedConsole(cookie, "rec-race", connector);
    await settle("rec-race");
    let release!: () => void;
    const stuck = new Promise<void>((r) => (release = r));
    await runInDurableObject(stubOf("rec-race"), (o: SiteObject) => {
      const real = o["recordings"]["bucket"];
      bucketOf(o).bucket = {
        put: async (...args: Parameters<R2Bucket["put"]>) => (await stuck, real.put(...args)),
        delete: (...args: Parameters<R2Bucket["delete"]>) => real.delete(...args),
        list: (...args: Parameters<R2Bucket["list"]>) => real.list(...args),
      } as unknown as R2Bucket;
    });
    await toViewer(connector, browser, stream, new Uint8Array(1024).fill(7));
    browser.ws.close(1000, "done");
    await browser.closedWith();
    const rec = await onlyRecording(cookie, "rec-race");
    // The console ended, its last segment is held up in storage: the recording is deleted now, and
    // only then does storage answer.
    const deleted = await runInDurableObject(stubOf("rec-race"), async (o: SiteObject) => {
      const deleting = o["recordings"].delete(rec.id);
      release();
      return deleting;
    });
    expect(deleted).toBe(true);
    await settle("rec-race");
    expect((await env.RECORDINGS.list({ prefix: `rec-race/${rec.id}/` })).objects).toEqual([]);
    const rows = await runInDurableObject(stubOf("rec-race"), (_o, state) => state.storage.sql.exec("SELECT * FROM recording_segments WHERE recording = ?", rec.id).toArray());
    expect(rows).toEqual([]);
  });

  it("policy `links` records share-link consoles only; policy changes are validated", async () => {
    const { cookie, connector } = await recordedSite("rec-links", "links");
    const browser = await openBrowser((await openConsole(cookie, "rec-links")).wsUrl, CREDIT_SUBPROTOCOL);
    const open = await connector.nextFrame();
    connector.send(encodeOpenOk(open.stream));
    await rfbHandshake(connector, open.stream, browser); // would fail on a text notice first
    expect((await (await call("GET", "/api/recordings?site=rec-links", undefined, cookie)).json()) as Recording[]).toEqual([]);
    for (const bad of [{ recording: "some" }, { recordInput: "yes" }, { other: 1 }]) {
      expect((await call("PATCH", "/api/sites/rec-links", bad, cookie)).status).toBe(400);
    }
    expect((await call("PATCH", "/api/sites/nowhere", { recording: "all" }, cookie)).status).toBe(404);
    const sites = (await api(cookie).answer("GET /api/sites")).body;
    expect(sites.find((s) => s.name === "rec-links")).toMatchObject({ recording: "links", recordInput: false });
  });

  it("roles: a viewer gets 403, an auditor reads; bad ids 400, unknown 404; deleting is the admin's and audited", async () => {
    const { cookie, connector } = await recordedSite("rec-roles");
    const { browser } = await recordedConsole(cookie, "rec-roles", connector);
    const viewer = await userSession(cookie, "rec-viewer", "viewer");
    const operator = await userSession(cookie, "rec-operator", "operator");
    const auditor = await userSession(cookie, "rec-auditor", "auditor");
    for (const who of [viewer, operator]) expect((await call("GET", "/api/recordings", undefined, who)).status).toBe(403);
    expect((await call("PATCH", "/api/sites/rec-roles", { recording: "off" }, operator)).status).toBe(403);
    // Auditors read recordings (the list and each one), but may neither delete one nor change the policy.
    const listed = (await (await call("GET", "/api/recordings?site=rec-roles", undefined, auditor)).json()) as { id: string }[];
    expect(listed.length).toBe(1);
    expect((await call("GET", `/api/recordings/${listed[0]!.id}`, undefined, auditor)).status).toBe(200);
    expect((await call("DELETE", `/api/recordings/${listed[0]!.id}`, undefined, auditor)).status).toBe(403);
    expect((await call("PATCH", "/api/sites/rec-roles", { recording: "off" }, auditor)).status).toBe(403);
    expect((await call("GET", "/api/recordings/..%2F..", undefined, cookie)).status).toBe(400);
    expect((await call("GET", `/api/recordings/rec-roles.${"0".repeat(32)}`, undefined, cookie)).status).toBe(404);
    expect((await call("GET", `/api/recordings/nosite.${"0".repeat(32)}`, undefined, cookie)).status).toBe(404);
    expect((await call("GET", "/api/recordings?since=yesterday", undefined, cookie)).status).toBe(400);
    const rec = await onlyRecording(cookie, "rec-roles");
    expect((await call("DELETE", `/api/recordings/${rec.id}`, undefined, cookie)).status).toBe(409); // still open
    browser.ws.close(1000, "done");
    await browser.closedWith();
    await settle("rec-roles");
    expect((await call("DELETE", `/api/recordings/${rec.id}`, undefined, cookie)).status).toBe(204);
    expect((await call("GET", `/api/recordings/${rec.id}`, undefined, cookie)).status).toBe(404);
    expect(await env.RECORDINGS.get(`rec-roles/${rec.id}/header`)).toBeNull();
    await auditUntil(cookie, "?type=recording.deleted", (rows) => rows.find((r) => r.detail?.id === rec.id));
  });

  it("retention: the object's alarm deletes a recording RECORDING_RETENTION_DAYS (30) after it ended, audited", async () => {
    const { cookie, connector } = await recordedSite("rec-old");
    const { browser, stream } = await recordedConsole(cookie, "rec-old", connector);
    await toViewer(connector, browser, stream, new Uint8Array([1]));
    browser.ws.close(1000, "done");
    await browser.closedWith();
    await settle("rec-old");
    const rec = await onlyRecording(cookie, "rec-old");
    const alarm = await runInDurableObject(stubOf("rec-old"), (_o, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    // 29 days on: kept.
    await later(29 * 86_400_000, () => runDurableObjectAlarm(stubOf("rec-old")));
    expect((await call("GET", `/api/recordings/${rec.id}`, undefined, cookie)).status).toBe(200);
    expect(await later(31 * 86_400_000, () => runDurableObjectAlarm(stubOf("rec-old")))).toBe(true);
    expect((await call("GET", `/api/recordings/${rec.id}`, undefined, cookie)).status).toBe(404);
    expect(await env.RECORDINGS.get(`rec-old/${rec.id}/header`)).toBeNull();
    await auditUntil(cookie, "?type=recording.expired", (rows) => rows.find((r) => r.detail?.id === rec.id));
  });
});
