/**
 * `porthole listen` with a real native viewer: Debian's TigerVNC viewer, on an Xvfb display,
 * connects to the local port and shows the Xvnc desktop through wrangler dev and the connector; a
 * view-only link through it delivers no input to the VNC server (while a full-control link does);
 * a console's single-use URL serves one connection; an API token opens a fresh console for each;
 * the edge's close reason is printed and the viewer's TCP connection closed.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { crc32, deflateSync } from "node:zlib";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { e2eSite } from "../harness/e2e-site.ts";
import { freePort, type Proc, start, waitFor } from "../harness/processes.ts";
import { type Firehose, startFirehose } from "../harness/firehose.ts";
import { type RecordingVnc, startRecordingVnc } from "../harness/recording-vnc.ts";
import { STREAM_WINDOW_BYTES } from "../../shared/protocol/limits.ts";

let recorder: RecordingVnc;
let firehose: Firehose;
let xvfb: Proc;
let display = 0;
const work = join(tmpdir(), `porthole-listen-${process.pid}`);

type Link = { id: string; url: string; wsUrl: string };

function requirePrograms(): void {
  for (const p of ["/usr/bin/Xvfb", "/usr/bin/xtigervncviewer", "/usr/bin/xdotool", "/usr/bin/xwd"]) {
    if (!existsSync(p)) throw new Error(`These tests need ${p}: apt-get install xvfb tigervnc-viewer xdotool x11-apps`);
  }
}

function freeDisplay(): number {
  for (let n = 500 + Math.floor(Math.random() * 200); n < 900; n++) {
    if (!existsSync(`/tmp/.X11-unix/X${n}`) && !existsSync(`/tmp/.X${n}-lock`)) return n;
  }
  throw new Error("no free X display number");
}

const systemNode = ["/usr/local/bin/node", "/usr/bin/node"].find(existsSync) ?? process.execPath;

const site = e2eSite("e2e-listen", {
  prepare: async () => {
    site.onTeardown(async () => {
      await Promise.allSettled([recorder?.stop(), firehose?.stop(), xvfb?.stop()]);
      rmSync(work, { recursive: true, force: true });
    });
    requirePrograms();
    mkdirSync(work, { recursive: true });
    // Only the CLI, into the test's own directory: rebuilding the assets would reload wrangler dev.
    execFileSync(process.execPath, ["scripts/build-cli.ts", join(work, "porthole.mjs")], { stdio: "pipe" });
    [recorder, firehose] = await Promise.all([startRecordingVnc(), startFirehose()]);
    display = freeDisplay();
    // -br: a black root window, so the desktop's red in a screenshot can only be the viewer's.
    xvfb = start("Xvfb", [`:${display}`, "-screen", "0", "1024x768x24", "-br", "-nolisten", "tcp"]);
    // Ready when a client can talk to it, not merely when its socket file exists.
    await waitFor(
      "Xvfb",
      async () => {
        if (!existsSync(`/tmp/.X11-unix/X${display}`)) return undefined;
        try {
          execFileSync("xdotool", ["getdisplaygeometry"], { env: { ...process.env, DISPLAY: `:${display}` }, stdio: "ignore" });
          return true;
        } catch {
          return undefined;
        }
      },
      20_000,
      xvfb,
    );
  },
  lab: () => [
    { id: "desk", name: "Desktop", port: site.desktop.port },
    { id: "recorder", name: "Recorder", port: recorder.port },
    { id: "firehose", name: "Firehose", port: firehose.port },
  ],
});
const { edge, api: admin, name: SITE } = site;

async function makeLink(vm: string, viewOnly = false): Promise<Link> {
  const made = await admin.call<Link>("POST", "/api/links", { site: SITE, hypervisor: "lab", vm, ttlSeconds: 600, viewOnly });
  expect(made.status).toBe(201);
  return made.body;
}

/**
 * `porthole listen` on a free loopback port: from the checkout (as `npm run listen -- …`), or the
 * single-file build copied alone into an empty directory and run by the distribution's Node (20).
 */
