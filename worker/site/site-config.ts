import type { RecordingPolicy } from "../../shared/api/types.ts";

/**
 * The site object's own settings, in its SQLite `config` table: the site's name, its connector
 * token's digest, and which consoles are recorded.
 */
export class SiteConfig {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
  }

  /** The site's name (null before `initialize`, or after the site was deleted). */
  get site(): string | null {
    return this.get("site");
  }

  set site(name: string) {
    this.set("site", name);
  }

  /** SHA-256 (hex) of the connector token; connectors present the token itself. */
  get tokenHash(): string | null {
    return this.get("token_hash");
  }

  set tokenHash(hash: string) {
    this.set("token_hash", hash);
  }

  /** Which consoles are recorded (docs/recording.md); off unless an admin said otherwise. */
  get recording(): RecordingPolicy {
    const v = this.get("recording");
    return v === "all" || v === "links" ? v : "off";
  }

  set recording(policy: RecordingPolicy) {
    this.set("recording", policy);
  }

  /** Recorded consoles keep the viewer's input too (off unless an admin said otherwise). */
  get recordInput(): boolean {
    return this.get("record_input") === "1";
  }

  set recordInput(on: boolean) {
    this.set("record_input", on ? "1" : "0");
  }

  private get(key: string): string | null {
    return this.sql.exec<{ value: string }>("SELECT value FROM config WHERE key = ?", key).toArray()[0]?.value ?? null;
  }

  private set(key: string, value: string): void {
    this.sql.exec("INSERT OR REPLACE INTO config (key, value) VALUES (?, ?)", key, value);
  }
}
