// Per log partition: the applied offset, the reprocessing fence and the one claimed batch, in a row
// written only by lightweight transactions; the index of a stream's partitions; and the applied
// offsets as dataVersion reads them. The protocol that uses these is in ../rollup-store.ts.
import { createHash } from 'node:crypto';
import type { CassandraSession } from '../session.ts';
import { conditionalWrite, longOf, readAll, readSerial } from '../cql.ts';

/** A claimed batch: its intent id, the offset it applies through, and its intent's chunk count. */
export interface PendingBatch {
  readonly id: string;
  readonly throughOffset: number;
  readonly chunks: number;
}

export interface PartitionState {
  readonly exists: boolean;
  /** -1 when nothing is applied. */
  readonly appliedOffset: number;
  /** Claims must be routed with a layout epoch above this (see startReprocess). */
  readonly fenceEpoch: number;
  readonly pending: PendingBatch | null;
}

export type ClaimOutcome = { readonly claimed: true } | { readonly claimed: false; readonly state: PartitionState };

/** "No claimed batch" is '' rather than null: a null written by every finish would be a tombstone. */
const none = '';
const dataVersionScope = 'offsets';

export class PartitionRows {
  readonly #session: CassandraSession;
  readonly #cql: {
    readonly read: string;
    readonly insertClaim: string;
    readonly claim: string;
    readonly finish: string;
    readonly release: string;
    readonly insertFence: string;
    readonly fence: string;
    readonly register: string;
    readonly partitionsOf: string;
    readonly writeDataVersion: string;
    readonly dataVersions: string;
  };

  constructor(session: CassandraSession) {
    this.#session = session;
    const rows = session.table('rollup_partitions');
    const key = 'WHERE stream = ? AND log_partition = ?';
    const versions = session.table('rollup_data_versions');
    this.#cql = {
      read: `SELECT applied_offset, fence_epoch, pending_id, pending_through, pending_chunks FROM ${rows} ${key}`,
      insertClaim: `INSERT INTO ${rows} (stream, log_partition, applied_offset, fence_epoch, pending_id, pending_through, pending_chunks)
        VALUES (?, ?, -1, 0, ?, ?, ?) IF NOT EXISTS`,
      claim: `UPDATE ${rows} SET pending_id = ?, pending_through = ?, pending_chunks = ? ${key}
        IF applied_offset = ? AND pending_id = '${none}' AND fence_epoch < ?`,
      finish: `UPDATE ${rows} SET applied_offset = ?, pending_id = '${none}' ${key} IF pending_id = ?`,
      release: `UPDATE ${rows} SET pending_id = '${none}' ${key} IF pending_id = ?`,
      insertFence: `INSERT INTO ${rows} (stream, log_partition, applied_offset, fence_epoch, pending_id) VALUES (?, ?, -1, ?, '${none}') IF NOT EXISTS`,
      fence: `UPDATE ${rows} SET fence_epoch = ? ${key} IF pending_id = '${none}' AND applied_offset = ? AND fence_epoch = ?`,
      register: `INSERT INTO ${session.table('rollup_stream_partitions')} (stream, log_partition) VALUES (?, ?)`,
      partitionsOf: `SELECT log_partition FROM ${session.table('rollup_stream_partitions')} WHERE stream = ?`,
      // The offset is the write timestamp: a late writer of an older offset never moves it back.
      writeDataVersion: `INSERT INTO ${versions} (scope, stream, log_partition, applied_offset) VALUES ('${dataVersionScope}', ?, ?, ?) USING TIMESTAMP ?`,
      dataVersions: `SELECT stream, log_partition, applied_offset FROM ${versions} WHERE scope = '${dataVersionScope}'`,
    };
  }

  /** The row as the last LWT left it (SERIAL: also finishes a Paxos round left in flight). */
  async read(stream: string, partition: number): Promise<PartitionState> {
    const row = await readSerial(this.#session, this.#cql.read, [stream, partition]);
    if (!row) return { exists: false, appliedOffset: -1, fenceEpoch: 0, pending: null };
    const pendingId = row.get('pending_id') as string;
    return {
      exists: true,
      appliedOffset: longOf(row.get('applied_offset')),
      fenceEpoch: longOf(row.get('fence_epoch')),
      pending: pendingId === none ? null : { id: pendingId, throughOffset: longOf(row.get('pending_through')), chunks: row.get('pending_chunks') as number },
    };
  }

  /** Records the partition in its stream's index; must precede the partition's first claim. */
  async register(stream: string, partition: number): Promise<void> {
    await this.#session.execute(this.#cql.register, [stream, partition], { idempotent: true });
  }

  async partitionsOf(stream: string): Promise<number[]> {
    return (await readAll(this.#session, this.#cql.partitionsOf, [stream])).map((row) => row.get('log_partition') as number);
  }

  /** Claims [fromOffset, through] if the partition applied exactly fromOffset − 1, nothing is pending and no fence stops `epoch`. */
  async claim(stream: string, partition: number, fromOffset: number, layoutEpoch: number, pending: PendingBatch): Promise<ClaimOutcome> {
    const claimed = [pending.id, pending.throughOffset, pending.chunks];
    let applied = fromOffset === 0 ? await conditionalWrite(this.#session, this.#cql.insertClaim, [stream, partition, ...claimed]) : false;
    if (applied === false) {
      applied = await conditionalWrite(this.#session, this.#cql.claim, [...claimed, stream, partition, fromOffset - 1, layoutEpoch]);
    }
    if (applied) return { claimed: true };
    // Not applied, or unknown: the row says which, and why not.
    const state = await this.read(stream, partition);
    return state.pending?.id === pending.id ? { claimed: true } : { claimed: false, state };
  }

  /**
   * Sets the applied offset to the batch's last offset and clears the claim. Returns false when the
   * claim had been released instead (its merge is impossible); true when this call or anyone else
   * finished it.
   */
  async finish(stream: string, partition: number, pending: PendingBatch): Promise<boolean> {
    for (;;) {
      const applied = await conditionalWrite(this.#session, this.#cql.finish, [pending.throughOffset, stream, partition, pending.id]);
      if (applied) return true;
      const state = await this.read(stream, partition);
      if (state.pending?.id !== pending.id) return state.appliedOffset >= pending.throughOffset;
      // Still ours: the write timed out before Paxos decided it; the condition makes a retry safe.
    }
  }

  /** Drops a claim whose cells cannot merge; a claim already finished or released is left alone. */
  async release(stream: string, partition: number, pendingId: string): Promise<void> {
    for (;;) {
      const applied = await conditionalWrite(this.#session, this.#cql.release, [stream, partition, pendingId]);
      if (applied !== undefined || (await this.read(stream, partition)).pending?.id !== pendingId) return;
    }
  }

  /**
   * One fencing attempt (see startReprocess): creates the row with the fence if it is missing, or
   * raises the fence if nothing is pending and the row is still `state`. True when fenced.
   */
  async fence(stream: string, partition: number, epoch: number, state: PartitionState): Promise<boolean> {
    if (!state.exists) return (await conditionalWrite(this.#session, this.#cql.insertFence, [stream, partition, epoch])) === true;
    return (await conditionalWrite(this.#session, this.#cql.fence, [epoch, stream, partition, state.appliedOffset, state.fenceEpoch])) === true;
  }

  async writeDataVersion(stream: string, partition: number, appliedOffset: number): Promise<void> {
    await this.#session.execute(this.#cql.writeDataVersion, [stream, partition, appliedOffset, appliedOffset], { idempotent: true });
  }

  /** A digest of every partition's applied offset: changes whenever one moves. */
  async dataVersionDigest(): Promise<string> {
    const rows = await readAll(this.#session, this.#cql.dataVersions, []);
    const hash = createHash('sha256');
    for (const row of rows) {
      hash.update(`${row.get('stream') as string}\u0000${row.get('log_partition') as number}\u0000${longOf(row.get('applied_offset'))}\n`);
    }
    return hash.digest('base64url').slice(0, 22);
  }
}
