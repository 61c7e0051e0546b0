// settle() on Cassandra: one log partition's batch of transfer commands, decided and written
// exactly once, without a transaction across Cassandra partitions. The steps and why each is safe
// are in ../ledger-store.ts; this file is the protocol.
import { randomUUID } from 'node:crypto';
import { TallyError } from '../../../core/errors.ts';
import { decideTransfers, samePayload, type Account, type Decision, type Transfer, type TransferCommand } from '../../../core/payments/ledger.ts';
import { LedgerConflictError, type LedgerSource, type SettleBatch } from '../../../core/ports/ledger-store.ts';
import { conditionalWrite, longOf, readAll, readSerial, requestsInFlightMax } from '../cql.ts';
import type { CassandraSession, Row } from '../session.ts';
import {
  accountColumns, accountFromRows, commandValues, long, payloadColumns, transferColumns, transferFromRow, varint, type AccountState, type TransferRow,
} from './rows.ts';

/** Writes per intent row: a few hundred kilobytes of JSON, far below Cassandra's mutation limit. */
const writesPerIntentPart = 1000;

/** The writes a decided batch makes, recorded before they are made so anyone can finish them. */
type IntentWrite =
  | { readonly kind: 'transfer'; readonly id: string; readonly status: 'succeeded' | 'failed'; readonly failureCode: string | null; readonly settledMs: number }
  | {
    readonly kind: 'entry'; readonly accountId: string; readonly position: number; readonly transferId: string; readonly merchantId: string;
    readonly amount: string; readonly decidedBalance: string | null; readonly seen: Record<string, number> | null; readonly settledMs: number;
  }
  | { readonly kind: 'index'; readonly accountId: string; readonly requestedMs: number; readonly transferId: string; readonly merchantId: string }
  | { readonly kind: 'net'; readonly accountId: string; readonly net: string; readonly lastPosition: number };

interface Intent {
  readonly id: string;
  readonly source: string;
  /** USING TIMESTAMP of the net rows: the batch's throughOffset + 1, increasing per source. */
  readonly seq: number;
  readonly writes: readonly IntentWrite[];
}

interface PartitionRow {
  readonly settledOffset: number;
  readonly pendingId: string;
  readonly pendingThrough: number;
}

/** How a command's transfer id stands once this batch tried to claim it. */
type IdClaim =
  /** indexed: the API's pending record, which wrote the accounts' index rows already. */
  | { readonly kind: 'ours'; readonly indexed: boolean }
  | { readonly kind: 'decided'; readonly transfer: Transfer }
  /** Another payload (or another log partition) holds the id: the command is refused. */
  | { readonly kind: 'foreign'; readonly holder: Transfer };

/** The name of a log partition's rows and claims: 'ledger:payments.transfer.requested/3'. */
export function sourceName(source: LedgerSource): string {
  return `${source.stream}/${source.partition}`;
}

/** Where tests stop a settle to play a crash (throw) or a slow zombie (wait) between two steps. */
export type LedgerStep = 'claimed' | 'applied';

export interface LedgerFaults {
  reached(step: LedgerStep, batch: SettleBatch): Promise<void>;
}

export class LedgerBatches {
  readonly #session: CassandraSession;
  readonly #table: (name: string) => string;
  readonly #faults: LedgerFaults | null;

  constructor(session: CassandraSession, faults: LedgerFaults | null = null) {
    this.#session = session;
    this.#table = (name) => session.table(name);
    this.#faults = faults;
  }

  /** The partition's settled offset, once any batch left pending there is finished. */
  async settledOffset(stream: string, partition: number): Promise<number> {
    const row = await this.#partitionRow(stream, partition);
    if (row === null) return -1;
    if (row.pendingId === '') return row.settledOffset;
    await this.#finishPending(stream, partition, row);
    return row.pendingThrough;
  }

