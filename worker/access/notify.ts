/**
 * Optional notification of access requests and decisions: when NOTIFY_WEBHOOK_URL is set, one
 * small Slack-compatible JSON message (`{text}`) per event. Sent with waitUntil, a 5 s timeout and
 * no retries, so nothing waits on it; a failure is logged, never reported as success.
 */
import type { Env } from "../env.ts";

const TIMEOUT_MS = 5000;

/** Slack's escaping: a reason typed by a requester must not become `<!channel>` or a link. */
export function slackText(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

export function notify(env: Env, waitUntil: (p: Promise<unknown>) => void, text: string): void {
  const url = env.NOTIFY_WEBHOOK_URL;
  if (!url) return;
  waitUntil(
    fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text: slackText(text) }), signal: AbortSignal.timeout(TIMEOUT_MS) })
      .then((res) => {
        if (!res.ok) console.error(JSON.stringify({ event: "notify.failed", status: res.status }));
      })
      .catch((err: unknown) => console.error(JSON.stringify({ event: "notify.failed", error: String(err) }))),
  );
}
