// The order of one account's entries on Cassandra. There is no global order of transfers: each log
// partition (a source) appends its own entries in its own offset order, and an account's credits
// arrive from every source at once. What an auditor needs is one chain per account that every
// decision agrees with, and a debit records what its funds check counted: `seen`, the last position
// of every other source's entries included in the balance it read. So a debit goes right after the
// credits it saw and before those it did not, and the running balance along the chain at each
// debit is exactly the balance its decider checked. The merge below builds that chain, and
// orderEntries verifies it: a debit whose running balance differs from the one decided is an
// inconsistency, reported rather than hidden.
// Why it always completes: on the real path an account's debits all come from one source (commands
// are keyed by the debited account), the other sources only credit it, and the credits a debit saw
// are ready before it. Sequential settles across sources (the contract tests do that) also merge,
// because every debit then saw everything decided before it.

export interface StoredEntry {
  readonly source: string;
  /** Position of the command in its source (strictly increasing per source). */
  readonly position: number;
  readonly transferId: string;
  readonly merchantId: string;
  readonly amount: bigint;
  /** Debits only: the balance the decider checked, minus the amount. */
  readonly decidedBalance: bigint | null;
  /** Debits only: source → last position of that source's entries the decider's balance included. */
  readonly seen: ReadonlyMap<string, number> | null;
  readonly settledMs: number;
}

export interface OrderedEntry extends StoredEntry {
  /** The running balance after this entry along the chain. */
  readonly balanceAfter: bigint;
}

/** The chain and the debits whose decided balance disagrees with it (empty when consistent). */
export interface EntryChain {
  readonly entries: OrderedEntry[];
  readonly mismatches: string[];
}

export function orderEntries(entries: readonly StoredEntry[]): EntryChain {
  const isDebit = (entry: StoredEntry): boolean => entry.seen !== null;
  const streams = [...Map.groupBy(entries, (entry) => entry.source)]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([source, list]) => {
      const sorted = list.toSorted((a, b) => a.position - b.position);
      // Indexes of the debits, and which of them is next: finding it stays O(1) as the merge advances.
      return { source, list: sorted, next: 0, debits: sorted.flatMap((entry, index) => (isDebit(entry) ? [index] : [])), nextDebit: 0 };
    });
  type Stream = (typeof streams)[number];
  const head = (stream: Stream): StoredEntry | undefined => stream.list[stream.next];
  const nextDebit = (stream: Stream): StoredEntry | undefined => {
    while (stream.nextDebit < stream.debits.length && stream.debits[stream.nextDebit]! < stream.next) stream.nextDebit++;
    const index = stream.debits[stream.nextDebit];
    return index === undefined ? undefined : stream.list[index];
  };
  /** Every entry of another source that the debit saw has been placed. */
  const ready = (debit: StoredEntry): boolean =>
    streams.every((stream) => {
      if (stream.source === debit.source) return true;
      const entry = head(stream);
      const seenThrough = debit.seen!.get(stream.source);
      return entry === undefined || seenThrough === undefined || entry.position > seenThrough;
    });
  /** A credit may go next when every other source's next debit saw it (or no debit follows). */
  const safe = (credit: StoredEntry): boolean =>
    streams.every((stream) => {
      if (stream.source === credit.source) return true;
      const debit = nextDebit(stream);
      return debit === undefined || (debit.seen!.get(credit.source) ?? -1) >= credit.position;
    });

  const ordered: OrderedEntry[] = [];
  const mismatches: string[] = [];
  let balance = 0n;
  while (ordered.length < entries.length) {
    const heads = streams.filter((stream) => head(stream) !== undefined);
    const pick = heads.find((stream) => isDebit(head(stream)!) && ready(head(stream)!)) ??
      heads.find((stream) => !isDebit(head(stream)!) && safe(head(stream)!));
    if (!pick) {
      // Only when debits of one account came from several sources at once: no chain agrees with all.
      mismatches.push(`no order agrees with every decision after ${ordered.length} of ${entries.length} entries`);
      for (const stream of heads) {
        for (const entry of stream.list.slice(stream.next)) {
          balance += entry.amount;
          ordered.push({ ...entry, balanceAfter: balance });
        }
        stream.next = stream.list.length;
      }
      break;
    }
    const entry = head(pick)!;
    pick.next++;
    balance += entry.amount;
    ordered.push({ ...entry, balanceAfter: balance });
    if (entry.decidedBalance !== null && entry.decidedBalance !== balance) {
      mismatches.push(`transfer ${entry.transferId} debited with a balance of ${entry.decidedBalance} decided, ${balance} along the entries`);
    }
  }
  return { entries: ordered, mismatches };
}
