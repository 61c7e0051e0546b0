// Turns a batch of events into rollup cells: every event adds to its totals and dimension cells
// at each granularity its dimension is rolled up at, in every generation that must see it (the
// serving one, plus a generation being rebuilt when the record is past the rebuild's boundary).
// Cells are aggregated in memory first, so a batch writes each cell once.
import type { TrackedEvent } from '../event.ts';
import type { Cell, Granularity, RollupLayout } from '../ports/rollup-store.ts';
import { time } from '../limits.ts';
import { Hll, hllPoint } from './hll.ts';
import { dimensionValue, revenueContribution, rollupGranularities, rolledUpDimensions, totalDimension } from './dimensions.ts';

export interface RollupInput {
  readonly event: TrackedEvent;
  /** Log partition and offset of the record, to route records past a rebuild boundary. */
  readonly partition: number;
  readonly offset: number;
}

interface Accumulator {
  events: number;
  revenue: bigint;
  users: Hll;
  sessions: Hll;
}

/** The cells of one (merchant, generation, granularity, bucket): dimension → value → sums. */
interface BucketCells {
  readonly merchantId: string;
  readonly generation: number;
  readonly granularity: Granularity;
  readonly bucketMs: number;
  readonly dimensions: Map<string, Map<string, Accumulator>>;
}

const granularityMs: Record<Granularity, number> = { minute: time.minuteMs, hour: time.hourMs, day: time.dayMs };
const granularities: readonly Granularity[] = ['minute', 'hour', 'day'];

export function bucketStart(timestampMs: number, granularity: Granularity): number {
  const size = granularityMs[granularity];
  return Math.floor(timestampMs / size) * size;
}

/** The generation serving (merchant, time): the last overlay covering it, else the base. */
export function servingGeneration(layout: RollupLayout, merchantId: string, timestampMs: number): number {
  for (let i = layout.overlays.length - 1; i >= 0; i--) {
    const overlay = layout.overlays[i]!;
    const merchantMatches = overlay.merchantId === '*' || overlay.merchantId === merchantId;
    if (merchantMatches && timestampMs >= overlay.fromMs && timestampMs < overlay.toMs) return overlay.generation;
  }
  return layout.base.generation;
}

/** Generations an input must be written to under this layout. */
export function targetGenerations(layout: RollupLayout, input: RollupInput): number[] {
  const { merchantId, timestampMs } = input.event;
  const targets = [servingGeneration(layout, merchantId, timestampMs)];
  for (const building of layout.building) {
    const merchantMatches = building.merchantId === '*' || building.merchantId === merchantId;
    if (!merchantMatches || timestampMs < building.fromMs || timestampMs >= building.toMs) continue;
    // Records up to the boundary are rebuilt from raw events; later ones only reach it here.
    const boundary = building.boundary[input.partition] ?? -1;
    if (input.offset > boundary && !targets.includes(building.generation)) targets.push(building.generation);
  }
  return targets;
}

export class CellBuilder {
  // Nested maps: an event touches ~26 cells, and a joined string key per cell was a third of the
  // processor's time. Here an event builds one key per granularity and looks the rest up by parts.
  readonly #buckets = new Map<string, BucketCells>();
  readonly #currencyOf: (merchantId: string) => string;
  #size = 0;

  constructor(currencyOf: (merchantId: string) => string) {
    this.#currencyOf = currencyOf;
  }

  get size(): number {
    return this.#size;
  }

  /** Adds one event to every cell it belongs to in `generation`. */
  add(event: TrackedEvent, generation: number): void {
    const userPoint = hllPoint(event.visitorId);
    const sessionPoint = event.sessionId === null ? -1 : hllPoint(event.sessionId);
    const currency = this.#currencyOf(event.merchantId);
    const dimensions = rolledUpDimensions(event);
    for (const granularity of granularities) {
      const bucket = this.#bucket(event.merchantId, generation, granularity, bucketStart(event.timestampMs, granularity));
      this.#addTo(bucket, event, totalDimension, '', userPoint, sessionPoint, currency);
      for (const dimension of dimensions) {
        if (!rollupGranularities(dimension).includes(granularity)) continue;
        const value = dimensionValue(event, dimension);
        if (value !== undefined) this.#addTo(bucket, event, dimension, value, userPoint, sessionPoint, currency);
      }
    }
  }

  #bucket(merchantId: string, generation: number, granularity: Granularity, bucketMs: number): BucketCells {
    const id = `${merchantId}\u0000${generation}\u0000${granularity}\u0000${bucketMs}`;
    let bucket = this.#buckets.get(id);
    if (!bucket) {
      bucket = { merchantId, generation, granularity, bucketMs, dimensions: new Map() };
      this.#buckets.set(id, bucket);
    }
    return bucket;
  }

  #addTo(
    bucket: BucketCells, event: TrackedEvent, dimension: string, value: string,
    userPoint: number, sessionPoint: number, currency: string,
  ): void {
    let values = bucket.dimensions.get(dimension);
    if (!values) {
      values = new Map();
      bucket.dimensions.set(dimension, values);
    }
    let cell = values.get(value);
    if (!cell) {
      cell = { events: 0, revenue: 0n, users: Hll.empty(), sessions: Hll.empty() };
      values.set(value, cell);
      this.#size++;
    }
    cell.events += 1;
    if (event.revenue !== null) cell.revenue += revenueContribution(event, dimension, currency);
    cell.users.addPoint(userPoint);
    if (sessionPoint >= 0) cell.sessions.addPoint(sessionPoint);
  }

  cells(): Cell[] {
    const out: Cell[] = [];
    for (const bucket of this.#buckets.values()) {
      const { merchantId, generation, granularity, bucketMs } = bucket;
      for (const [dimension, values] of bucket.dimensions) {
        for (const [value, cell] of values) {
          out.push({
            key: { merchantId, generation, granularity, bucketMs, dimension, value },
            value: { events: cell.events, revenue: cell.revenue, users: cell.users.toBytes(), sessions: cell.sessions.toBytes() },
          });
        }
      }
    }
    return out;
  }
}
