// Result rows of a query while it runs: counts and revenue summed, users and sessions kept as
// the sketches of every piece (cells' bytes, or a live sketch for scanned events) and unioned
// only when a row's estimate is needed — usually just the rows of the returned page.
import { estimateHllBytes, estimateUnion, Hll, hllPoint } from '../../core/analytics/hll.ts';
import type { MetricName } from '../../core/analytics/dimensions.ts';
import type { Filter } from './parse.ts';

const noValues: readonly string[] = [];

/** The union of a row's sketches, estimated once. */
export class SketchUnion {
  readonly #parts: Uint8Array[] = [];
  #live: Hll | null = null;
  #estimate: number | null = null;

  addBytes(bytes: Uint8Array): void {
    this.#parts.push(bytes);
    this.#estimate = null;
  }

  addPoint(point: number): void {
    this.#live ??= Hll.empty();
    this.#live.addPoint(point);
    this.#estimate = null;
  }

  estimate(): number {
    if (this.#estimate !== null) return this.#estimate;
    if (this.#parts.length === 1 && this.#live === null) {
      this.#estimate = estimateHllBytes(this.#parts[0]!);
      return this.#estimate;
    }
    this.#estimate = estimateUnion(this.#live === null ? this.#parts : [...this.#parts, this.#live.toBytes()]);
    return this.#estimate;
  }
}

export interface Row {
  /** Index of the time bucket; 0 without a time dimension. */
  readonly slot: number;
  /** Values of the non-time dimensions, in the query's order. */
  readonly values: readonly string[];
  events: number;
  revenue: bigint;
  readonly users: SketchUnion;
  readonly sessions: SketchUnion;
}

/** Rows by slot, then by their values; sketches are collected only for the metrics asked. */
export class Aggregation {
  /** One map per slot, keyed by rowKey(values): every row of a query has as many values. */
  readonly #slots: Map<string, Row>[] = [];
  readonly #wantUsers: boolean;
  readonly #wantSessions: boolean;

  constructor(metrics: readonly MetricName[]) {
    this.#wantUsers = metrics.includes('users');
    this.#wantSessions = metrics.includes('sessions');
  }

  /** Adds a rollup cell to its row: `value` is the breakdown value, null for a total. */
  addCell(slot: number, value: string | null, events: number, revenue: bigint, users: Uint8Array, sessions: Uint8Array): void {
    const rows = this.#slot(slot);
    const row = rows.get(value ?? '') ?? this.#create(rows, value ?? '', slot, value === null ? noValues : [value]);
    row.events += events;
    row.revenue += revenue;
    if (this.#wantUsers) row.users.addBytes(users);
    if (this.#wantSessions) row.sessions.addBytes(sessions);
  }

  /** Adds one raw event; a null session counts in no session (as the rollup cells do). */
  addEvent(slot: number, values: readonly string[], revenue: bigint, visitorId: string, sessionId: string | null): void {
    const row = this.#row(slot, values);
    row.events += 1;
    row.revenue += revenue;
    if (this.#wantUsers) row.users.addPoint(hllPoint(visitorId));
    if (this.#wantSessions && sessionId !== null) row.sessions.addPoint(hllPoint(sessionId));
  }

  /** Makes sure the row exists: zero-filled buckets and the single row of a plain total. */
  touch(slot: number, values: readonly string[]): void {
    this.#row(slot, values);
  }

  rows(): Row[] {
    const rows: Row[] = [];
    for (const slot of this.#slots) if (slot) for (const row of slot.values()) rows.push(row);
    return rows;
  }

  #slot(slot: number): Map<string, Row> {
    let rows = this.#slots[slot];
    if (!rows) {
      rows = new Map();
      this.#slots[slot] = rows;
    }
    return rows;
  }

  #row(slot: number, values: readonly string[]): Row {
    const rows = this.#slot(slot);
    const key = rowKey(values);
    return rows.get(key) ?? this.#create(rows, key, slot, values);
  }

  #create(rows: Map<string, Row>, key: string, slot: number, values: readonly string[]): Row {
    const row: Row = { slot, values, events: 0, revenue: 0n, users: new SketchUnion(), sessions: new SketchUnion() };
    rows.set(key, row);
    return row;
  }
}

/** One value is its own key; several are length-prefixed, so no separator can make keys collide. */
function rowKey(values: readonly string[]): string {
  if (values.length <= 1) return values[0] ?? '';
  let key = '';
  for (const value of values) key += `${value.length}:${value}|`;
  return key;
}

/**
 * A filter as a predicate on a dimension value. `contains` is case-insensitive (paths and
 * campaign names come in mixed case); `is` and `is_not` compare exactly.
 */
export function filterPredicate(filter: Filter): (value: string) => boolean {
  if (filter.operator === 'contains') {
    const needles = filter.values.map((value) => value.toLowerCase());
    return (value) => {
      const haystack = value.toLowerCase();
      return needles.some((needle) => haystack.includes(needle));
    };
  }
  const values = new Set(filter.values);
  return filter.operator === 'is' ? (value) => values.has(value) : (value) => !values.has(value);
}

/** Index of the slot holding an instant: the last slot starting at or before it. */
export function slotIndex(slotStartsMs: readonly number[], instantMs: number): number {
  let low = 0;
  let high = slotStartsMs.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >>> 1;
    if (slotStartsMs[middle]! <= instantMs) low = middle;
    else high = middle - 1;
  }
  return low;
}
