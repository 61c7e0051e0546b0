import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildTrackedEvent, type BuildContext } from '../../../src/core/collect/build-event.ts';
import { collectItems, parseEventsBody } from '../../../src/core/collect/index.ts';
import { dailySalt, visitorHash } from '../../../src/core/collect/enrich/visitor.ts';
import { defaultCollectLimits } from '../../../src/core/collect/options.ts';
import { isItemError, validateEvent, type ValidEvent } from '../../../src/core/collect/validate.ts';
import type { TrackedEvent } from '../../../src/core/event.ts';
import type { GeoLookup } from '../../../src/core/ports/geo-lookup.ts';

const nowMs = Date.UTC(2025, 5, 15, 12, 0, 0);
const salt = dailySalt(new Uint8Array(32).fill(1), 20_254);
const chrome = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';
const iphone = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1';
const googlebot = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';
const countries: Record<string, string> = { '81.2.69.1': 'GB', '203.0.113.9': 'FR' };
const geo: GeoLookup = { country: (ip) => countries[ip] ?? null };

function context(overrides: Partial<BuildContext> = {}): BuildContext {
  let next = 0;
  return {
    merchantId: 'm1', nowMs, salt, geo, newId: () => `server-${++next}`,
    requestIp: '81.2.69.1', requestUserAgent: chrome, ...overrides,
  };
}

function validated(event: unknown): ValidEvent {
  const result = validateEvent(event, 0, nowMs, defaultCollectLimits);
  if (isItemError(result)) assert.fail(`${result.code}: ${result.message}`);
  return result;
}

function built(event: unknown, overrides: Partial<BuildContext> = {}): TrackedEvent {
  const outcome = buildTrackedEvent(validated(event), context(overrides));
  assert.equal(outcome.kind, 'event');
  return outcome.kind === 'event' ? outcome.event : assert.fail('unreachable');
}

