import type { LabelRequirement } from "./labels.js";

/** A page of a list, with the cursor of the next page when there is one. */
export interface Page<T> {
  readonly items: T[];
  /** Pass as `after` to get the next page; absent on the last page. */
  readonly next?: string;
}

/** Filters every list accepts: keyset pagination on the id and label requirements. */
export interface ListOptions {
  readonly limit: number;
  /** Cursor from the previous page's `next`. */
  readonly after?: string | undefined;
  readonly labels?: readonly LabelRequirement[];
}

/**
 * Builds a page from `limit + 1` rows ordered by id: the extra row, when present, only says that
 * there is a next page.
 */
export function toPage<T extends { id: string }>(rows: T[], limit: number): Page<T> {
  if (rows.length <= limit) return { items: rows };
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return last ? { items, next: last.id } : { items };
}
