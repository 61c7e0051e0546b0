// Request/reply over the log: the ping responder answers on `.succeeded`; a malformed command is
// answered `.failed` invalid_format and committed (never retried); a handler that keeps failing is
// answered `.failed` handler_failed and dead-lettered; transient failures retry without answering twice.
// Every reply has the convention's shape, the ledger's included, and docs/request-reply.md shows
// exactly the records produced.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { MemoryEventLog } from '../../src/adapters/memory/event-log.ts';
import { ProcessorRuntime } from '../../src/runtime/processor-runtime.ts';
import { TransientError } from '../../src/runtime/processor.ts';
import {
  defineResponder, ensureRequestReplyTopics, failedReply, isReplyTopic, requestOnce, requestReplyTopics, type Responder,
} from '../../src/runtime/request-reply.ts';
import { encodeReusedIdReply, encodeTransferReply } from '../../src/payments/codec.ts';
import type { Transfer } from '../../src/core/payments/ledger.ts';
import { pingResponder } from '../../src/ping/responder.ts';
import type { ConsumedRecord } from '../../src/core/ports/event-log.ts';
import { quietLogger } from '../support/analytics.ts';

const attemptsMax = 3;

async function readAll(log: MemoryEventLog, topic: string): Promise<ConsumedRecord[]> {
  const consumer = log.consumer({ group: `reader-${Math.random()}`, topics: [topic] });
  const records = await consumer.poll(1000, 50);
  await consumer.close();
  return records;
}

