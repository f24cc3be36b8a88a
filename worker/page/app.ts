/** The landing page: sign in, see every site's VMs, open a console, share it. */
import type { LinkInfo } from "../relay/site-api.ts";

interface ApiErrorBody {
  error?: { message?: string };
}

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  if (res.status === 204) return undefined as T;
  const json = (await res.json()) as T & ApiErrorBody;
  if (!res.ok) throw Object.assign(new Error(json.error?.message ?? res.statusText), { status: res.status });
  return json;
}

const signin = document.getElementById("signin") as HTMLFormElement;

/** After sign-in, go back to the console link that sent the user here (same-origin /open only). */
function continueToNext(): boolean {
  const next = new URLSearchParams(location.search).get("next");
  if (!next || !next.startsWith("/open?")) return false;
  location.replace(next);
  return true;
}
const consoles = document.getElementById("consoles")!;


let role = "viewer";

async function showLinks(): Promise<void> {
  if (role === "viewer") return;
  const links = await api<LinkInfo[]>("GET", "/api/links");
  const rows = links.map((l) => {
    const tr = document.createElement("tr");
    const cells = [`${l.site}/${l.hypervisor}/${l.vm}`, l.createdBy, new Date(l.expiresAt).toLocaleString(), l.viewOnly ? "view only" : "full control", l.state, String(l.sessions)];
    for (const text of cells) tr.insertCell().textContent = text;
    const cell = tr.insertCell();
    if (l.state === "active") {
      const revoke = document.createElement("button");
      revoke.textContent = "Revoke";
      revoke.addEventListener("click", async () => {
        await api("DELETE", `/api/links/${encodeURIComponent(l.id)}`);
        await showLinks();
      });
      cell.appendChild(revoke);
    }
    return tr;
  });
  document.getElementById("link-rows")!.replaceChildren(...rows);
  document.getElementById("links")!.hidden = false;
}

async function share(site: string, hypervisor: string, vm: string): Promise<void> {
  const minutes = Number(prompt("Share this console for how many minutes?", "15"));
  if (!Number.isFinite(minutes) || minutes <= 0) return;
  const viewOnly = confirm("View only? (OK: the viewer can watch but not type. Cancel: full control.)");
  const link = await api<{ url: string }>("POST", "/api/links", { site, hypervisor, vm, ttlSeconds: Math.round(minutes * 60), viewOnly });
  (document.getElementById("new-link-url") as HTMLInputElement).value = link.url;
  document.getElementById("new-link")!.hidden = false;
  await showLinks();
}

async function showConsoles(): Promise<void> {
  const sites = await api<{ name: string }[]>("GET", "/api/sites");
  const rows: HTMLTableRowElement[] = [];
  for (const site of sites) {
    const vms = await api<{ hypervisor: string; id: string; name: string; powerState: string }[]>(
      "GET",
      `/api/sites/${encodeURIComponent(site.name)}/vms`,
    );
    for (const vm of vms) {
      const tr = document.createElement("tr");
      for (const text of [site.name, vm.hypervisor, vm.name || vm.id, vm.powerState]) {
        tr.insertCell().textContent = text;
      }
      const open = document.createElement("button");
      open.textContent = "Open console";
      open.addEventListener("click", async () => {
        try {
          const c = await api<{ pageUrl: string }>("POST", "/api/consoles", {
            site: site.name,
            hypervisor: vm.hypervisor,
            vm: vm.id,
          });
          window.open(c.pageUrl, "_blank", "noopener");
        } catch (err) {
          document.getElementById("list-error")!.textContent = (err as Error).message;
        }
      });
      const actions = tr.insertCell();
      actions.appendChild(open);
      if (role !== "viewer") {
        const shareButton = document.createElement("button");
        shareButton.textContent = "Share…";
        shareButton.addEventListener("click", () =>
          share(site.name, vm.hypervisor, vm.id).catch((err: Error) => {
            document.getElementById("list-error")!.textContent = err.message;
          }),
        );
        actions.appendChild(shareButton);
      }
      rows.push(tr);
    }
  }
  document.getElementById("vms")!.replaceChildren(...rows);
  if (rows.length === 0) {
    document.getElementById("list-error")!.textContent = "No VMs yet: is a connector running?";
  }
  signin.hidden = true;
  consoles.hidden = false;
  await showLinks();
}

signin.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = new FormData(signin);
  try {
    const me = await api<{ user: string; role: string }>("POST", "/api/session", {
      username: form.get("username"),
      password: form.get("password"),
    });
    document.getElementById("who")!.textContent = `${me.user} (${me.role})`;
    role = me.role;
    if (continueToNext()) return;
    await showConsoles();
  } catch (err) {
    document.getElementById("signin-error")!.textContent = (err as Error).message;
  }
});

document.getElementById("signout")!.addEventListener("click", async () => {
  await api("DELETE", "/api/session");
  location.reload();
});

api<{ user: string; role: string }>("GET", "/api/session")
  .then(async (me) => {
    role = me.role;
    document.getElementById("who")!.textContent = `${me.user} (${me.role})`;
    if (continueToNext()) return;
    await showConsoles();
  })
  .catch(() => {
    signin.hidden = false;
  });
