import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildTrackedEvent, collectItems, dailySalt, defaultCollectLimits, isItemError, parseEventsBody, validateEvent } from '../../../src/core/collect/index.ts';
import { errorCatalogue, TallyError } from '../../../src/core/errors.ts';
import type { GeoLookup } from '../../../src/core/ports/geo-lookup.ts';

const nowMs = Date.UTC(2025, 5, 15, 12, 0, 0);
const geo: GeoLookup = { country: () => 'DE' };
const context = {
  merchantId: 'm1', nowMs, salt: dailySalt(new Uint8Array(32), 1), geo, newId: () => 'server-id',
  requestIp: '198.51.100.23', requestUserAgent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/125.0',
};

/** Mostly-valid values for each field mixed with arbitrary JSON, so deep paths are reached. */
const field = <T>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> =>
  fc.oneof({ arbitrary: valid, weight: 12 }, { arbitrary: fc.jsonValue(), weight: 1 }, { arbitrary: fc.constant(null), weight: 1 });
const eventLike = fc.record(
  {
    id: field(fc.string({ minLength: 1, maxLength: 66 })),
    type: field(fc.stringMatching(/^[A-Za-z0-9_.:-]{1,65}$/)),
    timestamp: field(fc.oneof(fc.integer({ min: nowMs - 8 * 86_400_000, max: nowMs + 600_000 }), fc.date({ min: new Date(nowMs - 8 * 86_400_000), max: new Date(nowMs + 600_000), noInvalidDate: true }).map((date) => date.toISOString()))),
    user_id: field(fc.string({ maxLength: 129 })),
    anonymous_id: field(fc.string()),
    session_id: field(fc.string()),
    properties: field(fc.dictionary(fc.string({ minLength: 1, maxLength: 10 }), fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null)), { maxKeys: 51 })),
    revenue: field(fc.record({ amount: fc.oneof(fc.nat(), fc.double()), currency: fc.oneof(fc.constantFrom('EUR', 'USD'), fc.string({ maxLength: 3 })) })),
    context: field(fc.record({
      page: field(fc.record({
        url: field(fc.oneof(fc.webUrl({ withQueryParameters: true, withFragments: true }), fc.string().map((path) => `/${path}`))),
        referrer: field(fc.oneof(fc.webUrl({ withQueryParameters: true }), fc.string({ maxLength: 30 }))),
        title: field(fc.string({ maxLength: 30 })),
      }, { requiredKeys: [] })),
      user_agent: field(fc.string({ maxLength: 200 })),
      locale: field(fc.string({ maxLength: 40 })),
      ip: field(fc.oneof(fc.ipV4(), fc.ipV6(), fc.string({ maxLength: 50 }))),
    }, { requiredKeys: [] })),
  },
  { requiredKeys: [] },
);

describe('no input crashes the collector core', () => {
  test('any text body parses or throws a TallyError', () => {
    fc.assert(
      fc.property(fc.constantFrom('application/json', 'application/x-ndjson', 'text/plain', 'image/png'), fc.string({ unit: 'binary' }), (type, raw) => {
        try {
          parseEventsBody(type, raw, defaultCollectLimits);
        } catch (error) {
          assert.ok(error instanceof TallyError, String(error));
        }
      }),
      { numRuns: 500 },
    );
  });

  test('any JSON value validates to a ValidEvent or a catalogued ItemError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), eventLike), fc.nat(999), (value, index) => {
        const result = validateEvent(value, index, nowMs, defaultCollectLimits);
        if (isItemError(result)) {
          assert.equal(result.index, index);
          assert.ok(Object.hasOwn(errorCatalogue, result.code));
          assert.ok(result.message.length > 0);
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('every valid event builds, and its serialized form never holds the raw IP or user agent', () => {
    fc.assert(
      fc.property(eventLike, (value) => {
        const result = validateEvent(value, 0, nowMs, defaultCollectLimits);
        if (isItemError(result)) return;
        const outcome = buildTrackedEvent(result, context);
        if (outcome.kind === 'bot') return;
        const serialized = JSON.stringify(outcome.event);
        assert.ok(!serialized.includes(context.requestIp));
        const ip = result.context.ip;
        // An IP short enough to occur by chance inside other text is not a leak worth flagging.
        if (ip !== null && ip.length >= 7) assert.ok(!serialized.includes(`"${ip}"`), ip);
        assert.equal(outcome.event.timestampMs, result.timestampMs);
      }),
      { numRuns: 2000 },
    );
  });

  test('a whole body of arbitrary events collects without throwing', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.jsonValue(), eventLike), { maxLength: 20 }), (values) => {
        const { items } = parseEventsBody('application/json', JSON.stringify(values), defaultCollectLimits);
        const result = collectItems(items, context, defaultCollectLimits);
        assert.equal(result.events.length + result.rejected.length + result.bots, values.length);
      }),
      { numRuns: 300 },
    );
  });
});
