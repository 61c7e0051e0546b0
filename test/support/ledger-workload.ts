// The seeded workload of the ledger's invariant tests (test/e2e/ledger-invariants*.test.ts), shared
// by the embedded and the distributed deployment: accounts in two merchants × two currencies
// (funding accounts with overdraft, customers without, two "late" accounts), the funding
// transfers, and per producer its appends of random transfers, redeliveries, reused ids with
// other payloads, every kind of refusal, and malformed records. LEDGER_TEST_SEED=<seed> replays a
// run's workload and kill moments (not the OS scheduling).
import type { TestContext } from 'node:test';
import { randomInteger, type Random } from '../../src/adapters/memory/prng.ts';
import type { Account, TransferCommand } from '../../src/core/payments/ledger.ts';
import { encodeTransferCommand } from '../../src/payments/codec.ts';

export function chooseSeed(t: TestContext): number {
  const seed = process.env.LEDGER_TEST_SEED ? Number(process.env.LEDGER_TEST_SEED) : Date.now() % 2 ** 31;
  t.diagnostic(`seed ${seed} (rerun with LEDGER_TEST_SEED=${seed})`);
  return seed;
}

/** The record the API appends for a command: keyed by the debited account, so its partition holds all its debits. */
export const toRecord = (command: TransferCommand): { key: string; value: string } => ({ key: command.fromAccountId, value: encodeTransferCommand(command) });

export function makeAccount(id: string, merchantId: string, currency: string, allowOverdraft: boolean): Account {
  return { id, merchantId, currency, name: null, allowOverdraft, metadata: {}, balance: 0n, createdMs: 1_700_000_000_000 };
}

export function makeCommand(id: string, from: Account, to: Account | string, amount: bigint, overrides: Partial<TransferCommand> = {}): TransferCommand {
  return {
    id, merchantId: from.merchantId, fromAccountId: from.id, toAccountId: typeof to === 'string' ? to : to.id, amount,
    currency: from.currency, description: null, metadata: {}, requestedMs: 1_700_000_000_000, ...overrides,
  };
}

export function pick<T>(random: Random, items: readonly T[]): T {
  return items[randomInteger(random, 0, items.length)]!;
}

/** One append of a producer: commands, or a raw malformed record. */
export type WorkloadItem = TransferCommand | string;

export interface Workload {
  readonly accounts: Account[];
  readonly funding: TransferCommand[];
  /** Per producer, the appends it makes in order. */
  readonly producers: WorkloadItem[][][];
  /** Reused ids whose original was appended earlier on the same partition: the original must stand. */
  readonly reusedSamePartition: { original: TransferCommand; variant: TransferCommand }[];
  /** Transfers from an account that had nothing when they were decided, redelivered once it has funds. */
  readonly lateFailures: TransferCommand[];
  readonly lateFunding: TransferCommand[];
}

export const merchants = ['m_alpha', 'm_beta'] as const;
const currencies = ['USD', 'EUR'] as const;

export interface WorkloadOptions {
  readonly producers: number;
  readonly appendsPerProducer: number;
  /** Customer accounts per merchant and currency (fewer: more contention per account). */
  readonly customersPerBook?: number;
}

