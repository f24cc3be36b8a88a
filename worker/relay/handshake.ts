/** The tunnel's version handshake, edge side: read a connector's HELLO, answer WELCOME. */
import { ProtocolError, encodeJson, FrameType } from "../../shared/protocol/frames.ts";
import {
  HEARTBEAT_INTERVAL_MS,
  MAX_DATA_BYTES,
  PROTOCOL_VERSIONS,
  STREAM_WINDOW_BYTES,
} from "../../shared/protocol/limits.ts";
import { Hello } from "../../shared/protocol/messages.ts";

/**
 * The highest common version and the validated HELLO, or why there is none. Only `protocols` is
 * read before a version is agreed: it is the one field every version keeps. A HELLO that does not
 * validate is a protocol error.
 */
export function negotiate(json: unknown): { ok: true; protocol: number; hello: Hello } | { ok: false; reason: string } {
  const offered = (json as { protocols?: unknown })?.protocols;
  const common = Array.isArray(offered) ? PROTOCOL_VERSIONS.filter((v) => offered.includes(v)).at(-1) : undefined;
  if (common === undefined) {
    return {
      ok: false,
      reason: `protocol versions ${JSON.stringify(offered)} not supported; this edge speaks ${PROTOCOL_VERSIONS.join(", ")}`,
    };
  }
  const parsed = Hello.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ProtocolError(`bad HELLO at ${issue.path.join(".")}: ${issue.message}`);
  }
  return { ok: true, protocol: common, hello: parsed.data };
}

export function welcomeFrame(protocol: number, connectorId: string, site: string): Uint8Array {
  return encodeJson(FrameType.welcome, 0, {
    protocol,
    connectorId,
    site,
    windowBytes: STREAM_WINDOW_BYTES,
    maxDataBytes: MAX_DATA_BYTES,
    heartbeatMs: HEARTBEAT_INTERVAL_MS,
  });
}
