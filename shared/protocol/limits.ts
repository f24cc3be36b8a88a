/**
 * Numbers both sides of the tunnel agree on. The edge announces the window and the frame cap in
 * WELCOME, so a later edge can change them without a new protocol version.
 */

/** Protocol versions this build speaks, oldest first. */
export const PROTOCOL_VERSIONS = [1] as const;
export const PROTOCOL_VERSION = 1;

/** 9 bytes: type (u8), stream id (u32 BE), payload length (u32 BE). */
export const FRAME_HEADER_BYTES = 9;

/**
 * The DATA payload every version-1 peer accepts (the first edges and connectors checked exactly
 * this). The edge's own DATA frames to a connector stay within it: connectors announce no limit.
 */
export const MAX_DATA_BYTES = 32 * 1024;

/**
 * Largest DATA payload this build accepts, and what the edge announces in WELCOME's
 * `maxDataBytes`; a connector sends min(WELCOME's, its own), so old peers on either side keep
 * 32 KiB. One frame per batch means one copy less at both ends (see docs/protocol.md); a
 * keystroke does not wait behind it, as the connector's scheduler puts small frames first.
 */
export const MAX_DATA_BYTES_ACCEPTED = 256 * 1024;

/** Largest JSON control payload (HELLO / INVENTORY carry a whole VM inventory). */
export const MAX_CONTROL_BYTES = 1024 * 1024;

/** Largest WebSocket message either side accepts on the tunnel. */
export const MAX_MESSAGE_BYTES = MAX_CONTROL_BYTES + 64 * 1024;

/**
 * Per-stream, per-direction credit window: the most bytes of one stream that may be in flight
 * between the upstream console and the browser at any moment. A reader that stops reading makes
 * nothing in between hold more than this.
 */
export const STREAM_WINDOW_BYTES = 512 * 1024;

/** Receivers return credit in chunks of at least this many bytes, so CREDIT frames stay rare. */
export const CREDIT_CHUNK_BYTES = STREAM_WINDOW_BYTES / 4;

/** WebSocket close reasons are limited to 123 bytes of UTF-8. */
export const MAX_REASON_BYTES = 123;

/** The connector sends this text message; the edge runtime answers HEARTBEAT_REPLY without waking the object. */
export const HEARTBEAT_REQUEST = "porthole:ping";
export const HEARTBEAT_REPLY = "porthole:pong";
/** The connector pings this often; either side treats 3 missed intervals as a dead socket. */
export const HEARTBEAT_INTERVAL_MS = 15_000;
export const HEARTBEAT_TIMEOUT_MS = 3 * HEARTBEAT_INTERVAL_MS;

/** WebSocket subprotocol a browser offers when it returns credit for what it has consumed. */
export const CREDIT_SUBPROTOCOL = "porthole.credit.v1";

/**
 * A plain viewer (no credit subprotocol) cannot be observed reading: workerd's WebSocket has no
 * backpressure. The edge proves consumption with RFB fences it injects (the viewer must echo them
 * after processing everything before them); bytes sent to a plain viewer and not yet proven are
 * "unproven", and may all still sit in the runtime's queue for that socket. A viewer whose next
 * message would take it past this many is cut (4408), whatever it sends; its close frame then
 * waits behind at most this much. See docs/protocol.md.
 */
export const PLAIN_UNPROVEN_LIMIT_BYTES = 16 * 1024 * 1024;

/**
 * What all plain viewers of one site object may hold unproven together, those the edge already
 * closed included until their sockets are gone (worker/relay/unproven-ledger.ts). A Durable Object
 * has 128 MB: this leaves room for everything else (credit viewers hold at most a window each).
 */
export const PLAIN_UNPROVEN_SITE_LIMIT_BYTES = 48 * 1024 * 1024;

/** Viewer input the edge queues beyond the connector's credit before it cuts the viewer (4429). */
export const UP_QUEUE_LIMIT_BYTES = 4 * 1024;

/**
 * The connector must answer OPEN (OPEN_OK or OPEN_ERROR) within this long. A backstop for a
 * connector that stopped working: its own waits (a turn among handshakes 30 s, connect 10 s, the
 * hypervisor API, the RFB greeting 15 s) each end in an OPEN_ERROR before this.
 */
export const OPEN_TIMEOUT_MS = 75_000;

/**
 * A connector that accepted `ack` answers OPEN with OPEN_ACK at once: a control frame, first in
 * its scheduler, one round trip. A live connector does it in well under a second even on a poor
 * link or in a garbage-collection pause; one that has not in this long is treated as stopped
 * (frozen, half-open) and the console is offered to another connector. The upstream's own waits
 * (XenServer's CONNECT can take seconds, a handshake turn up to 30 s) come after the ack and do
 * not count against it.
 */
export const OPEN_ACK_TIMEOUT_MS = 5_000;

/**
 * A connector without `ack` cannot acknowledge OPEN: it counts as stopped only if nothing at all
 * (not even a heartbeat, every HEARTBEAT_INTERVAL_MS) came from it this long after the OPEN.
 */
export const OPEN_SILENCE_MS = HEARTBEAT_INTERVAL_MS + 5_000;

/**
 * The RFB handshake (version, security, ServerInit) must finish this long after the console
 * opened: long enough for a person to type a VNC password, short enough that abandoned handshakes
 * do not pile up on the VNC server (which blacklists addresses that leave many half-open).
 */
export const RFB_HANDSHAKE_TIMEOUT_MS = 60_000;

/** WebSocket subprotocol websockify and many RFB clients offer; selected when it is the only one. */
export const BINARY_SUBPROTOCOL = "binary";

/**
 * Text messages the edge sends to a credit viewer (porthole.credit.v1), JSON with a `type`:
 * - `{"type":"idle-warning","closesAt":"<ISO time>"}`: no input for a while; the console closes
 *   at that time (code 4440) unless the person types or moves the mouse.
 * - `{"type":"recorded","input":<boolean>}`: this console is recorded (and whether its input is);
 *   sent as the console opens, before any console byte (docs/recording.md).
 * - `{"type":"watching","people":[{name,viewOnly,since}],"more":<n>,"joined"|"left":<name>}`: who
 *   is on the same VM's console now (a user name, or "link: <note or link id>"), sent to everyone
 *   on it when a console of that VM opens (the new viewer included) or closes.
 * Plain viewers get none: they speak only RFB.
 */
export const VIEWER_NOTICE_IDLE_WARNING = "idle-warning";
/** The edge's notice, before any console byte, that this console is recorded (docs/recording.md). */
export const VIEWER_NOTICE_RECORDED = "recorded";
/** Who is on the same VM's console now (worker/site/watching.ts). */
export const VIEWER_NOTICE_WATCHING = "watching";
/** A watching notice names at most this many people (then says how many more). */
export const WATCHING_MAX_PEOPLE = 50;
/**
 * To everyone in control of a VM's console (a signed-in person's console, not view-only): a share
 * link's viewer asks to join, `{"type":"join_request","id","link","name","vm","viewOnly","expiresAt"}`;
 * and when that request is settled, `{"type":"join_answered","id","outcome","by"?}` (worker/site/link-joins.ts).
 */
export const VIEWER_NOTICE_JOIN_REQUEST = "join_request";
export const VIEWER_NOTICE_JOIN_ANSWERED = "join_answered";
/** The most characters of the name a share link's viewer gives to be let in. */
export const JOIN_NAME_MAX = 60;
/** How long a share link's viewer waits for an answer before it counts as no. */
export const JOIN_WAIT_MS = 2 * 60_000;
