/**
 * XenAPI wire formats, server side: XML-RPC (POST /) and JSON-RPC (POST /jsonrpc).
 *
 * The XML-RPC trees come from Xen Orchestra's own codec (@vates/xml-rpc + @vates/xml). Those
 * packages ship no types; they are loaded through createRequire with local types so this folder
 * does not depend on (or clash with) ambient module declarations elsewhere in the project.
 */
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

interface XmlRpcParser {
  parse(tree: unknown): { methodName?: string; params?: unknown[] };
}
interface XmlRpcFormatter {
  format_methodResponse(response: { params: unknown[] }): unknown;
  format_methodCall(call: { methodName: string; params: unknown[] }): unknown;
}
const { xmlRpcParser } = require("@vates/xml-rpc/parser") as { xmlRpcParser: XmlRpcParser };
const { xmlRpcFormatter } = require("@vates/xml-rpc/formatter") as { xmlRpcFormatter: XmlRpcFormatter };
const { parseXml } = require("@vates/xml/parse") as {
  parseXml(xml: string, options?: { normalize?: boolean; strict?: boolean; trim?: boolean }): unknown;
};
const { formatXml } = require("@vates/xml/format") as {
  formatXml(tree: unknown, options?: { indent?: number; includeDeclaration?: boolean }): string;
};

/** What a XenAPI call returns: a value, or an error description [CODE, params…]. */
export type CallResult = { ok: true; value: unknown } | { ok: false; error: string[] };

export interface Call {
  method: string;
  params: unknown[];
}

export class WireError extends Error {}

// ---------------------------------------------------------------------------------------------
// XML-RPC

export function parseXmlRpcCall(body: string): Call {
  let tree: unknown;
  try {
    // normalize:false keeps whitespace inside strings (passwords); trim drops the indentation
    // text nodes that pretty-printing clients (Python's xmlrpc.client) put between elements.
    tree = parseXml(body, { normalize: false, trim: true });
  } catch (err) {
    throw new WireError(`XML parse error: ${(err as Error).message}`);
  }
  const t = tree as { name?: string } | undefined;
  if (t?.name !== "methodCall") throw new WireError("not an XML-RPC methodCall");
  const call = xmlRpcParser.parse(tree);
  if (typeof call.methodName !== "string") throw new WireError("no methodName");
  return { method: call.methodName, params: call.params ?? [] };
}

/**
 * XAPI's XML-RPC marshals int64 (every XenAPI integer) as a string, not <int>. Numbers are turned
 * into strings here; structs, arrays and booleans pass through.
 */
function toXapiXml(value: unknown): unknown {
  if (typeof value === "number") return String(value);
  if (Array.isArray(value)) return value.map(toXapiXml);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toXapiXml(v)]));
  }
  return value;
}

export function formatXmlRpcResult(result: CallResult): string {
  const struct = result.ok
    ? { Status: "Success", Value: toXapiXml(result.value) }
    : { Status: "Failure", ErrorDescription: result.error };
  return formatXml(xmlRpcFormatter.format_methodResponse({ params: [struct] }), { indent: 0 });
}

/** For tests: an XML-RPC request body as a client would send it. */
export function formatXmlRpcCall(method: string, params: unknown[]): string {
  return formatXml(xmlRpcFormatter.format_methodCall({ methodName: method, params }), { indent: 0 });
}

/** For tests: decode an XML-RPC reply into the XenAPI Status/Value/ErrorDescription struct. */
export function parseXmlRpcResponse(body: string): { Status: string; Value?: unknown; ErrorDescription?: string[] } {
  const tree = parseXml(body, { normalize: false, trim: true });
  return xmlRpcParser.parse(tree).params?.[0] as { Status: string; Value?: unknown; ErrorDescription?: string[] };
}

// ---------------------------------------------------------------------------------------------
// JSON-RPC

export interface JsonRpcCall extends Call {
  id: unknown;
  /** "2.0" when the request said so; otherwise the v1 reply form is used. */
  v2: boolean;
}

export function parseJsonRpcCall(body: string): JsonRpcCall {
  let msg: unknown;
  try {
    msg = JSON.parse(body);
  } catch (err) {
    throw new WireError(`JSON parse error: ${(err as Error).message}`);
  }
  if (msg === null || typeof msg !== "object" || Array.isArray(msg)) throw new WireError("not a JSON-RPC request object");
  const m = msg as { jsonrpc?: unknown; method?: unknown; params?: unknown; id?: unknown };
  if (typeof m.method !== "string") throw new WireError("no method");
  const params = m.params === undefined ? [] : m.params;
  if (!Array.isArray(params)) throw new WireError("params must be an array");
  return { method: m.method, params, id: m.id ?? null, v2: m.jsonrpc === "2.0" };
}

/**
 * v2: `{"jsonrpc":"2.0","result":…,"id":…}` or
 *     `{"jsonrpc":"2.0","error":{"code":1,"message":"<CODE>","data":[params…]},"id":…}`.
 * v1: `{"result":…,"error":null,"id":…}` or `{"result":null,"error":["<CODE>",params…],"id":…}`.
 */
export function formatJsonRpcResult(result: CallResult, id: unknown, v2: boolean): string {
  if (v2) {
    return JSON.stringify(
      result.ok
        ? { jsonrpc: "2.0", result: result.value, id }
        : { jsonrpc: "2.0", error: { code: 1, message: result.error[0], data: result.error.slice(1) }, id },
    );
  }
  return JSON.stringify(result.ok ? { result: result.value, error: null, id } : { result: null, error: result.error, id });
}

export function formatJsonRpcWireError(message: string): string {
  return JSON.stringify({ jsonrpc: "2.0", error: { code: -32700, message: "Parse error", data: [message] }, id: null });
}