async function listen(args: string[], env: NodeJS.ProcessEnv = {}, { bundle = false } = {}): Promise<{ proc: Proc; port: number }> {
  const command = bundle ? [systemNode, join(work, "porthole.mjs")] : [process.execPath, "connector/cli/porthole.ts"];
  const proc = start(command[0]!, [...command.slice(1), "listen", ...args, "--listen", "127.0.0.1:0"], env);
  const port = await waitFor("porthole listen", async () => {
    const m = /listening on 127\.0\.0\.1:(\d+)/.exec(proc.output());
    return m ? Number(m[1]) : undefined;
  }, 20_000, proc);
  return { proc, port };
}

function viewer(port: number): Proc {
  return start("xtigervncviewer", [`127.0.0.1::${port}`], { DISPLAY: `:${display}` });
}

/**
 * The Xvfb screen's pixels as RGB (read from `xwd -root`, X11's own dump format: a big-endian
 * header, a colour map, then rows of pixels), optionally also saved as a PNG.
 */
function screenRgb(png?: string): Buffer {
  const xwd = execFileSync("xwd", ["-root", "-silent", "-display", `:${display}`], { maxBuffer: 32 * 1024 * 1024 });
  const h = (i: number) => xwd.readUInt32BE(i * 4);
  const [headerSize, width, height, byteOrder, bitsPerPixel, bytesPerLine, ncolors] = [h(0), h(4), h(5), h(7), h(11), h(12), h(19)];
  const [redMask, greenMask, blueMask] = [h(14), h(15), h(16)];
  if (bitsPerPixel !== 32) throw new Error(`xwd: ${bitsPerPixel} bits per pixel, expected 32`);
  const shift = (mask: number) => Math.clz32(1) - Math.clz32(mask & -mask);
  const start = headerSize + ncolors * 12;
  const rgb = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const at = start + y * bytesPerLine + x * 4;
      const p = byteOrder === 0 ? xwd.readUInt32LE(at) : xwd.readUInt32BE(at);
      const o = (y * width + x) * 3;
      rgb[o] = (p & redMask) >>> shift(redMask);
      rgb[o + 1] = (p & greenMask) >>> shift(greenMask);
      rgb[o + 2] = (p & blueMask) >>> shift(blueMask);
    }
  }
  if (png) writeFileSync(png, encodePng(rgb, width, height));
  return rgb;
}

/** A minimal RGB PNG (for the README's screenshot): IHDR, one deflated IDAT, IEND. */
function encodePng(rgb: Buffer, width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
    const out = Buffer.alloc(8 + data.length + 4);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const rows = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) rgb.copy(rows, y * (width * 3 + 1) + 1, y * width * 3, (y + 1) * width * 3);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", ihdr), chunk("IDAT", deflateSync(rows)), chunk("IEND", Buffer.alloc(0))]);
}

function shareOf(rgb: Buffer, match: (r: number, g: number, b: number) => boolean): number {
  let n = 0;
  for (let i = 0; i < rgb.length; i += 3) if (match(rgb[i]!, rgb[i + 1]!, rgb[i + 2]!)) n++;
  return n / (rgb.length / 3);
}
const red = (r: number, g: number, b: number) => r > 200 && g < 60 && b < 60;
const green = (r: number, g: number, b: number) => g > 200 && r < 60 && b < 60;

function xdotool(args: string[]): void {
  execFileSync("xdotool", args, { env: { ...process.env, DISPLAY: `:${display}` } });
}

/** A raw TCP client: what a viewer first reads is the VNC server's greeting. */
function greeting(port: number): Promise<{ sock: Socket; text: string }> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, "127.0.0.1");
    let got = Buffer.alloc(0);
    sock.on("data", (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 12) {
        sock.removeAllListeners("data");
        resolve({ sock, text: got.subarray(0, 12).toString("latin1") });
      }
    });
    sock.once("error", reject);
    sock.once("close", () => reject(new Error(`closed before the greeting (${got.length} bytes)`)));
  });
}

