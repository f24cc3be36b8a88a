/** The contract's error shape: {"error":{"code","message"}} with a fitting status. */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

export class ApiError extends Error {
  readonly status: ContentfulStatusCode;
  readonly code: string;

  constructor(status: ContentfulStatusCode, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function errorResponse(c: Context, err: ApiError): Response {
  return c.json({ error: { code: err.code, message: err.message } }, err.status);
}
