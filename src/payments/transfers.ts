// Accepting a transfer: the fast pre-check (accounts exist for this merchant, one currency, funds
// on the current balance of an account without overdraft), the durable submission (the command
// appended to the log keyed by the debited account, then recorded as pending) and the bounded wait
// for its outcome. The ledger processor re-checks everything where it writes: the pre-check only
// spares the client a transfer that would certainly fail.
import { TallyError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import { LogUnavailableError, type EventLog, type LogPosition } from '../core/ports/event-log.ts';
import type { LedgerStore } from '../core/ports/ledger-store.ts';
import type { Transfer, TransferCommand } from '../core/payments/ledger.ts';
import { encodeTransferCommand, ledgerStream, transferRequestedTopic } from './codec.ts';
import { accountIdPattern, type TransferInput } from './requests.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class TransferDesk {
  readonly #ledger: LedgerStore;
  readonly #log: EventLog;

  constructor(ledger: LedgerStore, log: EventLog) {
    this.#ledger = ledger;
    this.#log = log;
  }

  /** The refusal a transfer certainly meets (a value: it is stored under the idempotency key), or null. */
  async precheck(merchantId: string, input: TransferInput): Promise<TallyError | null> {
    const [from, to] = await Promise.all([
      accountIdPattern.test(input.fromAccountId) ? this.#ledger.getAccount(merchantId, input.fromAccountId) : null,
      accountIdPattern.test(input.toAccountId) ? this.#ledger.getAccount(merchantId, input.toAccountId) : null,
    ]);
    if (!from) return new TallyError('account_not_found', `no account ${input.fromAccountId}`, { param: 'from_account_id' });
    if (!to) return new TallyError('account_not_found', `no account ${input.toAccountId}`, { param: 'to_account_id' });
    if (from.currency !== input.currency || to.currency !== input.currency) {
      return new TallyError('currency_mismatch', `a ${input.currency} transfer needs two ${input.currency} accounts; ${from.id} holds ${from.currency}, ${to.id} holds ${to.currency}`);
    }
    if (!from.allowOverdraft && from.balance < input.amount) {
      return new TallyError('insufficient_funds', `account ${from.id} holds ${from.balance}, less than ${input.amount}`);
    }
    return null;
  }

  /**
   * Appends the command, then records it as pending: once this resolves the transfer is in the
   * log and will be decided. A log that refuses is 503 log_unavailable — never a 202 it cannot keep.
   */
  async submit(command: TransferCommand): Promise<void> {
    let position: LogPosition;
    try {
      [position] = (await this.#log.append(transferRequestedTopic, [{ key: command.fromAccountId, value: encodeTransferCommand(command) }])) as [LogPosition];
    } catch (error) {
      if (error instanceof LogUnavailableError) throw new TallyError('log_unavailable');
      throw error;
    }
    await this.#ledger.recordPending(command, { stream: ledgerStream, partition: position.partition });
  }

  /** The transfer once it is decided, or as it is when waitMs runs out (null: unknown). */
  async waitDecided(merchantId: string, transferId: string, waitMs: number): Promise<Transfer | null> {
    const deadline = performance.now() + waitMs;
    let pauseMs: number = limits.transferPollMsMin;
    for (;;) {
      const transfer = await this.#ledger.getTransfer(merchantId, transferId);
      const leftMs = deadline - performance.now();
      if (!transfer || transfer.status !== 'pending' || leftMs <= 0) return transfer;
      await sleep(Math.min(pauseMs, leftMs));
      pauseMs = Math.min(pauseMs * 2, limits.transferPollMsMax);
    }
  }
}