describe("a native VNC viewer through porthole listen", () => {
  it("TigerVNC under Xvfb shows the real desktop through a share link (the single-file build on the system's Node)", async () => {
    const link = await makeLink("desk");
    const { proc, port } = await listen([link.url], {}, { bundle: true });
    expect(proc.output()).toMatch(/share link to Desktop on site e2e-listen, until .*; every connection reuses it/);
    const vnc = viewer(port);
    try {
      mkdirSync("test-results", { recursive: true });
      const share = await waitFor("the desktop in the viewer's window", async () => {
        const s = shareOf(screenRgb(), red);
        return s > 0.25 ? s : undefined;
      }, 30_000, vnc);
      // The 800×600 desktop, mostly red, in a 1024×768 screen that is otherwise black.
      expect(share).toBeGreaterThan(0.25);
      screenRgb("test-results/native-viewer.png");
      expect(proc.output()).toMatch(/connection 1 \(127\.0\.0\.1:\d+\): console open/);
    } finally {
      await vnc.stop();
      await proc.stop();
    }
  });

  it("a view-only link delivers no input, while a full-control link does", async () => {
    /** Moves, clicks and types into the viewer's window; returns what reached the VNC server after. */
    async function inputThrough(viewOnly: boolean): Promise<number[]> {
      const link = await makeLink("recorder", viewOnly);
      const { proc, port } = await listen([link.url]);
      const vnc = viewer(port);
      try {
        await waitFor("the recorder's green in the viewer", async () => (shareOf(screenRgb(), green) > 0.05 ? true : undefined), 30_000, vnc);
        const from = recorder.messages.length;
        // No window manager: give the viewer's window the keyboard focus as one would.
        xdotool(["search", "--name", ".", "windowfocus", "--sync"]);
        xdotool(["mousemove", "100", "100", "click", "1", "mousemove", "150", "120", "type", "abc"]);
        if (!viewOnly) {
          await waitFor("input at the VNC server", async () => {
            const got = recorder.messages.slice(from);
            return got.includes(4) && got.includes(5) ? true : undefined;
          }, 15_000).catch((err: Error) => {
            throw new Error(`${err.message}\nmessages: ${recorder.messages.slice(from).filter((t) => t !== 3).join(",")}\nwindows: ${execFileSync("xdotool", ["search", "--name", "."], { env: { ...process.env, DISPLAY: `:${display}` } })}\n${vnc.output()}\n${proc.output()}`);
          });
        } else {
          // The viewer keeps asking for updates: once many more requests have arrived after the
          // input, anything the edge let through would have arrived before them.
          await waitFor("update requests after the input", async () => {
            return recorder.messages.slice(from).filter((t) => t === 3).length >= 20 ? true : undefined;
          }, 20_000);
        }
        return recorder.messages.slice(from);
      } finally {
        await vnc.stop();
        await proc.stop();
      }
    }

    const full = await inputThrough(false);
    expect(full).toContain(4); // key events
    expect(full).toContain(5); // pointer events
    const viewOnly = await inputThrough(true);
    expect(viewOnly).toContain(3);
    expect(viewOnly.filter((t) => t === 4 || t === 5 || t === 6)).toEqual([]);
  });
});

