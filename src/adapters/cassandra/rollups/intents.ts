// Intents: the cells of a claimed write, stored before the claim so that whoever finds the claim
// pending (a new partition owner, a reprocessing snapshot, the owner's own retry) can finish it
// from the same delta. A compact binary encoding in chunks: JSON with base64 sketches cost ~20 µs
// a cell to encode (a 11,000-cell batch: 240 ms) and a third more bytes.
import type { Cell, Granularity } from '../../../core/ports/rollup-store.ts';
import type { CassandraSession } from '../session.ts';
import { requestsInFlightMax } from '../cql.ts';

/** Soft bound of one chunk's bytes (a cell started below it is finished; far below Cassandra's mutation bound). */
const chunkBytesMax = 512 * 1024;
/**
 * Intents outlive their write only when a claim's owner died: the next owner of the partition
 * finishes the write within seconds. A week covers any outage the rest of the system survives.
 */
const intentTtlSeconds = 7 * 24 * 3600;
/** Chunks per page when reading an intent back. */
const chunksPageSize = 8;

const granularities: readonly Granularity[] = ['minute', 'hour', 'day'];

/**
 * Per cell: merchant, dimension, value (length-prefixed UTF-8), granularity (1 byte), generation,
 * bucket and events (float64: safe integers), revenue (int64: the rules bound it), users and
 * sessions (length-prefixed bytes). Lengths are uint32 little-endian.
 */
export function encodeIntent(cells: readonly Cell[]): Buffer[] {
  const chunks: Buffer[] = [];
  let buffer = Buffer.allocUnsafe(chunkBytesMax);
  let at = 0;
  const reserve = (bytes: number): void => {
    if (at + bytes <= buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(buffer.length * 2, at + bytes));
    buffer.copy(grown, 0, 0, at);
    buffer = grown;
  };
  const writeString = (text: string): void => {
    reserve(4 + text.length * 3);
    const length = buffer.write(text, at + 4, 'utf8');
    buffer.writeUInt32LE(length, at);
    at += 4 + length;
  };
  const writeBytes = (bytes: Uint8Array): void => {
    reserve(4 + bytes.byteLength);
    buffer.writeUInt32LE(bytes.byteLength, at);
    buffer.set(bytes, at + 4);
    at += 4 + bytes.byteLength;
  };
  for (const { key, value } of cells) {
    writeString(key.merchantId);
    writeString(key.dimension);
    writeString(key.value);
    reserve(33);
    buffer[at] = granularities.indexOf(key.granularity);
    buffer.writeDoubleLE(key.generation, at + 1);
    buffer.writeDoubleLE(key.bucketMs, at + 9);
    buffer.writeDoubleLE(value.events, at + 17);
    buffer.writeBigInt64LE(value.revenue, at + 25);
    at += 33;
    writeBytes(value.users);
    writeBytes(value.sessions);
    if (at >= chunkBytesMax) {
      chunks.push(Buffer.from(buffer.subarray(0, at)));
      at = 0;
    }
  }
  if (at > 0) chunks.push(Buffer.from(buffer.subarray(0, at)));
  return chunks;
}

export function decodeIntent(chunks: readonly Buffer[]): Cell[] {
  const cells: Cell[] = [];
  for (const chunk of chunks) {
    let at = 0;
    const readString = (): string => {
      const length = chunk.readUInt32LE(at);
      at += 4 + length;
      return chunk.toString('utf8', at - length, at);
    };
    const readBytes = (): Uint8Array => {
      const length = chunk.readUInt32LE(at);
      at += 4 + length;
      return new Uint8Array(chunk.subarray(at - length, at));
    };
    while (at < chunk.length) {
      const merchantId = readString();
      const dimension = readString();
      const value = readString();
      const granularity = granularities[chunk[at]!];
      if (granularity === undefined) throw new Error(`rollup intent: unknown granularity code ${chunk[at]}`);
      const generation = chunk.readDoubleLE(at + 1);
      const bucketMs = chunk.readDoubleLE(at + 9);
      const events = chunk.readDoubleLE(at + 17);
      const revenue = chunk.readBigInt64LE(at + 25);
      at += 33;
      const users = readBytes();
      const sessions = readBytes();
      cells.push({ key: { merchantId, generation, granularity, bucketMs, dimension, value }, value: { events, revenue, users, sessions } });
    }
  }
  return cells;
}

export class IntentRows {
  readonly #session: CassandraSession;
  readonly #insert: string;
  readonly #select: string;
  readonly #delete: string;

  constructor(session: CassandraSession) {
    this.#session = session;
    const table = session.table('rollup_intents');
    this.#insert = `INSERT INTO ${table} (source, pending_id, chunk, data) VALUES (?, ?, ?, ?) USING TTL ${intentTtlSeconds}`;
    this.#select = `SELECT chunk, data FROM ${table} WHERE source = ? AND pending_id = ?`;
    this.#delete = `DELETE FROM ${table} WHERE source = ? AND pending_id = ?`;
  }

  async write(source: string, pendingId: string, chunks: readonly Buffer[]): Promise<void> {
    const numbered = chunks.map((data, chunk) => ({ data, chunk }));
    await this.#session.forEachConcurrently(numbered, requestsInFlightMax, async ({ data, chunk }) => {
      await this.#session.execute(this.#insert, [source, pendingId, chunk, data], { idempotent: true });
    });
  }

  /** The intent's cells, or null when fewer than `chunks` chunks are left (finished and deleted, or expired). */
  async read(source: string, pendingId: string, chunks: number): Promise<Cell[] | null> {
    if (chunks === 0) return [];
    const found: Buffer[] = [];
    let pageState: string | undefined;
    do {
      const result = await this.#session.execute(this.#select, [source, pendingId], {
        idempotent: true, fetchSize: chunksPageSize, ...(pageState ? { pageState } : {}),
      });
      for (const row of result.rows) found[row.get('chunk') as number] = row.get('data') as Buffer;
      pageState = result.pageState ?? undefined;
    } while (pageState);
    for (let chunk = 0; chunk < chunks; chunk++) if (!found[chunk]) return null;
    return decodeIntent(found);
  }

  async delete(source: string, pendingId: string): Promise<void> {
    await this.#session.execute(this.#delete, [source, pendingId], { idempotent: true });
  }
}
