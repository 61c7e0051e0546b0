// Small CQL helpers shared by the Cassandra stores: lightweight transactions whose timeout is
// an answer to resolve (never a reason to resend), linearizable read-backs, paged reads and the
// conversions of the driver's number types.
import type cassandra from 'cassandra-driver';
import { TallyError } from '../../core/errors.ts';
import { isUncertainWrite, type CassandraSession, type Params, type Row } from './session.ts';

/** Rows per page of a read that may be long (cells of a partition, spans, offsets). */
export const rowsPageSize = 5000;

/** Requests of one step in flight at once: keeps the coordinator busy without flooding it. */
export const requestsInFlightMax = 48;

/**
 * Runs a lightweight transaction: true or false when Cassandra answered, undefined when the outcome
 * is unknown (it timed out: the Paxos round may still complete). The caller then reads the row back
 * with `readSerial`, which finishes any round in flight, and decides from what it finds.
 */
export async function conditionalWrite(session: CassandraSession, query: string, params: Params): Promise<boolean | undefined> {
  try {
    return (await session.execute(query, params, { idempotent: false })).wasApplied();
  } catch (error) {
    if (isUncertainWrite(error)) return undefined;
    throw error;
  }
}

/** One row read linearizably with the LWTs that write it (SERIAL levels), or null. */
export async function readSerial(session: CassandraSession, query: string, params: Params): Promise<Row | null> {
  const consistency = session.options.serialConsistency ?? 'LOCAL_SERIAL';
  return (await session.execute(query, params, { idempotent: true, consistency })).first() ?? null;
}

/** Every row of a read, following the driver's pages. */
export async function readAll(session: CassandraSession, query: string, params: Params, fetchSize = rowsPageSize): Promise<Row[]> {
  const rows: Row[] = [];
  let pageState: string | undefined;
  do {
    const result = await session.execute(query, params, { idempotent: true, fetchSize, ...(pageState ? { pageState } : {}) });
    for (const row of result.rows) rows.push(row);
    pageState = result.pageState ?? undefined;
  } while (pageState);
  return rows;
}

/** bigint columns come back as the driver's Long; every value this store writes is a safe integer. */
export function longOf(value: unknown): number {
  return (value as cassandra.types.Long).toNumber();
}

export function optionalLongOf(value: unknown): number | null {
  return value === null || value === undefined ? null : longOf(value);
}

/** varint columns come back as the driver's Integer. */
export function bigintOf(value: unknown): bigint {
  return BigInt((value as cassandra.types.Integer).toString());
}

/** The driver takes blobs only as Buffers: a view over the same bytes, no copy. */
export function bufferOf(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A loop that should settle in a few rounds did not: the rows keep changing under it. */
export function stillContended(what: string, store = 'rollup store'): TallyError {
  return new TallyError('store_unavailable', `${store}: ${what} kept changing under concurrent writers; retry`);
}
