import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isItemError, validateEvent, validateItem, type ValidEvent } from '../../../src/core/collect/validate.ts';
import { defaultCollectLimits } from '../../../src/core/collect/options.ts';
import type { ItemError } from '../../../src/core/errors.ts';
import { limits, time } from '../../../src/core/limits.ts';

const nowMs = Date.UTC(2025, 5, 15, 12, 0, 0);
const options = defaultCollectLimits;

function valid(event: unknown): ValidEvent {
  const result = validateEvent(event, 0, nowMs, options);
  if (isItemError(result)) assert.fail(`expected a valid event, got ${result.code}: ${result.message}`);
  return result;
}

function rejected(event: unknown, code: string, index = 0): ItemError {
  const result = validateEvent(event, index, nowMs, options);
  assert.ok(isItemError(result), `expected ${code}, got a valid event`);
  assert.equal(result.code, code, result.message);
  assert.equal(result.index, index);
  return result;
}

const text = (chars: number): string => 'x'.repeat(chars);

describe('validateEvent: shape', () => {
  test('a minimal event is valid and dated at the time of receipt', () => {
    assert.deepEqual(valid({ type: 'pageview' }), {
      id: null,
      type: 'pageview',
      timestampMs: nowMs,
      userId: null,
      anonymousId: null,
      sessionId: null,
      properties: null,
      revenue: null,
      context: { page: null, userAgent: null, locale: null, ip: null },
    });
  });

  test('a full event keeps every field', () => {
    const event = valid({
      id: 'evt-1',
      type: 'order:completed',
      timestamp: '2025-06-15T11:59:00.250Z',
      user_id: 'u1',
      anonymous_id: 'a1',
      session_id: 's1',
      properties: { plan: 'pro', seats: 3, trial: false },
      revenue: { amount: 4999, currency: 'EUR' },
      context: {
        page: { url: 'https://shop.example/p?q=1', referrer: 'https://google.com/', title: 'P' },
        user_agent: 'Mozilla/5.0',
        locale: 'de-DE',
        ip: '81.2.69.1',
      },
    });
    assert.equal(event.timestampMs, Date.UTC(2025, 5, 15, 11, 59, 0, 250));
    assert.deepEqual(event.properties, { plan: 'pro', seats: 3, trial: false });
    assert.deepEqual(event.revenue, { amount: 4999, currency: 'EUR' });
    assert.deepEqual(event.context, {
      page: { url: 'https://shop.example/p?q=1', referrer: 'https://google.com/', title: 'P' },
      userAgent: 'Mozilla/5.0',
      locale: 'de-DE',
      ip: '81.2.69.1',
    });
  });

  test('null for any optional field means absent', () => {
    const event = valid({
      type: 'a', id: null, timestamp: null, user_id: null, anonymous_id: null, session_id: null,
      properties: null, revenue: null, context: null,
    });
    assert.equal(event.id, null);
    assert.equal(event.timestampMs, nowMs);
    assert.deepEqual(event.context, { page: null, userAgent: null, locale: null, ip: null });
  });

  test('anything but an object is event_not_object', () => {
    for (const value of [null, 1, 'x', true, [], [{ type: 'a' }]]) rejected(value, 'event_not_object');
  });

  test('an unknown top-level field is unknown_field, named in the message', () => {
    const error = rejected({ tpye: 'a' }, 'unknown_field');
    assert.match(error.message, /"tpye"/);
  });

  test('the index is the caller\'s', () => {
    rejected({}, 'invalid_event_type', 7);
  });

  test('event_too_large: eventBytesMax bytes pass, one more byte fails', () => {
    const base = JSON.stringify({ type: 'a', properties: { p: '' } });
    const filler = (bytes: number): unknown => ({ type: 'a', properties: { p: 'x'.repeat(bytes - base.length) } });
    const small = { ...options, eventBytesMax: 200 };
    assert.ok(!isItemError(validateEvent(filler(200), 0, nowMs, small)));
    const result = validateEvent(filler(201), 0, nowMs, small);
    assert.ok(isItemError(result) && result.code === 'event_too_large');
  });

  test('a size the caller measured is trusted', () => {
    const result = validateEvent({ type: 'a' }, 0, nowMs, options, options.eventBytesMax + 1);
    assert.ok(isItemError(result) && result.code === 'event_too_large');
  });

  test('validateItem passes a body item\'s parse error through', () => {
    const error: ItemError = { index: 2, code: 'invalid_json', message: 'bad line' };
    assert.equal(validateItem({ kind: 'error', error }, 2, nowMs, options), error);
    assert.ok(!isItemError(validateItem({ kind: 'value', value: { type: 'a' }, bytes: 12 }, 0, nowMs, options)));
  });
});

