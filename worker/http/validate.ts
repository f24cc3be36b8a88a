/** Parses a JSON body against a schema once, at the route, turning every failure into a 400. */
import type { Context } from "hono";
import type { z } from "zod";
import { ApiError } from "./errors.ts";

export async function readJson<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw new ApiError(400, "invalid_json", "The request body must be JSON.");
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length ? issue.path.join(".") : "body";
    throw new ApiError(400, "invalid_request", `${where}: ${issue.message}`);
  }
  return parsed.data;
}
