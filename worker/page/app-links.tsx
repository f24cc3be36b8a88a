/** Share links: active and ended, who made them, viewers now and waiting to join (Allow, Deny), and Revoke. */
import { useEffect, useState } from "hono/jsx/dom";
import type { Link, LinkJoinWaiting } from "../../shared/api/types.ts";
import { api, type Me, when } from "./app-api.ts";
import { ConfirmButton, ErrorText, ScreenTitle, useLoad, Table } from "./app-ui.tsx";

const STATE_WORDS = { active: "Active", expired: "Expired", revoked: "Revoked", locked: "Locked" };

export function LinksScreen({ me }: { me: Me }) {
  // Every 3 s while a viewer waits to be let in (they wait 2 minutes at most), else every 10 s.
  const list = useLoad(() => api("GET /api/links"), [], 10000);
  const someoneWaits = list.data?.some((l) => l.waiting.length > 0) ?? false;
  useEffect(() => {
    if (!someoneWaits) return;
    const t = setInterval(() => void list.reload(), 3000);
    return () => clearInterval(t);
  }, [someoneWaits]);
  const active = list.data?.filter((l) => l.state === "active") ?? [];
  const ended = list.data?.filter((l) => l.state !== "active") ?? [];
  return (
    <section aria-labelledby="links-title">
      <ScreenTitle reloads={list}>
        <span id="links-title">Share links</span>
      </ScreenTitle>
      <p class="hint">
        {me.role === "admin" ? "Every share link." : "The share links you made."} Make new ones from Consoles with Share. A link's address is shown only once,
        when it is made.
      </p>
      <ErrorText error={list.error} />
      <h2>Active</h2>
      {list.data && active.length === 0 && <p>No active links.</p>}
      {active.length > 0 && <LinkTable links={active} reload={list.reload} />}
      <h2>Ended</h2>
      {list.data && ended.length === 0 && <p>No ended links.</p>}
      {ended.length > 0 && <LinkTable links={ended} reload={list.reload} />}
    </section>
  );
}

function LinkTable({ links, reload }: { links: Link[]; reload: () => Promise<void> }) {
  return (
    <Table columns={["VM", "Made by", "Made", "Ends", "Mode", "State", "Viewers now"]}>
      {links.map((l) => (
        <tr key={l.id} data-link-id={l.id}>
          <th scope="row">
            {l.vm}
            <div class="hint">
              {l.site} / {l.hypervisor} · link {l.id}
            </div>
            {l.note && <div class="note">{l.note}</div>}
          </th>
          <td data-label="Made by">{l.createdBy}</td>
          <td data-label="Made">{when(l.createdAt)}</td>
          <td data-label="Ends">
            {when(l.expiresAt)}
            {l.startsAt && <div class="hint">starts {when(l.startsAt)}</div>}
          </td>
          <td data-label="Mode">{l.viewOnly ? "View only" : "Full control"}</td>
          <td data-label="State">
            {STATE_WORDS[l.state]}
            {l.state === "locked" && <div class="hint">{l.pinFailures} wrong PINs were tried: it opens nothing more.</div>}
            {l.state === "active" && l.pin && <div class="hint">PIN{l.pinFailures > 0 ? `: ${l.pinFailures} wrong tried` : ""}</div>}
            {l.state === "active" && l.approval && <div class="hint">Asks before each viewer joins</div>}
          </td>
          <td data-label="Viewers now">
            {l.sessions} of {l.maxViewers}
            {l.watchers.length > 0 && <div class="hint">Watching now: {l.watchers.join(", ")}</div>}
            {l.maxUses !== null && <div class="hint">{l.maxUses === 1 ? "one-time" : "uses"}: {l.uses} of {l.maxUses} used</div>}
            {l.waiting.map((w) => (
              <Waiting key={w.id} link={l} who={w} reload={reload} />
            ))}
          </td>
          <td class="actions">
            {(l.state === "active" || l.state === "locked") && (
              <ConfirmButton
                label="Revoke"
                danger
                title={`Revoke the link to ${l.vm}?`}
                question={<p>{l.sessions > 0 ? `Its ${l.sessions} viewer${l.sessions === 1 ? " is" : "s are"} cut off within 2 seconds, and the` : "The"} link stops working.</p>}
                confirmLabel="Revoke it"
                onConfirm={async () => {
                  await api("DELETE /api/links/:id", { params: { id: l.id } });
                  await reload();
                }}
              />
            )}
          </td>
        </tr>
      ))}
    </Table>
  );
}

/** A viewer waiting on a link that asks first: Allow or Deny (the edge checks the person may). */
function Waiting({ link, who, reload }: { link: Link; who: LinkJoinWaiting; reload: () => Promise<void> }) {
  const [problem, setProblem] = useState<string | null>(null);
  const text = `${who.name} wants to watch ${link.vm} (${link.viewOnly ? "view only" : "with control"})`;
  const answer = async (allow: boolean) => {
    try {
      await api(allow ? "POST /api/links/:id/joins/:join/allow" : "POST /api/links/:id/joins/:join/deny", { params: { id: link.id, join: who.id } });
      setProblem(null);
    } catch (err) {
      setProblem(err instanceof Error ? err.message : String(err));
    }
    await reload();
  };
  return (
    <div class="join-request" role="group" aria-label={text}>
      <span>{text}</span>{" "}
      <button type="button" onClick={() => void answer(true)}>
        Allow
      </button>{" "}
      <button type="button" onClick={() => void answer(false)}>
        Deny
      </button>
      {problem && <span role="alert"> {problem}</span>}
    </div>
  );
}