/** Runs the responder until its group has committed every request, then stops it. */
async function answer(responder: Responder, requests: readonly { key: string; value: string }[]): Promise<MemoryEventLog> {
  const log = MemoryEventLog.create();
  await ensureRequestReplyTopics(log, responder.topics, 1);
  await log.append(responder.topics.requested, requests);
  const runtime = new ProcessorRuntime({
    log, processor: responder.processor({ log, attemptsMax }), logger: quietLogger,
    pollWaitMs: 10, pollLingerMs: 0, retryBaseDelayMs: 1, retryDelayMsMax: 4, retryAttemptsMax: attemptsMax,
  });
  runtime.start();
  const deadline = Date.now() + 10_000;
  while (((await log.committedOffsets(responder.group, responder.topics.requested)).get(0) ?? 0) < requests.length) {
    if (Date.now() > deadline) throw new Error('the responder did not commit every request');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await runtime.stop();
  return log;
}

const parsed = (records: readonly ConsumedRecord[]): unknown[] => records.map((record) => JSON.parse(record.value) as unknown);

describe('request/reply over the log', () => {
  test('topic names follow <prefix>.<name>.requested|succeeded|failed; bad parts are refused', () => {
    assert.deepEqual(requestReplyTopics('tally', 'ping'), { requested: 'tally.ping.requested', succeeded: 'tally.ping.succeeded', failed: 'tally.ping.failed' });
    assert.deepEqual(requestReplyTopics('staging.shop', 'invoice').failed, 'staging.shop.invoice.failed');
    for (const bad of ['', 'has space', 'dot.', '.dot', 'a..b', 'ü']) assert.throws(() => requestReplyTopics(bad, 'ping'), /topic name part/);
    assert.deepEqual(pingResponder.topics, requestReplyTopics('tally', 'ping'));
  });

  test('ping: a request on tally.ping.requested is answered pong on tally.ping.succeeded, keyed like it', async () => {
    const log = await answer(pingResponder, [{ key: 'req-1', value: '{}' }, { key: 'req-2', value: '{"hello":"there"}' }]);
    const replies = await readAll(log, 'tally.ping.succeeded');
    assert.deepEqual(replies.map((record) => record.key), ['req-1', 'req-2']);
    assert.deepEqual(parsed(replies), [
      { request: { partition: 0, offset: 0, key: 'req-1' }, result: { message: 'pong' } },
      { request: { partition: 0, offset: 1, key: 'req-2' }, result: { message: 'pong' } },
    ]);
    assert.deepEqual(await readAll(log, 'tally.ping.failed'), []);
  });

  test('malformed commands are answered invalid_format on .failed, committed, and their neighbours answered', async () => {
    const log = await answer(pingResponder, [
      { key: 'a', value: 'not json' }, { key: 'b', value: '{}' }, { key: 'c', value: '[1,2]' }, { key: 'd', value: 'null' },
    ]);
    const failed = parsed(await readAll(log, 'tally.ping.failed')) as { request: { offset: number; key: string }; error: { code: string; message: string } }[];
    assert.deepEqual(failed.map((reply) => [reply.request.offset, reply.request.key, reply.error.code]), [[0, 'a', 'invalid_format'], [2, 'c', 'invalid_format'], [3, 'd', 'invalid_format']]);
    assert.match(failed[0]!.error.message, /not JSON/);
    assert.match(failed[1]!.error.message, /JSON object/);
    assert.equal((await readAll(log, 'tally.ping.succeeded')).length, 1);
    assert.equal((await log.committedOffsets(pingResponder.group, 'tally.ping.requested')).get(0), 4);
    assert.deepEqual(await readAll(log, 'tally.ping.requested.dlq'), [], 'malformed commands are answered, not dead-lettered');
  });

  test('a handler that keeps failing: .failed handler_failed plus a dead letter after the last attempt; the batch is still answered', async () => {
    let attempts = 0;
    const fragile = defineResponder<{ n: number }, { double: number }>({
      prefix: 'test', name: 'double',
      decode: (json) => (typeof (json as { n?: unknown }).n === 'number' ? { ok: true, input: json as { n: number } } : { ok: false, message: 'n must be a number' }),
      async handle(input) {
        if (input.n === 13) {
          attempts++;
          throw new Error('thirteen is unlucky');
        }
        return { double: input.n * 2 };
      },
    });
    const log = await answer(fragile, [{ key: 'x', value: '{"n":2}' }, { key: 'y', value: '{"n":13}' }]);
    assert.equal(attempts, attemptsMax, 'retried up to the last attempt, not forever');
    const failed = parsed(await readAll(log, 'test.double.failed'));
    assert.deepEqual(failed, [{ request: { partition: 0, offset: 1, key: 'y' }, error: { code: 'handler_failed', message: 'thirteen is unlucky' } }]);
    assert.deepEqual(parsed(await readAll(log, 'test.double.succeeded')), [{ request: { partition: 0, offset: 0, key: 'x' }, result: { double: 4 } }]);
    const letters = parsed(await readAll(log, 'test.double.requested.dlq')) as { error: { code: string }; value: string; source: { offset: number } }[];
    assert.deepEqual(letters.map((letter) => [letter.error.code, letter.value, letter.source.offset]), [['handler_failed', '{"n":13}', 1]]);
  });

  test('requestOnce sends a command and returns the reply to it, not to earlier ones; null when nobody answers', async () => {
    const log = await answer(pingResponder, [{ key: 'earlier', value: '{}' }]);
    const group = 'test.requester';
    assert.equal(await requestOnce(log, pingResponder.topics, { key: 'unanswered', value: '{}' }, { group, timeoutMs: 100 }), null);
    const runtime = new ProcessorRuntime({ log, processor: pingResponder.processor({ log }), logger: quietLogger, pollWaitMs: 10, pollLingerMs: 0 });
    runtime.start();
    try {
      const pong = await requestOnce(log, pingResponder.topics, { key: 'now', value: '{}' }, { group, timeoutMs: 5000 });
      assert.deepEqual(pong, { outcome: 'succeeded', result: { message: 'pong' } });
      const refused = await requestOnce(log, pingResponder.topics, { key: 'bad', value: '"ping"' }, { group, timeoutMs: 5000 });
      assert.equal(refused?.outcome, 'failed');
      assert.equal(refused?.outcome === 'failed' ? refused.error.code : null, 'invalid_format');
    } finally {
      await runtime.stop();
    }
  });

  test('reply topics are told apart from commands and dead letters (log retention prunes them by age)', () => {
    for (const topics of [pingResponder.topics, requestReplyTopics('payments', 'transfer')]) {
      assert.equal(isReplyTopic(topics.succeeded), true);
      assert.equal(isReplyTopic(topics.failed), true);
      assert.equal(isReplyTopic(topics.requested), false);
      assert.equal(isReplyTopic(`${topics.requested}.dlq`), false);
    }
    assert.equal(isReplyTopic('events'), false);
  });

  test('every reply is { request: { partition, offset, key } } plus result, or error: { code, message }, and nothing else', async () => {
    const log = await answer(pingResponder, [{ key: 'ok', value: '{}' }, { key: 'bad', value: 'not json' }, { key: 'refused', value: '7' }]);
    const replies = [...parsed(await readAll(log, 'tally.ping.succeeded')), ...parsed(await readAll(log, 'tally.ping.failed'))] as Record<string, Record<string, unknown>>[];
    assert.equal(replies.length, 3);
    for (const reply of replies) {
      assert.deepEqual(Object.keys(reply.request!), ['partition', 'offset', 'key']);
      if ('result' in reply) assert.deepEqual(Object.keys(reply), ['request', 'result']);
      else {
        assert.deepEqual(Object.keys(reply), ['request', 'error']);
        assert.deepEqual(Object.keys(reply.error!), ['code', 'message']);
      }
    }
    const long = failedReply({ topic: 't', partition: 0, offset: 0, key: 'k', value: '', appendedMs: 0 }, 'handler_failed', 'x'.repeat(5000));
    assert.equal((JSON.parse(long.value) as { error: { message: string } }).error.message.length, 1000, 'messages are bounded');
  });

  test('docs/request-reply.md shows exactly the records produced: every example has the shape of one, every kind has an example', async () => {
    const doc = readFileSync(new URL('../../docs/request-reply.md', import.meta.url), 'utf8');
    const examples = [...doc.matchAll(/```json\n([\s\S]*?)\n```/g)].map((match) => JSON.parse(match[1]!) as unknown);
    const produced = new Map<string, unknown>();
    const pings = await answer(pingResponder, [{ key: 'a', value: '{}' }, { key: 'b', value: 'not json' }, { key: 'c', value: '[1]' }]);
    const [pong] = parsed(await readAll(pings, 'tally.ping.succeeded'));
    const [notJson, refused] = parsed(await readAll(pings, 'tally.ping.failed'));
    produced.set('succeeded', pong).set('invalid_format: not JSON', notJson).set('invalid_format: decode refused', refused);
    const failing = defineResponder<object, never>({
      prefix: 'shop', name: 'invoice', decode: (json) => ({ ok: true, input: json as object }),
      async handle() {
        throw new Error('invoice numbering is exhausted');
      },
    });
    const failures = await answer(failing, [{ key: 'invoice-o_9', value: '{"order_id":"o_9"}' }]);
    produced.set('handler_failed', parsed(await readAll(failures, 'shop.invoice.failed'))[0]);
    produced.set('dead letter', parsed(await readAll(failures, 'shop.invoice.requested.dlq'))[0]);
    const request = { partition: 3, offset: 41, key: 'acct_a' };
    const transfer: Transfer = {
      id: 'tr_1', merchantId: 'm_shop', fromAccountId: 'acct_a', toAccountId: 'acct_b', amount: 1250n, currency: 'USD', description: 'rent',
      metadata: { order: 'o_9' }, requestedMs: 1, status: 'succeeded', failureCode: null, settledMs: 2,
    };
    produced.set('transfer succeeded', JSON.parse(encodeTransferReply(request, transfer)));
    produced.set('transfer failed', JSON.parse(encodeTransferReply(request, { ...transfer, description: null, metadata: {}, status: 'failed', failureCode: 'insufficient_funds' })));
    produced.set('transfer_id_reused', JSON.parse(encodeReusedIdReply(request, transfer)));
    const producedShapes = new Map([...produced].map(([kind, record]) => [kind, JSON.stringify(shapeOf(record))]));
    for (const example of examples) {
      const shape = JSON.stringify(shapeOf(example));
      assert.ok([...producedShapes.values()].includes(shape), `the documented record ${JSON.stringify(example)} is not one the code produces`);
    }
    const documented = new Set(examples.map((example) => JSON.stringify(shapeOf(example))));
    for (const [kind, shape] of producedShapes) assert.ok(documented.has(shape), `no example of ${kind} in docs/request-reply.md: ${JSON.stringify(produced.get(kind))}`);
    assert.equal((notJson as { error: { message: string } }).error.message, 'the command is not JSON');
    assert.ok(doc.includes('"message": "the command is not JSON"'));
  });

  test('transient failures are retried without answering twice', async () => {
    let failuresLeft = 4;
    const flaky = defineResponder<object, string>({
      prefix: 'test', name: 'flaky',
      decode: (json) => ({ ok: true, input: json as object }),
      async handle() {
        if (failuresLeft-- > 0) throw new TransientError('store unavailable');
        return 'done';
      },
    });
    const log = await answer(flaky, [{ key: 'k1', value: '{}' }, { key: 'k2', value: '{}' }]);
    assert.ok(failuresLeft < 0, 'failures beyond the attempt limit were retried: transient ones have none');
    assert.deepEqual(parsed(await readAll(log, 'test.flaky.succeeded')).map((reply) => (reply as { result: string }).result), ['done', 'done']);
    assert.deepEqual(await readAll(log, 'test.flaky.failed'), []);
    assert.deepEqual(await readAll(log, 'test.flaky.requested.dlq'), []);
  });
});

/** A record's keys in order and its leaves' types, with error codes and statuses spelled out. */
function shapeOf(value: unknown, key = ''): unknown {
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.map((item) => shapeOf(item));
  if (typeof value === 'object') return Object.entries(value).map(([name, item]) => [name, shapeOf(item, name)]);
  if (key === 'code' || key === 'status') return `${typeof value}:${String(value)}`;
  return typeof value;
}
