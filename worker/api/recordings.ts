/**
 * GET/DELETE /api/recordings: the recorded consoles of every site (docs/recording.md). Each site's
 * object owns its index (worker/site/recording-book.ts); a list asks the sites it may concern. A
 * recording's id names its site (`<site>.<32 hex>`), so one recording is one object's question.
 */
import { Hono, type MiddlewareHandler } from "hono";
import { z } from "zod";
import { NAME_PATTERN } from "../../shared/protocol/messages.ts";
import type { Recording, RecordingDetail } from "../../shared/api/types.ts";
import type { AppEnv, Env, Role } from "../env.ts";
import { ApiError } from "../http/errors.ts";
import { valid } from "../http/validate.ts";
import { registryOf } from "../registry/registry-object.ts";
import { requireRole } from "../auth/sign-in.ts";
import { siteOf } from "./sites.ts";

/** Who may watch recordings: admins and auditors (the role made for reading what happened). */
export function mayReadRecordings(role: Role): boolean {
  return role === "admin" || role === "auditor";
}

const readers: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (!mayReadRecordings(c.get("user").role)) throw new ApiError(403, "forbidden", "Recordings are for administrators and auditors.");
  await next();
};

const Id = z.object({ id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}\.[0-9a-f]{32}$/, "not a recording id") });

const Query = z.object({
  site: z.string().regex(NAME_PATTERN, "not a site name").optional(),
  vm: z.string().min(1).max(128).optional(),
  user: z.string().min(1).max(256).optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
});

const LIMIT = 500;

function notFound(id: string): ApiError {
  return new ApiError(404, "unknown_recording", `There is no recording ${JSON.stringify(id)}.`);
}

/** The site a recording id names, if that site exists. */
async function siteOfRecording(env: Env, id: string) {
  const site = id.slice(0, id.lastIndexOf("."));
  if (!(await registryOf(env).hasSite(site))) throw notFound(id);
  return siteOf(env, site);
}

/** The file: header and segments, read from R2 one after another as the client takes them. */
function concatenated(bucket: R2Bucket, keys: string[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (; i < keys.length; ) {
        const obj = await bucket.get(keys[i++]!);
        if (!obj) continue; // a segment whose put failed after its row: the chain shows the hole
        controller.enqueue(new Uint8Array(await obj.arrayBuffer()));
        return;
      }
      controller.close();
    },
  });
}

export const recordings = new Hono<AppEnv>()
  .use(readers)
  .get("/", valid("query", Query), async (c) => {
    const q = c.req.valid("query");
    const names = q.site ? [q.site] : await registryOf(c.env).listSites();
    if (q.site && !(await registryOf(c.env).hasSite(q.site))) {
      throw new ApiError(404, "unknown_site", `There is no site named ${JSON.stringify(q.site)}.`);
    }
    const per = await Promise.all(names.map((name) => siteOf(c.env, name).listRecordings({ ...q, limit: LIMIT })));
    const all = per.flat().sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : 0));
    return c.json(all.slice(0, LIMIT) satisfies Recording[]);
  })
  .get("/:id", valid("param", Id), async (c) => {
    const { id } = c.req.valid("param");
    const rec = await (await siteOfRecording(c.env, id)).getRecording(id);
    if (!rec) throw notFound(id);
    return c.json(rec satisfies RecordingDetail);
  })
  .get("/:id/file", valid("param", Id), async (c) => {
    const { id } = c.req.valid("param");
    const files = await (await siteOfRecording(c.env, id)).recordingFiles(id);
    if (!files) throw notFound(id);
    return new Response(concatenated(c.env.RECORDINGS, files.keys), {
      headers: {
        "Content-Type": "application/vnd.porthole.recording",
        "Content-Disposition": `attachment; filename="${id}.phrec"`,
        "Cache-Control": "no-store",
      },
    });
  })
  .delete("/:id", requireRole("admin"), valid("param", Id), async (c) => {
    const { id } = c.req.valid("param");
    const done = await (await siteOfRecording(c.env, id)).deleteRecording(id, c.get("user").name);
    if (done === false) throw notFound(id);
    if (done === "open") throw new ApiError(409, "recording_open", "This console is still open: end it first, then delete its recording.");
    return c.body(null, 204);
  });
