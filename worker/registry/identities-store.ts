/**
 * People without an account row: the built-in administrator's generations (one per set of
 * secrets) and Cloudflare Access identities an administrator has set a role for or blocked.
 * Tables `builtin_admin` and `access_identities`: migration 3 in worker/storage/migrations.ts.
 */
import type { Role } from "../env.ts";
import { BUILT_IN_ID } from "./accounts-store.ts";

/**
 * A replaced fingerprint reported again within this time is an isolate of the previous deployment
 * still serving during a rollout: refused, and it changes nothing back. Later, it is a deliberate
 * return to earlier secrets and starts a new generation (nothing of its earlier one comes back).
 * This holds only where reports carry no Worker version (CF_VERSION_METADATA): with versions, an
 * isolate of an older version than the secrets in force never changes them, however late (a
 * gradual deployment keeps both versions serving for as long as it lasts).
 */
export const RETIRED_GRACE_MS = 15 * 60_000;

/** What an isolate reports of its secrets (null: it has none). */
export interface BuiltInReport {
  username: string;
  fingerprint: string;
}

export interface AccessIdentity {
  email: string;
  role: Role | null;
  disabled: boolean;
}

/** Access identities are keyed by their email in lower case: Access itself ignores its case. */
export const accessKey = (email: string) => email.toLowerCase();
/** The user id of an Access identity with no account. */
export const accessId = (email: string) => `access:${accessKey(email)}`;

export class IdentitiesStore {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
  }

  // ---- the built-in administrator ------------------------------------------------------------------

  /**
   * The id of the generation for these secrets; `ended` names the generation they replaced, whose
   * sessions, tokens, consoles and links the caller must end. id null: no secrets, or a fingerprint
   * retired less than RETIRED_GRACE_MS ago, or secrets reported by an older Worker version
   * (`versionAt`: its upload time, where known) than the one that runs the secrets in force.
   */
  builtInGeneration(current: BuiltInReport | null, versionAt: number | null = null, now = Date.now()): { id: string | null; ended: string | null } {
    type Row = { fingerprint: string; username: string; id: string; retired_at: number | null; version_at: number | null };
    const live = this.sql.exec<Row>("SELECT * FROM builtin_admin WHERE retired_at IS NULL").toArray()[0];
    if (current && live?.fingerprint === current.fingerprint) {
      // The newest version known to run these secrets: an older one can then never replace them.
      if (versionAt !== null && (live.version_at === null || versionAt > live.version_at)) {
        this.sql.exec("UPDATE builtin_admin SET version_at = ? WHERE fingerprint = ?", versionAt, live.fingerprint);
      }
      return { id: live.id, ended: null };
    }
    // An isolate of an older Worker version than the one whose secrets are in force: its secrets
    // are the replaced ones (or older still). Refused, and nothing changes.
    if (live && versionAt !== null && live.version_at !== null && versionAt < live.version_at) return { id: null, ended: null };
    if (current) {
      const known = this.sql.exec<Row>("SELECT * FROM builtin_admin WHERE fingerprint = ?", current.fingerprint).toArray()[0];
      // A newer version than the one in force means it: no grace to wait out.
      const newer = versionAt !== null && live?.version_at != null && versionAt > live.version_at;
      if (!newer && known?.retired_at != null && now - known.retired_at < RETIRED_GRACE_MS) return { id: null, ended: null };
    } else if (!live) {
      return { id: null, ended: null };
    }
    if (live) this.sql.exec("UPDATE builtin_admin SET retired_at = ? WHERE fingerprint = ?", now, live.fingerprint);
    let id: string | null = null;
    if (current) {
      // The first generation ever keeps the id 0.3.0 gave the built-in admin: its links stay theirs.
      const first = this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM builtin_admin").one().n === 0;
      id = first ? BUILT_IN_ID : `${BUILT_IN_ID}:${crypto.randomUUID()}`;
      this.sql.exec(
        "INSERT OR REPLACE INTO builtin_admin (fingerprint, username, id, since, retired_at, version_at) VALUES (?, ?, ?, ?, NULL, ?)",
        current.fingerprint,
        current.username,
        id,
        now,
        versionAt,
      );
    }
    return { id, ended: live?.id ?? null };
  }

  /** The built-in administrator behind `userId` if it is the generation in force. */
  builtInById(userId: string): { id: string; name: string; role: Role } | null {
    if (userId !== BUILT_IN_ID && !userId.startsWith(`${BUILT_IN_ID}:`)) return null;
    const row = this.sql.exec<{ username: string }>("SELECT username FROM builtin_admin WHERE id = ? AND retired_at IS NULL", userId).toArray()[0];
    return row ? { id: userId, name: row.username, role: "admin" } : null;
  }

  // ---- Cloudflare Access identities ----------------------------------------------------------------

  getAccess(email: string): AccessIdentity | null {
    const row = this.sql
      .exec<{ email: string; role: Role | null; disabled: number }>("SELECT email, role, disabled FROM access_identities WHERE email = ?", accessKey(email))
      .toArray()[0];
    return row ? { email: row.email, role: row.role, disabled: row.disabled === 1 } : null;
  }

  /** Sets what is given (creating the identity if it was never seen); returns it before and after. */
  setAccess(email: string, patch: { role?: Role; disabled?: boolean }): { before: AccessIdentity | null; after: AccessIdentity } {
    const before = this.getAccess(email);
    this.sql.exec(
      "INSERT INTO access_identities (email, role, disabled, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (email) DO UPDATE SET role = coalesce(?, role), disabled = coalesce(?, disabled), updated_at = excluded.updated_at",
      accessKey(email),
      patch.role ?? null,
      patch.disabled ? 1 : 0,
      Date.now(),
      patch.role ?? null,
      patch.disabled === undefined ? null : patch.disabled ? 1 : 0,
    );
    return { before, after: this.getAccess(email)! };
  }

  listAccess(): AccessIdentity[] {
    return this.sql
      .exec<{ email: string; role: Role | null; disabled: number }>("SELECT email, role, disabled FROM access_identities ORDER BY email")
      .toArray()
      .map((r) => ({ email: r.email, role: r.role, disabled: r.disabled === 1 }));
  }
}
