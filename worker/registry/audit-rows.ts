/** What an audit row is: declared with the API that returns it (`GET /api/audit`), stored as such by the registry. */
export type { AuditEvent, AuditRow } from "../../shared/api/types.ts";
