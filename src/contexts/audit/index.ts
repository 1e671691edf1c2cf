export { type AuditEntry, type AuditFilter, type AuditRecord, AuditStore } from "./store.js";