  async settle(batch: SettleBatch): Promise<Decision[]> {
    const { stream, partition } = batch;
    const source = sourceName(batch);
    // A quorum read is enough to refuse early (the claim's LWT below is what decides); only a
    // pending batch needs the SERIAL read, which completes any round in flight before finishing it.
    const row = (await this.#partitionRow(stream, partition, false)) ?? (await this.#createPartitionRow(stream, partition));
    if (row.pendingId !== '') {
      // A member died (or lost the partition) between claiming a batch and finishing it: finish
      // it from its intent; the caller reloads the offset and answers those records from the store.
      const pending = await this.#partitionRow(stream, partition, true);
      if (pending && pending.pendingId !== '') await this.#finishPending(stream, partition, pending);
      throw new LedgerConflictError(`${source}: finished a batch left pending through offset ${row.pendingThrough}`);
    }
    if (row.settledOffset !== batch.fromOffset - 1) {
      throw new LedgerConflictError(`${source}: settled offset is ${row.settledOffset}, batch starts at ${batch.fromOffset}`);
    }
    if (batch.commands.length === 0) {
      await this.#advanceEmpty(batch, row);
      return [];
    }
    const [accounts, claims] = await Promise.all([this.#loadAccounts(batch.commands), this.#claimIds(batch.commands, source)]);
    const decisions = decide(batch, accounts, claims);
    const intent: Intent = { id: randomUUID(), source, seq: batch.throughOffset + 1, writes: intentWrites(batch, source, accounts, claims, decisions) };
    if (intent.writes.length === 0) {
      // Only replays and conflicts: nothing to write but the offset.
      await this.#advanceEmpty(batch, row);
      return decisions;
    }
    await this.#writeIntent(stream, partition, intent);
    await this.#claimBatch(batch, intent.id);
    await this.#faults?.reached('claimed', batch);
    await this.#apply(intent);
    await this.#faults?.reached('applied', batch);
    await this.#finish(stream, partition, intent.id, batch.throughOffset);
    await this.#dropIntent(stream, partition, intent.id);
    return decisions;
  }

  // --- the partition row: settled offset and the one pending batch ---

  /** serial: complete any claim or finish in flight, so what it says is what the next LWT sees. */
  async #partitionRow(stream: string, partition: number, serial = true): Promise<PartitionRow | null> {
    const query = `SELECT settled_offset, pending_id, pending_through FROM ${this.#table('ledger_partitions')} WHERE stream = ? AND partition = ?`;
    const row = serial
      ? await readSerial(this.#session, query, [stream, partition])
      : (await this.#session.execute(query, [stream, partition], { idempotent: true })).first() ?? null;
    if (row === null) return null;
    return {
      settledOffset: longOf(row.settled_offset),
      pendingId: (row.pending_id as string | null) ?? '',
      pendingThrough: row.pending_through === null ? -1 : longOf(row.pending_through),
    };
  }

  async #createPartitionRow(stream: string, partition: number): Promise<PartitionRow> {
    await conditionalWrite(this.#session,
      `INSERT INTO ${this.#table('ledger_partitions')} (stream, partition, settled_offset, pending_id) VALUES (?, ?, -1, '') IF NOT EXISTS`,
      [stream, partition]);
    // Whoever created it, it exists now (a timed-out insert is settled by this SERIAL read).
    const row = await this.#partitionRow(stream, partition);
    if (row === null) throw new TallyError('store_unavailable', `ledger store: the row of ${stream}/${partition} could not be created; retry`);
    return row;
  }

  async #advanceEmpty(batch: SettleBatch, row: PartitionRow): Promise<void> {
    const applied = await conditionalWrite(this.#session,
      `UPDATE ${this.#table('ledger_partitions')} SET settled_offset = ? WHERE stream = ? AND partition = ? IF settled_offset = ? AND pending_id = ''`,
      [long(batch.throughOffset), batch.stream, batch.partition, long(row.settledOffset)]);
    if (applied === true) return;
    const now = await this.#partitionRow(batch.stream, batch.partition);
    // Timed out but applied (the offset is ours): done. Anything else: someone else moved it.
    if (applied === undefined && now?.settledOffset === batch.throughOffset && now.pendingId === '') return;
    throw new LedgerConflictError(`${batch.stream}/${batch.partition}: the offset moved while settling [${batch.fromOffset}, ${batch.throughOffset}]`);
  }

  /** Claims the partition for this batch: only if nobody settled or claimed past our view of it. */
  async #claimBatch(batch: SettleBatch, intentId: string): Promise<void> {
    const applied = await conditionalWrite(this.#session,
      `UPDATE ${this.#table('ledger_partitions')} SET pending_id = ?, pending_through = ? WHERE stream = ? AND partition = ?
       IF settled_offset = ? AND pending_id = ''`,
      [intentId, long(batch.throughOffset), batch.stream, batch.partition, long(batch.fromOffset - 1)]);
    if (applied === true) return;
    if (applied === undefined) {
      const now = await this.#partitionRow(batch.stream, batch.partition);
      // Still pending with our id: the claim went through. Finished already is ambiguous (ours,
      // finished from the intent by someone, or another member's): the caller reloads and answers
      // those records from the store, which is right either way.
      if (now?.pendingId === intentId) return;
    }
    throw new LedgerConflictError(`${batch.stream}/${batch.partition}: another member claimed offsets from ${batch.fromOffset}`);
  }

  async #finish(stream: string, partition: number, intentId: string, throughOffset: number): Promise<void> {
    const applied = await conditionalWrite(this.#session,
      `UPDATE ${this.#table('ledger_partitions')} SET settled_offset = ?, pending_id = '' WHERE stream = ? AND partition = ? IF pending_id = ?`,
      [long(throughOffset), stream, partition, intentId]);
    if (applied !== undefined) return; // false: someone finishing it from the intent was first; same result.
    const now = await this.#partitionRow(stream, partition);
    if (now?.pendingId === intentId) throw new TallyError('store_unavailable', `ledger store: finishing ${stream}/${partition} timed out; retry`);
  }

