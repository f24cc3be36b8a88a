/** The XML-RPC codec Xen Orchestra's own xen-api client uses (no bundled types). */
declare module "@vates/xml/parse" {
  export function parseXml(xml: string, options?: { normalize?: boolean; strict?: boolean; trim?: boolean }): unknown;
}
declare module "@vates/xml/format" {
  export function formatXml(tree: unknown, options?: { indent?: number }): string;
}
declare module "@vates/xml-rpc/parser" {
  export const xmlRpcParser: { parse(tree: unknown): { params?: unknown[]; fault?: unknown } };
}
declare module "@vates/xml-rpc/formatter" {
  export const xmlRpcFormatter: { format_methodCall(call: { methodName: string; params: unknown[] }): unknown };
}
