// The EventStore contract: every adapter runs these cases (test/contracts/stores.test.ts).
// Covers first-copy-wins idempotence (the processor's exactly-once step 2), scan order and
// paging, and tenant isolation.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isTallyError } from '../../src/core/errors.ts';
import type { EventStore, ScanPage, StoredEvent } from '../../src/core/ports/event-store.ts';
import { baseTimeMs, makeEvent, makeStored, makeStoredBatch } from '../support/events.ts';

export interface EventStoreFixture {
  readonly store: EventStore;
  /** Closes the store and opens a new one over the same data; null when the adapter keeps nothing. */
  readonly reopen: (() => Promise<EventStore>) | null;
  dispose(): Promise<void>;
}

export interface EventStoreContractOptions {
  readonly name: string;
  /** A store over fresh, empty state. */
  create(): Promise<EventStoreFixture>;
}

const wholeRange = { fromMs: 0, toMs: 8_640_000_000_000_000 };

async function scanAll(store: EventStore, merchantId: string, limit = 1000, range = wholeRange): Promise<StoredEvent[]> {
  const events: StoredEvent[] = [];
  let after: string | null = null;
  for (let pages = 0; pages < 10_000; pages += 1) {
    const page: ScanPage = await store.scan({ merchantId, ...range, limit, after });
    assert.ok(page.events.length <= limit, 'a page never exceeds the limit');
    events.push(...page.events);
    if (page.next === null) return events;
    after = page.next;
  }
  throw new Error('scan did not end');
}

function ids(events: readonly StoredEvent[]): string[] {
  return events.map((stored) => stored.event.id);
}

export function runEventStoreContract(options: EventStoreContractOptions): void {
  const withStore = async (body: (fixture: EventStoreFixture) => Promise<void>): Promise<void> => {
    const fixture = await options.create();
    try {
      await body(fixture);
    } finally {
      await fixture.dispose();
    }
  };

  describe(`EventStore contract: ${options.name}`, () => {
    describeIdempotence(withStore);
    describeScan(withStore);

    test('a stored event comes back field for field, including unicode and nested values', () =>
      withStore(async ({ store }) => {
        const event = makeEvent({
          id: 'ünïcode-✓-😀',
          type: 'purchase',
          userId: 'user-1',
          properties: { plan: 'pro', seats: 3, trial: false, note: 'naïve "quoted" \\ text' },
          revenue: { amount: 4999, currency: 'EUR' },
          page: { path: '/checkout', host: 'shop.example', referrer: 'https://search.example/', title: 'Checkout — 1/2' },
          visit: { source: 'search.example', country: 'DE', browser: 'Firefox', os: 'Linux', device: 'desktop', utmCampaign: 'spring' },
          locale: null,
        });
        await store.putBatch([makeStored(event, { partition: 3, offset: 42 })]);
        const [stored] = await scanAll(store, event.merchantId);
        assert.deepEqual(stored, { event, source: { partition: 3, offset: 42 } });
      }));

    test('mutating a put or scanned object does not change the stored copy', () =>
      withStore(async ({ store }) => {
        const event = makeEvent({ properties: { plan: 'pro' } });
        const item = makeStored(event);
        await store.putBatch([item]);
        (item.event.properties as Record<string, string>).plan = 'changed';
        const first = await scanAll(store, event.merchantId);
        (first[0]?.event.properties as Record<string, string>).plan = 'changed again';
        const second = await scanAll(store, event.merchantId);
        assert.deepEqual(second[0]?.event.properties, { plan: 'pro' });
      }));

    test('ping resolves on an open store', () => withStore(async ({ store }) => {
      await store.ping();
    }));

    test('events survive closing and reopening the store', async (t) => {
      const fixture = await options.create();
      try {
        if (!fixture.reopen) {
          t.skip('the adapter keeps no state across instances');
          return;
        }
        const batch = makeStoredBatch(3, { merchantId: 'm_durable' });
        await fixture.store.putBatch(batch);
        const reopened = await fixture.reopen();
        assert.deepEqual(await scanAll(reopened, 'm_durable'), batch);
        assert.deepEqual(await reopened.putBatch(batch), [true, true, true], 'the same records put again still count');
      } finally {
        await fixture.dispose();
      }
    });
  });
}

type WithStore = (body: (fixture: EventStoreFixture) => Promise<void>) => Promise<void>;

