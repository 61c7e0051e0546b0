import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { dailySalt, dailySaltSource, utcDayIndex, visitorHash, visitorIdOf } from '../../../src/core/collect/enrich/visitor.ts';
import { time } from '../../../src/core/limits.ts';

const secret = new Uint8Array(32).fill(7);
const ip = '203.0.113.9';
const userAgent = 'Mozilla/5.0 (X11; Linux x86_64) Firefox/125.0';

describe('visitor hash', () => {
  const monday = Date.UTC(2025, 5, 16, 0, 0, 0);

  test('UTC day index changes exactly at midnight UTC', () => {
    assert.equal(utcDayIndex(monday - 1) + 1, utcDayIndex(monday));
    assert.equal(utcDayIndex(monday), utcDayIndex(monday + time.dayMs - 1));
  });

  test('the same visitor hashes the same all day (salt from any moment of that UTC day)', () => {
    const morning = dailySalt(secret, utcDayIndex(monday + 1));
    const night = dailySalt(secret, utcDayIndex(monday + time.dayMs - 1));
    assert.equal(visitorHash(morning, 'm1', ip, userAgent), visitorHash(night, 'm1', ip, userAgent));
  });

  test('the next day the same visitor hashes differently', () => {
    const today = dailySalt(secret, utcDayIndex(monday));
    const tomorrow = dailySalt(secret, utcDayIndex(monday + time.dayMs));
    assert.notEqual(visitorHash(today, 'm1', ip, userAgent), visitorHash(tomorrow, 'm1', ip, userAgent));
  });

  test('another merchant, IP, user agent or server secret gives another hash', () => {
    const salt = dailySalt(secret, 20_000);
    const base = visitorHash(salt, 'm1', ip, userAgent);
    assert.notEqual(visitorHash(salt, 'm2', ip, userAgent), base);
    assert.notEqual(visitorHash(salt, 'm1', '203.0.113.10', userAgent), base);
    assert.notEqual(visitorHash(salt, 'm1', ip, `${userAgent} x`), base);
    assert.notEqual(visitorHash(dailySalt(new Uint8Array(32).fill(8), 20_000), 'm1', ip, userAgent), base);
  });

  test('field boundaries matter: ("ab","c") and ("a","bc") differ', () => {
    const salt = dailySalt(secret, 1);
    assert.notEqual(visitorHash(salt, 'ab', 'c', null), visitorHash(salt, 'a', 'bc', null));
  });

  test('the id is "v:" and 16 bytes of base64url, and does not contain the IP', () => {
    const id = visitorHash(dailySalt(secret, 1), 'm1', ip, userAgent);
    assert.match(id, /^v:[A-Za-z0-9_-]{22}$/);
    assert.ok(!id.includes(ip));
  });

  test('the salt source gives one salt object per UTC day and a new one the next day', () => {
    const saltAt = dailySaltSource(secret);
    const first = saltAt(monday + 1);
    assert.equal(saltAt(monday + time.dayMs - 1), first);
    assert.deepEqual(first, dailySalt(secret, utcDayIndex(monday)));
    const next = saltAt(monday + time.dayMs);
    assert.notDeepEqual(next, first);
    assert.deepEqual(next, dailySalt(secret, utcDayIndex(monday) + 1));
  });

  test('a secret shorter than 16 bytes is refused', () => {
    assert.throws(() => dailySalt(new Uint8Array(15), 1), /at least 16 bytes/);
    assert.equal(dailySalt(new Uint8Array(16), 1).byteLength, 32);
  });

  test('identity: user id first, then anonymous id, then the visitor hash', () => {
    const salt = dailySalt(secret, 1);
    const input = { salt, merchantId: 'm1', ip, userAgent };
    assert.equal(visitorIdOf({ ...input, userId: 'U', anonymousId: 'A' }), 'u:U');
    assert.equal(visitorIdOf({ ...input, userId: null, anonymousId: 'A' }), 'a:A');
    assert.equal(visitorIdOf({ ...input, userId: null, anonymousId: null }), visitorHash(salt, 'm1', ip, userAgent));
  });
});
