import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createUuidV7Generator, uuidv7 } from '../../../src/core/collect/uuid.ts';

const uuidV7Pattern = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A seeded byte source (xorshift32), so failures reproduce. */
function seededBytes(seed: number): (count: number) => Uint8Array {
  let state = seed >>> 0 || 1;
  return (count) => {
    const bytes = new Uint8Array(count);
    for (let index = 0; index < count; index++) {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      state >>>= 0;
      bytes[index] = state & 0xff;
    }
    return bytes;
  };
}

function timestampOf(id: string): number {
  return Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16);
}

describe('uuidv7', () => {
  test('has the RFC 9562 layout: version 7, variant 10, the timestamp in the first 48 bits', () => {
    const nowMs = Date.UTC(2025, 5, 15, 12, 0, 0, 123);
    const id = uuidv7(nowMs, new Uint8Array(10).fill(0xff));
    assert.match(id, uuidV7Pattern);
    assert.equal(timestampOf(id), nowMs);
    assert.equal(id, `${nowMs.toString(16).padStart(12, '0').replace(/^(.{8})(.{4})$/, '$1-$2')}-7fff-bfff-ffffffffffff`);
  });

  test('all-zero randomness still sets version and variant bits', () => {
    assert.equal(uuidv7(0, new Uint8Array(10)), '00000000-0000-7000-8000-000000000000');
  });

  test('ids from later milliseconds sort after earlier ones, as strings', () => {
    const random = seededBytes(1);
    const ids = [1, 2, 255, 256, 4096, 1_700_000_000_000, 1_700_000_000_001].map((ms) => uuidv7(ms, random(10)));
    assert.deepEqual([...ids].sort(), ids);
  });

  test('refuses too little randomness and out-of-range timestamps', () => {
    assert.throws(() => uuidv7(1, new Uint8Array(9)));
    assert.throws(() => uuidv7(-1, new Uint8Array(10)));
    assert.throws(() => uuidv7(2 ** 48, new Uint8Array(10)));
    assert.throws(() => uuidv7(1.5, new Uint8Array(10)));
  });
});

describe('createUuidV7Generator', () => {
  test('ids strictly increase within one millisecond, through counter overflow', () => {
    const next = createUuidV7Generator(() => 1_700_000_000_000, seededBytes(2));
    const ids = Array.from({ length: 10_000 }, () => next());
    for (let index = 1; index < ids.length; index++) {
      assert.ok((ids[index - 1] ?? '') < (ids[index] ?? ''), `id ${index} is not after id ${index - 1}`);
      assert.match(ids[index] ?? '', uuidV7Pattern);
    }
    // 10,000 ids overflow the 12-bit counter: later ids borrow the following milliseconds.
    assert.ok(timestampOf(ids.at(-1) ?? '') > 1_700_000_000_000);
  });

  test('ids keep increasing when the clock steps back', () => {
    let nowMs = 1_700_000_000_500;
    const next = createUuidV7Generator(() => nowMs, seededBytes(3));
    const before = next();
    nowMs -= 10_000;
    const after = next();
    assert.ok(before < after);
  });

  test('a new millisecond takes the new time', () => {
    let nowMs = 1_000;
    const next = createUuidV7Generator(() => nowMs, seededBytes(4));
    next();
    nowMs = 2_000;
    assert.equal(timestampOf(next()), 2_000);
  });
});