function describeIdempotence(withStore: WithStore): void {
  test('a first write answers true for every event and stores its source', () =>
    withStore(async ({ store }) => {
      const batch = makeStoredBatch(3, { firstOffset: 10, partition: 2 });
      assert.deepEqual(await store.putBatch(batch), [true, true, true]);
      assert.deepEqual(await scanAll(store, 'm_test'), batch);
    }));

  test('an empty batch answers an empty array', () => withStore(async ({ store }) => {
    assert.deepEqual(await store.putBatch([]), []);
  }));

  test('the same log record put again (redelivery) answers true and changes nothing', () =>
    withStore(async ({ store }) => {
      const batch = makeStoredBatch(4);
      await store.putBatch(batch);
      assert.deepEqual(await store.putBatch(batch), [true, true, true, true]);
      assert.deepEqual(await scanAll(store, 'm_test'), batch);
    }));

  test('a resent event from another log record answers false and the first copy stays', () =>
    withStore(async ({ store }) => {
      const original = makeEvent({ id: 'resent', type: 'first' });
      await store.putBatch([makeStored(original, { partition: 0, offset: 5 })]);
      const resent = { ...original, type: 'second', receivedMs: original.receivedMs + 1000 };
      assert.deepEqual(await store.putBatch([makeStored(resent, { partition: 0, offset: 9 })]), [false]);
      assert.deepEqual(await store.putBatch([makeStored(resent, { partition: 1, offset: 5 })]), [false], 'same offset on another partition is another record');
      assert.deepEqual(await scanAll(store, 'm_test'), [makeStored(original, { partition: 0, offset: 5 })]);
    }));

  test('duplicates inside one batch: the first one wins, the same record twice counts twice', () =>
    withStore(async ({ store }) => {
      const first = makeEvent({ id: 'dup', type: 'first' });
      const later = { ...first, type: 'later' };
      const answers = await store.putBatch([
        makeStored(first, { partition: 0, offset: 1 }),
        makeStored(later, { partition: 0, offset: 2 }),
        makeStored(first, { partition: 0, offset: 1 }),
      ]);
      assert.deepEqual(answers, [true, false, true]);
      assert.deepEqual(await scanAll(store, 'm_test'), [makeStored(first, { partition: 0, offset: 1 })]);
    }));

  test('the same event id under two merchants is two events', () =>
    withStore(async ({ store }) => {
      const a = makeEvent({ merchantId: 'm_a', id: 'shared-id' });
      const b = makeEvent({ merchantId: 'm_b', id: 'shared-id' });
      assert.deepEqual(await store.putBatch([makeStored(a, { partition: 0, offset: 1 }), makeStored(b, { partition: 0, offset: 2 })]), [true, true]);
      assert.deepEqual(ids(await scanAll(store, 'm_a')), ['shared-id']);
      assert.equal((await scanAll(store, 'm_b'))[0]?.source.offset, 2);
    }));

  test('a large mixed batch answers per item, in order, across internal chunking', () =>
    withStore(async ({ store }) => {
      const stored = makeStoredBatch(300, { firstOffset: 0 });
      await store.putBatch(stored);
      const fresh = makeStoredBatch(500, { firstOffset: 1000, startMs: baseTimeMs + 10_000_000 });
      const mixed: StoredEvent[] = [];
      const expected: boolean[] = [];
      fresh.forEach((item, index) => {
        mixed.push(item);
        expected.push(true);
        const old = stored[index % stored.length] as StoredEvent;
        const redelivered = index % 3 === 0;
        mixed.push(redelivered ? old : makeStored(old.event, { partition: 0, offset: 5000 + index }));
        expected.push(redelivered);
      });
      assert.deepEqual(await store.putBatch(mixed), expected);
      assert.equal((await scanAll(store, 'm_test', 5000)).length, 800);
    }));
}

