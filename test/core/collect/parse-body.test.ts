import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEventsBody, type BodyItem } from '../../../src/core/collect/parse-body.ts';
import { defaultCollectLimits, type CollectLimits } from '../../../src/core/collect/options.ts';
import { TallyError } from '../../../src/core/errors.ts';

const limits: CollectLimits = { ...defaultCollectLimits, requestEventsMax: 3 };

function values(items: readonly BodyItem[]): unknown[] {
  return items.map((item) => (item.kind === 'value' ? item.value : item.error));
}

function assertTallyError(run: () => unknown, code: string): void {
  assert.throws(run, (error: unknown) => error instanceof TallyError && error.code === code);
}

describe('parseEventsBody: JSON', () => {
  test('one object is one event', () => {
    const { items } = parseEventsBody('application/json', '{"type":"a"}', limits);
    assert.deepEqual(values(items), [{ type: 'a' }]);
  });

  test('an array is one event per element, in order', () => {
    const { items } = parseEventsBody('application/json; charset=utf-8', '[{"type":"a"},{"type":"b"}]', limits);
    assert.deepEqual(values(items), [{ type: 'a' }, { type: 'b' }]);
  });

  test('{ "events": [...] } is unwrapped', () => {
    const { items } = parseEventsBody('application/json', '{"events":[{"type":"a"},{"type":"b"}]}', limits);
    assert.deepEqual(values(items), [{ type: 'a' }, { type: 'b' }]);
  });

  test('the wrapper refuses other fields and a non-array "events"', () => {
    assertTallyError(() => parseEventsBody('application/json', '{"events":[],"sent_at":1}', limits), 'invalid_request');
    assertTallyError(() => parseEventsBody('application/json', '{"events":{"type":"a"}}', limits), 'invalid_request');
  });

  test('text/plain (navigator.sendBeacon) is read as JSON', () => {
    const { items } = parseEventsBody('text/plain;charset=UTF-8', '{"type":"a"}', limits);
    assert.deepEqual(values(items), [{ type: 'a' }]);
  });

  test('a scalar body is one item, left for validation to reject', () => {
    const { items } = parseEventsBody('application/json', '42', limits);
    assert.deepEqual(values(items), [42]);
  });

  test('a leading byte-order mark is ignored', () => {
    const { items } = parseEventsBody('application/json', '\uFEFF{"type":"a"}', limits);
    assert.deepEqual(values(items), [{ type: 'a' }]);
  });

  test('a body that does not parse throws invalid_json', () => {
    assertTallyError(() => parseEventsBody('application/json', '{"type":', limits), 'invalid_json');
    assertTallyError(() => parseEventsBody('application/json', '', limits), 'invalid_json');
  });

  test('requestEventsMax events pass; one more throws too_many_events', () => {
    const three = JSON.stringify([{}, {}, {}]);
    assert.equal(parseEventsBody('application/json', three, limits).items.length, 3);
    assertTallyError(() => parseEventsBody('application/json', JSON.stringify([{}, {}, {}, {}]), limits), 'too_many_events');
    assertTallyError(
      () => parseEventsBody('application/json', JSON.stringify({ events: [{}, {}, {}, {}] }), limits),
      'too_many_events',
    );
  });

  test('each item reports the UTF-8 size of its re-serialized JSON', () => {
    const { items } = parseEventsBody('application/json', '[ {"type" : "é"} , {"type":"ab"} ]', limits);
    assert.deepEqual(
      items.map((item) => (item.kind === 'value' ? item.bytes : -1)),
      [Buffer.byteLength('{"type":"é"}'), Buffer.byteLength('{"type":"ab"}')],
    );
  });

  test('other media types throw unsupported_media_type', () => {
    assertTallyError(() => parseEventsBody('application/x-www-form-urlencoded', 'type=a', limits), 'unsupported_media_type');
    assertTallyError(() => parseEventsBody('', '{}', limits), 'unsupported_media_type');
  });
});

describe('parseEventsBody: NDJSON', () => {
  test('one event per non-empty line; blank lines and CRLF are fine', () => {
    const body = '{"type":"a"}\r\n\n   \n{"type":"b"}\n';
    const { items } = parseEventsBody('application/x-ndjson', body, limits);
    assert.deepEqual(values(items), [{ type: 'a' }, { type: 'b' }]);
  });

  test('a bad line becomes that item\'s invalid_json error and the good lines are kept', () => {
    const body = '{"type":"a"}\n{"type":\n{"type":"c"}';
    const { items } = parseEventsBody('application/x-ndjson', body, limits);
    assert.equal(items.length, 3);
    assert.deepEqual(items[0], { kind: 'value', value: { type: 'a' }, bytes: 12 });
    const bad = items[1];
    assert.ok(bad?.kind === 'error');
    assert.equal(bad.error.index, 1);
    assert.equal(bad.error.code, 'invalid_json');
    assert.match(bad.error.message, /Line 2/);
    assert.deepEqual(items[2], { kind: 'value', value: { type: 'c' }, bytes: 12 });
  });

  test('an empty NDJSON body has no items', () => {
    assert.deepEqual(parseEventsBody('application/x-ndjson', '\n\n', limits).items, []);
  });

  test('requestEventsMax lines pass; one more throws too_many_events, even if lines are bad', () => {
    assert.equal(parseEventsBody('application/x-ndjson', '{}\n{}\n{}', limits).items.length, 3);
    assertTallyError(() => parseEventsBody('application/x-ndjson', 'x\ny\nz\nw', limits), 'too_many_events');
  });

  test('a line\'s size is its own UTF-8 byte length', () => {
    const line = '{ "type": "ü" }';
    const { items } = parseEventsBody('application/ndjson', line, limits);
    assert.deepEqual(items, [{ kind: 'value', value: { type: 'ü' }, bytes: Buffer.byteLength(line) }]);
  });
});
