/** The site object's own settings, in its SQLite `config` table: the site's name and its connector token's digest. */
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

  private get(key: string): string | null {
    return this.sql.exec<{ value: string }>("SELECT value FROM config WHERE key = ?", key).toArray()[0]?.value ?? null;
  }

  private set(key: string, value: string): void {
    this.sql.exec("INSERT OR REPLACE INTO config (key, value) VALUES (?, ?)", key, value);
  }
}