function describeScan(withStore: WithStore): void {
  test('scan orders by (timestamp, id) whatever the insertion order', () =>
    withStore(async ({ store }) => {
      const late = makeEvent({ id: 'a-late', timestampMs: baseTimeMs + 2000 });
      const tieB = makeEvent({ id: 'b', timestampMs: baseTimeMs + 1000 });
      const tieA = makeEvent({ id: 'a', timestampMs: baseTimeMs + 1000 });
      const early = makeEvent({ id: 'z-early', timestampMs: baseTimeMs });
      await store.putBatch([makeStored(late), makeStored(tieB)]);
      await store.putBatch([makeStored(tieA), makeStored(early)]);
      assert.deepEqual(ids(await scanAll(store, 'm_test')), ['z-early', 'a', 'b', 'a-late']);
    }));

  test('ids order by their UTF-8 bytes, as SQLite compares text', () =>
    withStore(async ({ store }) => {
      // U+FFFF sorts before U+1F600 in UTF-8, after it in UTF-16 code units.
      const astral = makeEvent({ id: 'x\u{1F600}' });
      const bmp = makeEvent({ id: 'x\uFFFF' });
      const ascii = makeEvent({ id: 'x~' });
      await store.putBatch([makeStored(astral), makeStored(bmp), makeStored(ascii)]);
      assert.deepEqual(ids(await scanAll(store, 'm_test')), ['x~', 'x\uFFFF', 'x\u{1F600}']);
      assert.deepEqual(ids(await scanAll(store, 'm_test', 1)), ['x~', 'x\uFFFF', 'x\u{1F600}'], 'the cursor agrees');
    }));

  test('scan covers [fromMs, toMs): the start is included, the end is not', () =>
    withStore(async ({ store }) => {
      await store.putBatch(makeStoredBatch(5, { stepMs: 1000 }));
      const page = await store.scan({ merchantId: 'm_test', fromMs: baseTimeMs + 1000, toMs: baseTimeMs + 3000, limit: 10 });
      assert.deepEqual(page.events.map((stored) => stored.event.timestampMs), [baseTimeMs + 1000, baseTimeMs + 2000]);
      assert.equal(page.next, null);
      const empty = await store.scan({ merchantId: 'm_test', fromMs: baseTimeMs + 1000, toMs: baseTimeMs + 1000, limit: 10 });
      assert.deepEqual(empty, { events: [], next: null });
    }));

  test('paging returns every event exactly once, including runs of equal timestamps', () =>
    withStore(async ({ store }) => {
      const batch = makeStoredBatch(23, { stepMs: 0 }).concat(makeStoredBatch(7, { startMs: baseTimeMs + 1, stepMs: 0, firstOffset: 100 }));
      await store.putBatch(batch);
      const expected = ids(await scanAll(store, 'm_test', 1000));
      assert.equal(expected.length, 30);
      for (const limit of [1, 2, 7, 29, 30, 31]) {
        assert.deepEqual(ids(await scanAll(store, 'm_test', limit)), expected, `limit ${limit}`);
      }
    }));

  test('a page that holds the last event has no next cursor; one short of it has one', () =>
    withStore(async ({ store }) => {
      await store.putBatch(makeStoredBatch(3));
      const exact = await store.scan({ merchantId: 'm_test', ...wholeRange, limit: 3 });
      assert.equal(exact.events.length, 3);
      assert.equal(exact.next, null);
      const short = await store.scan({ merchantId: 'm_test', ...wholeRange, limit: 2 });
      assert.equal(short.events.length, 2);
      assert.notEqual(short.next, null);
      const rest = await store.scan({ merchantId: 'm_test', ...wholeRange, limit: 2, after: short.next });
      assert.equal(rest.events.length, 1);
      assert.equal(rest.next, null);
    }));

  test('a cursor stays within the requested range and merchant', () =>
    withStore(async ({ store }) => {
      await store.putBatch(makeStoredBatch(6, { stepMs: 1000 }));
      await store.putBatch(makeStoredBatch(6, { merchantId: 'm_other', stepMs: 500, firstOffset: 50 }));
      const range = { fromMs: baseTimeMs + 1000, toMs: baseTimeMs + 4000 };
      const first = await store.scan({ merchantId: 'm_test', ...range, limit: 2 });
      const second = await store.scan({ merchantId: 'm_test', ...range, limit: 2, after: first.next });
      assert.deepEqual([...first.events, ...second.events].map((stored) => stored.event.timestampMs), [1000, 2000, 3000].map((ms) => baseTimeMs + ms));
      assert.equal(second.next, null);
      assert.ok(second.events.every((stored) => stored.event.merchantId === 'm_test'));
    }));

  test("scan never returns another merchant's events, even at the same times", () =>
    withStore(async ({ store }) => {
      await store.putBatch([...makeStoredBatch(4, { merchantId: 'm_a' }), ...makeStoredBatch(4, { merchantId: 'm_b', firstOffset: 10 })]);
      const a = await scanAll(store, 'm_a', 3);
      assert.equal(a.length, 4);
      assert.ok(a.every((stored) => stored.event.merchantId === 'm_a'));
      assert.deepEqual(await scanAll(store, 'm_unknown'), []);
      assert.deepEqual(await scanAll(store, 'm_'), [], 'a merchant id prefix matches nothing');
    }));

  test('a malformed cursor is rejected with invalid_request', () =>
    withStore(async ({ store }) => {
      await store.putBatch(makeStoredBatch(2));
      for (const after of ['not-a-cursor', Buffer.from('[1]').toString('base64url'), Buffer.from('["x","y"]').toString('base64url')]) {
        await assert.rejects(store.scan({ merchantId: 'm_test', ...wholeRange, limit: 10, after }), (error) => isTallyError(error) && error.code === 'invalid_request');
      }
    }));

  test('a limit below 1 or not an integer is a caller bug and throws', () =>
    withStore(async ({ store }) => {
      for (const limit of [0, -1, 1.5]) {
        await assert.rejects(store.scan({ merchantId: 'm_test', ...wholeRange, limit }), RangeError);
      }
    }));
}
