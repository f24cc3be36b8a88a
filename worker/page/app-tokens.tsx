/**
 * API tokens: everyone makes and revokes their own (admins see everyone's); a new token is shown
 * once. A token may expire (ttlDays); the list shows when it expires and when it was last used.
 */
import { useState } from "hono/jsx/dom";
import type { Token } from "../../shared/api/types.ts";
import { api, type Me, when } from "./app-api.ts";
import { ConfirmButton, CopyField, ErrorText, ScreenTitle, useAction, useLoad, useMounted, Table } from "./app-ui.tsx";

/** Days; "" never expires. The edge allows at most 365. */
const EXPIRIES = [
  { value: "30", label: "30 days" },
  { value: "90", label: "90 days" },
  { value: "365", label: "1 year" },
  { value: "7", label: "7 days" },
  { value: "1", label: "1 day" },
  { value: "", label: "Never (until revoked)" },
];

function expiry(t: Token): string {
  if (!t.expiresAt) return "Never";
  return Date.parse(t.expiresAt) <= Date.now() ? `Expired ${when(t.expiresAt)}` : when(t.expiresAt);
}

export function TokensScreen({ me }: { me: Me }) {
  const tokens = useLoad(() => api("GET /api/tokens"), []);
  const [name, setName] = useState("");
  const [ttl, setTtl] = useState("30");
  const [made, setMade] = useState<{ name: string; token: string } | null>(null);
  const [run, busy, error] = useAction();
  const mounted = useMounted();
  return (
    <section aria-labelledby="tokens-title">
      <ScreenTitle>
        <span id="tokens-title">API tokens</span>
      </ScreenTitle>
      <p class="hint">
        An API token acts as you, with your role, for scripts: send it as <code>Authorization: Bearer &lt;token&gt;</code>.
      </p>
      <form
        class="filters"
        aria-label="New API token"
        onSubmit={(e: Event) => {
          e.preventDefault();
          void run(async () => {
            const created = await api("POST /api/tokens", { body: { name: name.trim(), ...(ttl ? { ttlDays: Number(ttl) } : {}) } });
            if (!mounted.current) return;
            setMade({ name: name.trim(), token: created.token });
            setName("");
            await tokens.reload();
          });
        }}
      >
        <div class="field">
          <label for="token-name">Token name</label>
          <input id="token-name" value={name} required maxlength={128} placeholder="e.g. nightly report" onInput={(e: Event) => setName((e.target as HTMLInputElement).value)} />
        </div>
        <div class="field">
          <label for="token-expiry">Expires after</label>
          <select id="token-expiry" onChange={(e: Event) => setTtl((e.target as HTMLSelectElement).value)}>
            {EXPIRIES.map((x) => (
              <option key={x.value} value={x.value} selected={x.value === ttl}>
                {x.label}
              </option>
            ))}
          </select>
        </div>
        <button type="submit" class="primary" disabled={busy}>
          Create token
        </button>
      </form>
      <ErrorText error={error} />
      {made && (
        <div class="card reveal">
          <CopyField label="API token" value={made.token} />
          <p>Copy “{made.name}” now: it is not shown again.</p>
          <button type="button" onClick={() => setMade(null)}>
            Done
          </button>
        </div>
      )}
      <ErrorText error={tokens.error} />
      {tokens.data?.length === 0 && <p>No API tokens yet.</p>}
      {!!tokens.data?.length && (
        <Table columns={["Name", me.role === "admin" && "Owner", "Made", "Expires", "Last used"]}>
          {tokens.data.map((t) => (
            <tr key={t.id}>
              <th scope="row">{t.name}</th>
              {me.role === "admin" && <td data-label="Owner">{t.user}</td>}
              <td data-label="Made">{when(t.createdAt)}</td>
              <td data-label="Expires">{expiry(t)}</td>
              <td data-label="Last used">{t.lastUsedAt ? when(t.lastUsedAt) : "Never"}</td>
              <td class="actions">
                <ConfirmButton
                  label="Revoke"
                  danger
                  title={`Revoke the token “${t.name}”?`}
                  question={<p>Scripts using it are refused from now on.</p>}
                  confirmLabel="Revoke it"
                  onConfirm={async () => {
                    await api("DELETE /api/tokens/:id", { params: { id: t.id } });
                    await tokens.reload();
                  }}
                />
              </td>
            </tr>
          ))}
        </Table>
      )}
    </section>
  );
}