export function generateWorkload(random: Random, options: WorkloadOptions): Workload {
  const customersPerBook = options.customersPerBook ?? 12;
  const accounts: Account[] = [];
  const funders: Account[] = [];
  const customers: Account[] = [];
  const late: Account[] = [];
  for (const merchantId of merchants) {
    for (const currency of currencies) {
      for (let index = 0; index < 2; index++) funders.push(makeAccount(`fund_${merchantId}_${currency}_${index}`, merchantId, currency, true));
      for (let index = 0; index < customersPerBook; index++) customers.push(makeAccount(`acc_${merchantId}_${currency}_${index}`, merchantId, currency, false));
    }
    late.push(makeAccount(`late_${merchantId}`, merchantId, 'USD', false));
  }
  accounts.push(...funders, ...customers, ...late);
  const sameBook = (account: Account, others: readonly Account[]): Account[] =>
    others.filter((other) => other.merchantId === account.merchantId && other.currency === account.currency);

  let next = 0;
  const newId = (prefix: string): string => `${prefix}_${(next++).toString(36)}`;
  const funding: TransferCommand[] = [];
  for (const customer of customers) {
    for (let round = randomInteger(random, 1, 4); round > 0; round--) {
      funding.push(makeCommand(newId('tf'), pick(random, sameBook(customer, funders)), customer, BigInt(randomInteger(random, 500, 3000))));
    }
  }
  const lateFailures = late.map((account) => makeCommand(newId('tl'), account, pick(random, sameBook(account, customers)), 500n));
  const lateFunding = late.map((account) => makeCommand(newId('tlf'), pick(random, sameBook(account, funders)), account, 1000n));

  /** A new command: mostly transfers between two customers of one book, plus each kind of refusal. */
  const freshCommand = (roll: number, from: Account, amount: bigint): TransferCommand => {
    if (roll < 0.13) return makeCommand(newId('t'), pick(random, sameBook(from, funders)), from, amount * 3n);
    if (roll < 0.15) return makeCommand(newId('t'), from, pick(random, customers.filter((other) => other.currency !== from.currency)), amount);
    if (roll < 0.17) return makeCommand(newId('t'), from, 'acc_nobody', amount);
    if (roll < 0.18) return makeCommand(newId('t'), from, from, amount);
    if (roll < 0.2) return makeCommand(newId('t'), from, pick(random, customers.filter((other) => other.merchantId !== from.merchantId)), amount);
    return makeCommand(newId('t'), from, pick(random, sameBook(from, customers).filter((other) => other !== from)), amount);
  };
  const producers: WorkloadItem[][][] = [];
  const reusedSamePartition: { original: TransferCommand; variant: TransferCommand }[] = [];
  for (let producer = 0; producer < options.producers; producer++) {
    /** New commands of this producer; an id is reused either on its own partition or from another account, never both. */
    const issued: TransferCommand[] = [];
    const reusedHere = new Set<string>();
    const reusedElsewhere = new Set<string>();
    const appends: WorkloadItem[][] = [];
    for (let append = 0; append < options.appendsPerProducer; append++) {
      const chunk: WorkloadItem[] = [];
      for (let size = randomInteger(random, 1, 12); size > 0; size--) {
        const roll = random();
        const from = pick(random, customers);
        const amount = BigInt(Math.floor(Math.exp(random() * Math.log(1500))) + 1);
        const earlier = issued.length > 0 ? pick(random, issued) : null;
        let item: WorkloadItem;
        if (roll < 0.06 && earlier) {
          item = earlier; // a redelivery: the same command again
        } else if (roll < 0.09 && earlier && !reusedElsewhere.has(earlier.id)) {
          // The same id with another payload from the same account: same partition, after the original.
          item = { ...earlier, amount: earlier.amount + 1n, description: 'another payload' };
          reusedHere.add(earlier.id);
          reusedSamePartition.push({ original: earlier, variant: item });
        } else if (roll < 0.1 && earlier && !reusedHere.has(earlier.id)) {
          // The same id from another account: another partition, so either may be decided first.
          item = { ...earlier, fromAccountId: pick(random, customers.filter((other) => other.id !== earlier.fromAccountId)).id };
          reusedElsewhere.add(earlier.id);
        } else if (roll < 0.105) {
          item = '{"id": "not a transfer command"';
        } else {
          item = freshCommand(roll, from, amount);
          issued.push(item);
        }
        chunk.push(item);
      }
      appends.push(chunk);
    }
    producers.push(appends);
  }
  return { accounts, funding, producers, reusedSamePartition, lateFailures, lateFunding };
}