describe("porthole listen", () => {
  it("serves a console's single-use pageUrl to one connection and says so", async () => {
    const { pageUrl } = await admin.openConsole(SITE, "lab", "recorder");
    const { proc, port } = await listen([pageUrl]);
    expect(proc.output()).toMatch(/single use, so this serves ONE connection/);
    const first = await greeting(port);
    expect(first.text).toBe("RFB 003.008\n");
    expect(proc.output()).toMatch(/this was its one connection; no longer listening/);
    await expect(greeting(port)).rejects.toThrow(/ECONNREFUSED/);
    first.sock.destroy();
    await proc.stop();
  });

  it("opens a fresh console for every connection with an API token", async () => {
    const made = await admin.call<{ token: string }>("POST", "/api/tokens", { name: "listen test" });
    expect(made.status).toBe(201);
    const { proc, port } = await listen([edge.url, "--site", SITE, "--hypervisor", "lab", "--vm", "desk"], { PORTHOLE_TOKEN: made.body.token });
    const [a, b] = [await greeting(port), await greeting(port)];
    expect([a.text, b.text]).toEqual(["RFB 003.008\n", "RFB 003.008\n"]);
    a.sock.destroy();
    b.sock.destroy();
    await proc.stop();
  });

  it("prints the edge's reason and closes the viewer's connection when the link is revoked", async () => {
    const link = await makeLink("recorder");
    const { proc, port } = await listen([link.url]);
    const { sock } = await greeting(port);
    // Through the RFB handshake as a viewer would (version, security None, shared ClientInit).
    let got = Buffer.alloc(0);
    const need = (n: number) => waitFor(`${n} bytes from the server`, async () => (got.length >= n ? true : undefined), 10_000);
    sock.on("data", (d: Buffer) => (got = Buffer.concat([got, d])));
    sock.write("RFB 003.008\n");
    await need(2);
    sock.write(Buffer.from([1]));
    await need(2 + 4);
    sock.write(Buffer.from([1]));
    await need(2 + 4 + 24);
    expect(got.readUInt16BE(6)).toBe(320); // ServerInit: the recorder's width
    const closed = new Promise<void>((r) => sock.once("close", () => r()));
    expect((await admin.call("DELETE", `/api/links/${link.id}`)).status).toBe(204);
    await closed;
    await waitFor("the reason", async () => (/console closed: This share link was revoked\. \(code 4410\)/.test(proc.output()) ? true : undefined), 10_000, proc);
    // Every later connection would be refused the same way: it stops listening, and exits.
    expect(await proc.exited).toBe(0);
    expect(proc.output()).toMatch(/no longer listening: This share link was revoked\./);
    // The link is dead: starting again is refused before listening.
    const again = start(process.execPath, ["connector/cli/porthole.ts", "listen", link.url, "--listen", "127.0.0.1:0"]);
    expect(await again.exited).toBe(1);
    expect(again.output()).toMatch(/the share link was refused: Whoever shared this console has revoked the link/);
    await proc.stop();
  });

  it("a PIN link: opens with --pin, a fresh pass per connection; without it or with a wrong one, refuses before listening", async () => {
    const made = await admin.call<Link & { pin: string }>("POST", "/api/links", { site: SITE, hypervisor: "lab", vm: "recorder", ttlSeconds: 600, pin: true });
    expect(made.status).toBe(201);
    const { url, pin } = made.body;
    // No terminal to ask on (stdin is a pipe): it says what to do.
    const none = start(process.execPath, ["connector/cli/porthole.ts", "listen", url, "--listen", "127.0.0.1:0"]);
    expect(await none.exited).toBe(1);
    expect(none.output()).toMatch(/this share link needs its PIN: give it with --pin/);
    const wrong = String((Number(pin) + 1) % 1_000_000).padStart(6, "0");
    const bad = start(process.execPath, ["connector/cli/porthole.ts", "listen", url, "--pin", wrong, "--listen", "127.0.0.1:0"]);
    expect(await bad.exited).toBe(1);
    expect(bad.output()).toMatch(/the PIN was refused: Wrong PIN: 9 more wrong PINs lock this link\./);

    const { proc, port } = await listen([url], { PORTHOLE_PIN: pin });
    expect(proc.output()).toMatch(/, with its PIN,/);
    const [a, b] = [await greeting(port), await greeting(port)];
    expect([a.text, b.text]).toEqual(["RFB 003.008\n", "RFB 003.008\n"]);
    expect(proc.output()).not.toContain(pin);
    a.sock.destroy();
    b.sock.destroy();
    await proc.stop();
  });

  it("a link that asks first: each connection waits, with nothing from the VM, until someone in control allows it", async () => {
    const made = await admin.call<Link>("POST", "/api/links", { site: SITE, hypervisor: "lab", vm: "recorder", ttlSeconds: 600, approval: true });
    expect(made.status).toBe(201);
    const { proc, port } = await listen([made.body.url, "--name", "Ana on her laptop"]);
    expect(proc.output()).toMatch(/each connection waits to be let in/);
    let greeted = false;
    const first = greeting(port).then((g) => ((greeted = true), g));
    await waitFor("the wait", async () => (/connection 1 .*asked to join as "Ana on her laptop"; waiting for someone in control of Recorder/.test(proc.output()) ? true : undefined), 10_000, proc);
    const waiting = await waitFor("the request in Share links", async () => {
      const links = await admin.call<{ id: string; waiting: { id: string; name: string }[] }[]>("GET", "/api/links");
      return links.body.find((l) => l.id === made.body.id)?.waiting[0];
    }, 10_000);
    expect(waiting.name).toBe("Ana on her laptop");
    // Not a byte of the VM's reached the viewer while it waited.
    expect(greeted).toBe(false);
    expect((await admin.call("POST", `/api/links/${made.body.id}/joins/${waiting.id}/allow`)).status).toBe(200);
    expect((await first).text).toBe("RFB 003.008\n");
    await waitFor("let in", async () => (/connection 1 .*: let in/.test(proc.output()) ? true : undefined), 10_000, proc);
    first.then((g) => g.sock.destroy());
    await proc.stop();
  });

  it("a viewer that stops reading stops the upstream: bytes are acknowledged only as the TCP socket takes them", async () => {
    const link = await makeLink("firehose");
    const { proc, port } = await listen([link.url]);
    const sock = connect(port, "127.0.0.1");
    let read = 0;
    sock.on("data", (d: Buffer) => (read += d.length));
    await waitFor("data flowing through", async () => (read > 8 * STREAM_WINDOW_BYTES ? true : undefined), 20_000, proc);
    // The viewer stops reading.
    sock.pause();
    const pausedAt = firehose.written();
    // The upstream comes to a stop once the kernel's buffers and one window are full...
    let last = -1;
    await waitFor("the upstream to stop", async () => {
      const now = firehose.written();
      const still = now === last;
      last = now;
      return still ? true : undefined;
    }, 20_000);
    // ...having pushed only that much more, nothing like the 100+ MB/s the firehose can push.
    expect(firehose.written() - pausedAt).toBeLessThan(32 * 1024 * 1024);
    // The console is still open (a slow reader is paused, not cut), and reading resumes it.
    const resumedFrom = firehose.written();
    sock.resume();
    await waitFor("the upstream moving again", async () => (firehose.written() > resumedFrom + 4 * STREAM_WINDOW_BYTES ? true : undefined), 20_000, proc);
    sock.destroy();
    await proc.stop();
  });

  it("explains bad URLs and unreachable edges", async () => {
    const bad = start(process.execPath, ["connector/cli/porthole.ts", "listen", "https://edge.example/somewhere"]);
    expect(await bad.exited).toBe(2);
    expect(bad.output()).toMatch(/not a Porthole console URL: .*expected a share link/);
    const noSecret = start(process.execPath, ["connector/cli/porthole.ts", "listen", "https://edge.example/l/site"]);
    expect(await noSecret.exited).toBe(2);
    expect(noSecret.output()).toMatch(/the link's secret \(after #\) is missing/);
    const closedPort = await freePort(); // nothing listens there
    const unreachable = start(process.execPath, ["connector/cli/porthole.ts", "listen", `http://127.0.0.1:${closedPort}/l/site#secret`]);
    expect(await unreachable.exited).toBe(1);
    expect(unreachable.output()).toMatch(new RegExp(`cannot reach Porthole's edge at http://127\\.0\\.0\\.1:${closedPort}: ECONNREFUSED`));
  });
});