  async #finishPending(stream: string, partition: number, row: PartitionRow): Promise<void> {
    const intent = await this.#readIntent(stream, partition, row.pendingId);
    if (intent === null) {
      // Its owner finished the batch and dropped the intent since the row was read: nothing to do.
      const now = await this.#partitionRow(stream, partition, true);
      if (now?.pendingId !== row.pendingId) return;
      // Written in full before the claim and kept a week: a pending batch without it lost data.
      throw new Error(`ledger store: the intent ${row.pendingId} of pending batch ${stream}/${partition} is incomplete; the batch cannot be finished`);
    }
    await this.#apply(intent);
    await this.#finish(stream, partition, row.pendingId, row.pendingThrough);
    await this.#dropIntent(stream, partition, row.pendingId);
  }

  // --- intents ---

  async #writeIntent(stream: string, partition: number, intent: Intent): Promise<void> {
    const parts: IntentWrite[][] = [];
    for (let start = 0; start < intent.writes.length; start += writesPerIntentPart) parts.push(intent.writes.slice(start, start + writesPerIntentPart));
    const query = `INSERT INTO ${this.#table('ledger_intents')} (stream, partition, id, part, parts, writes) VALUES (?, ?, ?, ?, ?, ?)`;
    await this.#session.forEachConcurrently(parts.map((writes, part) => ({ writes, part })), requestsInFlightMax, async ({ writes, part }) => {
      const body = JSON.stringify({ source: intent.source, seq: intent.seq, writes });
      await this.#session.execute(query, [stream, partition, intent.id, part, parts.length, body], { idempotent: true });
    });
  }

  /** The intent, or null when it is not all there (dropped by a finisher, or lost). */
  async #readIntent(stream: string, partition: number, id: string): Promise<Intent | null> {
    const rows = await readAll(this.#session,
      `SELECT part, parts, writes FROM ${this.#table('ledger_intents')} WHERE stream = ? AND partition = ? AND id = ?`, [stream, partition, id], 100);
    if (rows.length === 0 || rows.length !== (rows[0]!.parts as number)) return null;
    const bodies = rows.toSorted((a, b) => (a.part as number) - (b.part as number))
      .map((row) => JSON.parse(row.writes as string) as { source: string; seq: number; writes: IntentWrite[] });
    return { id, source: bodies[0]!.source, seq: bodies[0]!.seq, writes: bodies.flatMap((body) => body.writes) };
  }

  async #dropIntent(stream: string, partition: number, id: string): Promise<void> {
    // Best effort: the table's TTL removes what a failure here leaves.
    await this.#session.execute(`DELETE FROM ${this.#table('ledger_intents')} WHERE stream = ? AND partition = ? AND id = ?`,
      [stream, partition, id], { idempotent: true }).catch(() => {});
  }

  /**
   * Makes an intent's writes; anyone may do it, any number of times, concurrently: every write puts
   * the same values in the same rows, and net rows carry the batch's seq as their timestamp, so a
   * late repetition of an older batch loses to newer nets. Three waves, so what a reader sees
   * implies what it depends on: entries (and the index) before the nets that count them, nets
   * before the final statuses — a client told `succeeded` reads balances that include it.
   */
  async #apply(intent: Intent): Promise<void> {
    const waves: IntentWrite[][] = [
      intent.writes.filter((write) => write.kind === 'entry' || write.kind === 'index'),
      intent.writes.filter((write) => write.kind === 'net'),
      intent.writes.filter((write) => write.kind === 'transfer'),
    ];
    for (const wave of waves) await this.#session.forEachConcurrently(wave, requestsInFlightMax, (write) => this.#write(intent, write));
  }

  async #write(intent: Intent, write: IntentWrite): Promise<void> {
    const session = this.#session;
    switch (write.kind) {
      case 'transfer':
        await session.execute(`UPDATE ${this.#table('ledger_transfers')} SET status = ?, failure_code = ?, settled_ms = ? WHERE id = ?`,
          [write.status, write.failureCode, long(write.settledMs), write.id], { idempotent: true });
        return;
      case 'entry':
        await session.execute(
          `INSERT INTO ${this.#table('ledger_entries')} (account_id, source, position, transfer_id, merchant_id, amount, decided_balance, seen, settled_ms)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [
            write.accountId, intent.source, long(write.position), write.transferId, write.merchantId, long(BigInt(write.amount)),
            write.decidedBalance === null ? null : varint(BigInt(write.decidedBalance)),
            write.seen === null ? null : Object.fromEntries(Object.entries(write.seen).map(([source, position]) => [source, long(position)])),
            long(write.settledMs),
          ],
          { idempotent: true });
        return;
      case 'index':
        await session.execute(
          `INSERT INTO ${this.#table('ledger_account_transfers')} (account_id, requested_ms, transfer_id, merchant_id) VALUES (?, ?, ?, ?)`,
          [write.accountId, long(write.requestedMs), write.transferId, write.merchantId], { idempotent: true });
        return;
      case 'net':
        await session.execute(
          `UPDATE ${this.#table('ledger_accounts')} USING TIMESTAMP ? SET net = ?, last_position = ? WHERE id = ? AND source = ?`,
          [long(intent.seq), varint(BigInt(write.net)), long(write.lastPosition), write.accountId, intent.source], { idempotent: true });
        return;
    }
  }

  // --- state ---

  async #loadAccounts(commands: readonly TransferCommand[]): Promise<Map<string, AccountState>> {
    const ids = [...new Set(commands.flatMap((command) => [command.fromAccountId, command.toAccountId]))];
    const accounts = new Map<string, AccountState>();
    const query = `SELECT ${accountColumns} FROM ${this.#table('ledger_accounts')} WHERE id = ?`;
    await this.#session.forEachConcurrently(ids, requestsInFlightMax, async (id) => {
      const state = accountFromRows(await readAll(this.#session, query, [id]));
      if (state) accounts.set(id, state);
    });
    return accounts;
  }

  /**
   * Makes sure each new transfer id of the batch is this partition's to decide. The first to name
   * an id (the API's pending record, or a claim here) holds it with its payload; a timed-out claim
   * is settled by a SERIAL read of the row, never by claiming again.
   */
  async #claimIds(commands: readonly TransferCommand[], source: string): Promise<Map<string, IdClaim>> {
    const firstOfId = new Map<string, TransferCommand>();
    for (const command of commands) if (!firstOfId.has(command.id)) firstOfId.set(command.id, command);
    const claims = new Map<string, IdClaim>();
    const table = this.#table('ledger_transfers');
    const select = `SELECT ${transferColumns} FROM ${table} WHERE id = ?`;
    await this.#session.forEachConcurrently([...firstOfId.values()], requestsInFlightMax, async (command) => {
      let row: Row | null = (await this.#session.execute(select, [command.id], { idempotent: true })).first() ?? null;
      if (row === null) {
        const applied = await conditionalWrite(this.#session,
          `INSERT INTO ${table} (id, ${payloadColumns}, claim_source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
          [command.id, ...commandValues(command), source]);
        if (applied === true) {
          claims.set(command.id, { kind: 'ours', indexed: false });
          return;
        }
        row = await readSerial(this.#session, select, [command.id]);
        if (row === null) throw new TallyError('store_unavailable', `ledger store: the claim of transfer ${command.id} is unsettled; retry`);
      }
      let stored = transferFromRow(row);
      if (stored.claimSource === null && stored.transfer.status === 'pending' && samePayload(stored.transfer, command)) {
        // The API's pending record of this very command: take it for this partition (once, by LWT).
        const applied = await conditionalWrite(this.#session, `UPDATE ${table} SET claim_source = ? WHERE id = ? IF claim_source = null`, [source, command.id]);
        if (applied === true) {
          claims.set(command.id, { kind: 'ours', indexed: true });
          return;
        }
        const now = await readSerial(this.#session, select, [command.id]);
        if (now === null) throw new Error(`ledger store: transfer ${command.id} vanished while being claimed`);
        stored = transferFromRow(now);
      }
      claims.set(command.id, classify(stored, command, source));
    });
    return claims;
  }
}

function classify(stored: TransferRow, command: TransferCommand, source: string): IdClaim {
  if (stored.transfer.status !== 'pending') return { kind: 'decided', transfer: stored.transfer };
  // Claimed for this partition before: by the API's pending record (which wrote the index rows),
  // or by an attempt here that died before its batch was claimed. Still ours either way.
  if (stored.claimSource === source && samePayload(stored.transfer, command)) return { kind: 'ours', indexed: false };
  return { kind: 'foreign', holder: stored.transfer };
}

/** The domain decides every command whose id is ours or decided; an id held elsewhere is a conflict. */
function decide(batch: SettleBatch, accounts: ReadonlyMap<string, AccountState>, claims: ReadonlyMap<string, IdClaim>): Decision[] {
  const transfers = new Map<string, Transfer>();
  for (const [id, claim] of claims) if (claim.kind === 'decided') transfers.set(id, claim.transfer);
  const accountsById = new Map<string, Account>([...accounts].map(([id, state]) => [id, state.account]));
  const decidable = batch.commands.filter((command) => claims.get(command.id)?.kind !== 'foreign');
  const decided = decideTransfers(decidable, { accounts: accountsById, transfers }, batch.settledMs);
  let next = 0;
  return batch.commands.map((command): Decision => {
    const claim = claims.get(command.id)!;
    return claim.kind === 'foreign' ? { kind: 'conflict', existing: claim.holder, command } : decided[next++]!;
  });
}

/** What the decisions write: final statuses, entries, the accounts' transfer index and this source's nets. */
function intentWrites(
  batch: SettleBatch, source: string, accounts: ReadonlyMap<string, AccountState>, claims: ReadonlyMap<string, IdClaim>, decisions: readonly Decision[],
): IntentWrite[] {
  const writes: IntentWrite[] = [];
  const nets = new Map<string, { net: bigint; lastPosition: number }>();
  decisions.forEach((decision, index) => {
    if (decision.kind !== 'succeeded' && decision.kind !== 'failed') return;
    const { transfer } = decision;
    writes.push({ kind: 'transfer', id: transfer.id, status: transfer.status as 'succeeded' | 'failed', failureCode: transfer.failureCode, settledMs: batch.settledMs });
    const claim = claims.get(transfer.id);
    const indexed = claim?.kind === 'ours' && claim.indexed;
    for (const accountId of indexed ? [] : new Set([transfer.fromAccountId, transfer.toAccountId])) {
      writes.push({ kind: 'index', accountId, requestedMs: transfer.requestedMs, transferId: transfer.id, merchantId: transfer.merchantId });
    }
    if (decision.kind !== 'succeeded') return;
    // Positions: the command's place in its source. fromOffset + index never passes the command's
    // offset and grows with it, so positions increase along the source across batches.
    const position = batch.fromOffset + index;
    for (const entry of decision.entries) {
      const state = accounts.get(entry.accountId)!;
      const debit = entry.amount < 0n;
      writes.push({
        kind: 'entry', accountId: entry.accountId, position, transferId: entry.transferId, merchantId: entry.merchantId,
        amount: entry.amount.toString(), decidedBalance: debit ? entry.balanceAfter.toString() : null,
        seen: debit ? seenBy(state, source) : null, settledMs: entry.settledMs,
      });
      const before = nets.get(entry.accountId) ?? { net: state.nets.get(source)?.net ?? 0n, lastPosition: -1 };
      nets.set(entry.accountId, { net: before.net + entry.amount, lastPosition: position });
    }
  });
  for (const [accountId, { net, lastPosition }] of nets) writes.push({ kind: 'net', accountId, net: net.toString(), lastPosition });
  return writes;
}

/** What a debit's funds check counted from the other sources: the last position of each one's net. */
function seenBy(state: AccountState, source: string): Record<string, number> {
  const seen: Record<string, number> = {};
  for (const [other, { lastPosition }] of state.nets) if (other !== source) seen[other] = lastPosition;
  return seen;
}