describe('buildTrackedEvent', () => {
  test('a minimal event gets a server id, receipt time, visitor hash and request-derived visit', () => {
    assert.deepEqual(built({ type: 'signup' }), {
      merchantId: 'm1', id: 'server-1', type: 'signup', timestampMs: nowMs, receivedMs: nowMs,
      userId: null, anonymousId: null, sessionId: null,
      visitorId: visitorHash(salt, 'm1', '81.2.69.1', chrome),
      properties: null, revenue: null, page: null,
      visit: { source: null, utmSource: null, utmMedium: null, utmCampaign: null, country: 'GB', browser: 'Chrome', os: 'Windows', device: 'desktop' },
      locale: null,
    });
  });

  test('a client id, identity, properties and revenue are kept', () => {
    const event = built({
      id: 'order-77', type: 'purchase', timestamp: nowMs - 60_000, user_id: 'cus_1', session_id: 's1',
      properties: { plan: 'pro' }, revenue: { amount: 1999, currency: 'EUR' }, context: { locale: 'fr-FR' },
    });
    assert.equal(event.id, 'order-77');
    assert.equal(event.timestampMs, nowMs - 60_000);
    assert.equal(event.receivedMs, nowMs);
    assert.equal(event.visitorId, 'u:cus_1');
    assert.equal(event.sessionId, 's1');
    assert.deepEqual(event.properties, { plan: 'pro' });
    assert.deepEqual(event.revenue, { amount: 1999, currency: 'EUR' });
    assert.equal(event.locale, 'fr-FR');
  });

  test('page fields: path, host, stripped referrer, title, and the referrer as source', () => {
    const event = built({
      type: 'pageview',
      context: { page: { url: 'https://shop.example/p/1?ref=x', referrer: 'https://www.google.com/search?q=shoes', title: 'Shoes' } },
    });
    assert.deepEqual(event.page, { path: '/p/1', host: 'shop.example', referrer: 'https://www.google.com/search', title: 'Shoes' });
    assert.equal(event.visit.source, 'Google');
  });

  test('UTM parameters fill the campaign fields, and utm_source wins over the referrer', () => {
    const event = built({
      type: 'pageview',
      context: { page: { url: 'https://shop.example/?utm_source=newsletter&utm_medium=email&utm_campaign=june', referrer: 'https://mail.google.com/' } },
    });
    assert.deepEqual(
      [event.visit.source, event.visit.utmSource, event.visit.utmMedium, event.visit.utmCampaign],
      ['newsletter', 'newsletter', 'email', 'june'],
    );
    assert.equal(event.page?.referrer, 'https://mail.google.com/');
  });

  test('navigation within the site is not a source', () => {
    const event = built({ type: 'pageview', context: { page: { url: 'https://shop.example/cart', referrer: 'https://shop.example/p/1' } } });
    assert.equal(event.page?.referrer, null);
    assert.equal(event.visit.source, null);
  });

  test('without a page url the page is absent, but the referrer still names the source', () => {
    const event = built({ type: 'app_open', context: { page: { referrer: 'https://t.co/x' } } });
    assert.equal(event.page, null);
    assert.equal(event.visit.source, 'Twitter');
  });

  test('context.ip and context.user_agent override the request\'s own', () => {
    const event = built(
      { type: 'pageview', context: { ip: '203.0.113.9', user_agent: iphone } },
      { requestIp: '10.0.0.1', requestUserAgent: 'node' },
    );
    assert.equal(event.visit.country, 'FR');
    assert.deepEqual([event.visit.browser, event.visit.os, event.visit.device], ['Safari', 'iOS', 'mobile']);
    assert.equal(event.visitorId, visitorHash(salt, 'm1', '203.0.113.9', iphone));
  });

  test('the raw IP and user agent appear nowhere in the event', () => {
    const event = built({ type: 'pageview', context: { ip: '203.0.113.9', user_agent: iphone, page: { url: 'https://shop.example/' } } });
    const serialized = JSON.stringify(event);
    for (const secret of ['203.0.113.9', '81.2.69.1', iphone, chrome, 'iPhone OS']) assert.ok(!serialized.includes(secret), secret);
  });

  test('without any IP the country is unknown and the visitor hash still forms', () => {
    const event = built({ type: 'a' }, { requestIp: null, requestUserAgent: null });
    assert.equal(event.visit.country, null);
    assert.deepEqual([event.visit.browser, event.visit.os, event.visit.device], [null, null, null]);
    assert.equal(event.visitorId, visitorHash(salt, 'm1', null, null));
  });

  test('a crawler\'s browser request is a bot outcome', () => {
    assert.deepEqual(buildTrackedEvent(validated({ type: 'pageview' }), context({ requestUserAgent: googlebot })), { kind: 'bot' });
  });

  test('a bot user agent in the event context is a bot outcome, whatever sent the request', () => {
    for (const userAgent of [googlebot, 'curl/8.5.0']) {
      const outcome = buildTrackedEvent(validated({ type: 'pageview', context: { user_agent: userAgent } }), context({ requestUserAgent: 'axios/1.7.2' }));
      assert.deepEqual(outcome, { kind: 'bot' }, userAgent);
    }
  });

  test('a server or app sending through an HTTP library (curl, axios, okhttp) is not a bot', () => {
    for (const userAgent of ['curl/8.5.0', 'axios/1.7.2', 'okhttp/4.12.0']) {
      const event = built({ type: 'purchase', user_id: 'u1' }, { requestUserAgent: userAgent });
      assert.deepEqual([event.visit.browser, event.visit.os, event.visit.device], [null, null, null], userAgent);
    }
  });
});

describe('collectItems', () => {
  test('splits a body into built events, per-item errors in order, and a bot count', () => {
    const body = [
      JSON.stringify({ type: 'a' }),
      '{"type":',
      JSON.stringify({ type: 'b', context: { user_agent: googlebot } }),
      JSON.stringify({ tpye: 'c' }),
      JSON.stringify({ type: 'd', id: 'client-d' }),
    ].join('\n');
    const { items } = parseEventsBody('application/x-ndjson', body, defaultCollectLimits);
    const result = collectItems(items, context(), defaultCollectLimits);
    assert.deepEqual(result.events.map((event) => [event.type, event.id]), [['a', 'server-1'], ['d', 'client-d']]);
    assert.deepEqual(result.rejected.map((error) => [error.index, error.code]), [[1, 'invalid_json'], [3, 'unknown_field']]);
    assert.equal(result.bots, 1);
  });

  test('an empty body collects nothing', () => {
    assert.deepEqual(collectItems([], context(), defaultCollectLimits), { events: [], rejected: [], bots: 0 });
  });
});