describe('validateEvent: id and type', () => {
  test('id of 1 and of 64 characters pass; empty, 65 characters and non-strings fail', () => {
    assert.equal(valid({ type: 'a', id: 'x' }).id, 'x');
    assert.equal(valid({ type: 'a', id: text(limits.eventIdCharsMax) }).id?.length, 64);
    rejected({ type: 'a', id: '' }, 'invalid_event_id');
    rejected({ type: 'a', id: text(limits.eventIdCharsMax + 1) }, 'invalid_event_id');
    rejected({ type: 'a', id: 12 }, 'invalid_event_id');
  });

  test('type: every allowed character passes, 64 characters pass, 65 fail', () => {
    assert.equal(valid({ type: 'Az09_.:-' }).type, 'Az09_.:-');
    valid({ type: text(limits.eventTypeCharsMax) });
    rejected({ type: text(limits.eventTypeCharsMax + 1) }, 'invalid_event_type');
  });

  test('type: missing, empty, wrong characters or not a string fail', () => {
    assert.match(rejected({}, 'invalid_event_type').message, /required/);
    rejected({ type: null }, 'invalid_event_type');
    rejected({ type: '' }, 'invalid_event_type');
    rejected({ type: 'page view' }, 'invalid_event_type');
    rejected({ type: 'pageview\n' }, 'invalid_event_type');
    rejected({ type: 'ümlaut' }, 'invalid_event_type');
    rejected({ type: 5 }, 'invalid_event_type');
  });
});

describe('validateEvent: timestamp', () => {
  const at = (timestamp: unknown): number => valid({ type: 'a', timestamp }).timestampMs;

  test('RFC 3339 in UTC, with offsets, lowercase t/z, a space, and fractions', () => {
    assert.equal(at('2025-06-15T10:00:00Z'), Date.UTC(2025, 5, 15, 10));
    assert.equal(at('2025-06-15t10:00:00z'), Date.UTC(2025, 5, 15, 10));
    assert.equal(at('2025-06-15 10:00:00Z'), Date.UTC(2025, 5, 15, 10));
    assert.equal(at('2025-06-15T12:30:00+02:30'), Date.UTC(2025, 5, 15, 10));
    assert.equal(at('2025-06-15T07:00:00-03:00'), Date.UTC(2025, 5, 15, 10));
    assert.equal(at('2025-06-15T10:00:00.1Z'), Date.UTC(2025, 5, 15, 10, 0, 0, 100));
    assert.equal(at('2025-06-15T10:00:00.123456789Z'), Date.UTC(2025, 5, 15, 10, 0, 0, 123));
  });

  test('epoch milliseconds; a fraction of a millisecond is dropped', () => {
    assert.equal(at(nowMs - 1000), nowMs - 1000);
    assert.equal(at(nowMs - 1000.7), nowMs - 1001);
  });

  test('not RFC 3339 is invalid_timestamp', () => {
    for (const timestamp of [
      '2025-06-15', '2025-06-15T10:00:00', '15/06/2025 10:00', 'yesterday', '2025-06-15T10:00Z',
      '2025-13-01T00:00:00Z', '2025-02-29T00:00:00Z', '2025-06-31T00:00:00Z', '2025-06-15T24:00:00Z',
      '2025-06-15T10:60:00Z', '2025-06-15T10:00:00+24:00', '2025-06-15T10:00:00.Z', '', true, {}, [],
    ]) {
      rejected({ type: 'a', timestamp }, 'invalid_timestamp');
    }
  });

  test('a leap day in a leap year is valid', () => {
    const options2024 = { ...options, lateWindowMs: 5 * 366 * time.dayMs };
    const result = validateEvent({ type: 'a', timestamp: '2024-02-29T00:00:00Z' }, 0, nowMs, options2024);
    assert.ok(!isItemError(result) && result.timestampMs === Date.UTC(2024, 1, 29));
  });

  test('exactly futureSkewMs ahead passes; one ms more is timestamp_in_future', () => {
    assert.equal(at(nowMs + options.futureSkewMs), nowMs + options.futureSkewMs);
    rejected({ type: 'a', timestamp: nowMs + options.futureSkewMs + 1 }, 'timestamp_in_future');
    rejected({ type: 'a', timestamp: '2030-01-01T00:00:00Z' }, 'timestamp_in_future');
  });

  test('exactly lateWindowMs old passes; one ms older is timestamp_too_old', () => {
    assert.equal(at(nowMs - options.lateWindowMs), nowMs - options.lateWindowMs);
    rejected({ type: 'a', timestamp: nowMs - options.lateWindowMs - 1 }, 'timestamp_too_old');
    rejected({ type: 'a', timestamp: '2020-01-01T00:00:00Z' }, 'timestamp_too_old');
  });

  test('epoch seconds sent by mistake are too old, with a hint', () => {
    const error = rejected({ type: 'a', timestamp: Math.floor(nowMs / 1000) }, 'timestamp_too_old');
    assert.match(error.message, /epoch seconds/);
  });

  test('JSON numbers that overflow to Infinity are invalid_timestamp', () => {
    rejected(JSON.parse('{"type":"a","timestamp":1e400}'), 'invalid_timestamp');
  });
});

