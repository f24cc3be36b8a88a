/**
 * One validator for everything a request carries: `valid("json" | "query" | "param", schema)` is
 * hono's validator middleware with a zod schema, checked once at the route; a failure is a 400
 * naming the field. Handlers read the typed result with `c.req.valid(target)`.
 */
import { validator } from "hono/validator";
import { z } from "zod";
import { NAME_PATTERN } from "../../shared/protocol/messages.ts";
import { ApiError } from "./errors.ts";

type Target = "json" | "query" | "param";

export function valid<T extends Target, S extends z.ZodType>(target: T, schema: S) {
  return validator(target, (value): z.infer<S> => {
    const parsed = schema.safeParse(value);
    if (parsed.success) return parsed.data;
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length ? issue.path.join(".") : target === "json" ? "body" : target;
    throw new ApiError(400, "invalid_request", `${where}: ${issue.message}`);
  });
}

export const SiteName = z.string().regex(NAME_PATTERN, "use 1-63 lowercase letters, digits, '-' or '_'");

/** A VM's console, as the API names it: never an address. */
export const ConsoleTarget = z.object({
  site: z.string().regex(NAME_PATTERN, "not a site name"),
  hypervisor: z.string().regex(NAME_PATTERN, "not a hypervisor name"),
  vm: z.string().min(1).max(128),
});

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

/**
 * `valid("json", schema)` for a body that clients are typed to send (`shared/api/types.ts`): the
 * schema must take exactly that type, so the two cannot drift apart (a mismatch is a type error
 * here: "Expected 2 arguments").
 */
export function validBody<B>() {
  return <S extends z.ZodType>(schema: S, ..._: Same<z.input<S>, B> extends true ? [] : [schemaDoesNotTakeTheSharedBody: never]) => valid("json", schema);
}