describe('validateEvent: identity', () => {
  for (const field of ['user_id', 'anonymous_id', 'session_id'] as const) {
    test(`${field}: 128 characters pass, 129 and non-strings are invalid_identity`, () => {
      valid({ type: 'a', [field]: text(limits.identityCharsMax) });
      rejected({ type: 'a', [field]: text(limits.identityCharsMax + 1) }, 'invalid_identity');
      rejected({ type: 'a', [field]: 42 }, 'invalid_identity');
    });
  }

  test('an empty identity is absent, so it can never merge all its senders into one user', () => {
    const event = valid({ type: 'a', user_id: '', anonymous_id: '', session_id: '' });
    assert.deepEqual([event.userId, event.anonymousId, event.sessionId], [null, null, null]);
  });
});

describe('validateEvent: properties', () => {
  const props = (count: number): Record<string, number> =>
    Object.fromEntries(Array.from({ length: count }, (_, index) => [`k${index}`, index]));

  test('50 keys pass, 51 are invalid_properties', () => {
    valid({ type: 'a', properties: props(limits.propertiesKeysMax) });
    rejected({ type: 'a', properties: props(limits.propertiesKeysMax + 1) }, 'invalid_properties');
  });

  test('keys of 128 characters pass; 129 and empty keys fail', () => {
    valid({ type: 'a', properties: { [text(limits.propertyKeyCharsMax)]: 1 } });
    rejected({ type: 'a', properties: { [text(limits.propertyKeyCharsMax + 1)]: 1 } }, 'invalid_properties');
    rejected({ type: 'a', properties: { '': 1 } }, 'invalid_properties');
  });

  test('string values of 1024 characters pass; 1025 fail', () => {
    valid({ type: 'a', properties: { p: text(limits.propertyStringCharsMax) } });
    rejected({ type: 'a', properties: { p: text(limits.propertyStringCharsMax + 1) } }, 'invalid_properties');
  });

  test('objects, arrays and non-finite numbers are not property values', () => {
    rejected({ type: 'a', properties: { p: { nested: 1 } } }, 'invalid_properties');
    rejected({ type: 'a', properties: { p: [1] } }, 'invalid_properties');
    rejected(JSON.parse('{"type":"a","properties":{"p":-1e400}}'), 'invalid_properties');
    rejected({ type: 'a', properties: [] }, 'invalid_properties');
    rejected({ type: 'a', properties: 'p=1' }, 'invalid_properties');
  });

  test('null property values are dropped; all-null properties are absent', () => {
    assert.deepEqual(valid({ type: 'a', properties: { a: 1, b: null } }).properties, { a: 1 });
    assert.equal(valid({ type: 'a', properties: { b: null } }).properties, null);
    assert.equal(valid({ type: 'a', properties: {} }).properties, null);
  });

  test('a "__proto__" property stays plain data and does not change the prototype', () => {
    const properties = valid(JSON.parse('{"type":"a","properties":{"__proto__":"x","b":1}}')).properties;
    assert.ok(properties !== null);
    assert.equal(Object.getPrototypeOf(properties), Object.prototype);
    assert.deepEqual(Object.keys(properties), ['__proto__', 'b']);
  });
});

describe('validateEvent: revenue', () => {
  test('0 and 2^53-1 minor units pass', () => {
    assert.deepEqual(valid({ type: 'a', revenue: { amount: 0, currency: 'USD' } }).revenue, { amount: 0, currency: 'USD' });
    valid({ type: 'a', revenue: { amount: Number.MAX_SAFE_INTEGER, currency: 'JPY' } });
  });

  test('negative, fractional, unsafe, string and missing amounts are invalid_revenue', () => {
    for (const amount of [-1, 1.5, 2 ** 53, '100', null, undefined]) {
      rejected({ type: 'a', revenue: { amount, currency: 'USD' } }, 'invalid_revenue');
    }
  });

  test('the currency must be three uppercase letters', () => {
    for (const currency of ['usd', 'US', 'USDT', 'U$D', '', 840, undefined]) {
      rejected({ type: 'a', revenue: { amount: 1, currency } }, 'invalid_revenue');
    }
  });

  test('unknown revenue fields and non-objects are invalid_revenue', () => {
    rejected({ type: 'a', revenue: { amount: 1, currency: 'USD', tax: 1 } }, 'invalid_revenue');
    rejected({ type: 'a', revenue: 100 }, 'invalid_revenue');
  });
});

describe('validateEvent: context', () => {
  const withContext = (context: unknown): unknown => ({ type: 'a', context });

  test('an unknown context or page field is unknown_field with its path', () => {
    assert.match(rejected(withContext({ userAgent: 'x' }), 'unknown_field').message, /"context.userAgent"/);
    assert.match(rejected(withContext({ page: { path: '/' } }), 'unknown_field').message, /"context.page.path"/);
  });

  test('url and referrer: 2048 characters pass, 2049 are invalid_context', () => {
    const url = `https://example.com/${text(limits.urlCharsMax - 20)}`;
    valid(withContext({ page: { url, referrer: url } }));
    rejected(withContext({ page: { url: `${url}x` } }), 'invalid_context');
    rejected(withContext({ page: { referrer: `${url}x` } }), 'invalid_context');
  });

  test('title 512, user_agent 512, locale 35 pass; one more is invalid_context', () => {
    valid(withContext({ page: { title: text(limits.titleCharsMax) }, user_agent: text(limits.userAgentCharsMax), locale: text(limits.localeCharsMax) }));
    rejected(withContext({ page: { title: text(limits.titleCharsMax + 1) } }), 'invalid_context');
    rejected(withContext({ user_agent: text(limits.userAgentCharsMax + 1) }), 'invalid_context');
    rejected(withContext({ locale: text(limits.localeCharsMax + 1) }), 'invalid_context');
  });

  test('the page url is an absolute http(s) URL or a path', () => {
    valid(withContext({ page: { url: 'http://example.com' } }));
    valid(withContext({ page: { url: 'HTTPS://EXAMPLE.COM/A' } }));
    valid(withContext({ page: { url: '/pricing?plan=pro' } }));
    for (const url of ['example.com/a', '//example.com/a', 'javascript:alert(1)', 'ftp://example.com/', 'http://', 'pricing']) {
      rejected(withContext({ page: { url } }), 'invalid_context');
    }
  });

  test('ip: IPv4 and IPv6 text pass; other text and 46 characters are invalid_context', () => {
    valid(withContext({ ip: '203.0.113.9' }));
    valid(withContext({ ip: '2001:db8::1' }));
    valid(withContext({ ip: '0000:0000:0000:0000:0000:ffff:192.168.100.228' }));
    rejected(withContext({ ip: 'localhost' }), 'invalid_context');
    rejected(withContext({ ip: '1'.repeat(46) }), 'invalid_context');
  });

  test('wrong types are invalid_context', () => {
    for (const context of ['x', [], { page: 'x' }, { page: { url: 1 } }, { user_agent: {} }, { locale: 1 }, { ip: 1 }]) {
      rejected(withContext(context), 'invalid_context');
    }
  });

  test('empty strings are absent (document.referrer is "" for a direct visit)', () => {
    const event = valid(withContext({ page: { url: '/a', referrer: '', title: '' }, user_agent: '', locale: '', ip: '' }));
    assert.deepEqual(event.context, { page: { url: '/a', referrer: null, title: null }, userAgent: null, locale: null, ip: null });
    assert.equal(valid(withContext({ page: { referrer: '' } })).context.page, null);
  });
});
