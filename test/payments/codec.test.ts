// The transfer command's JSON on the log and the replies': exact amounts as decimal strings, and a
// reason for every record that is not a command (the processor answers it with invalid_format).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { transferAmountMax, type Transfer, type TransferCommand } from '../../src/core/payments/ledger.ts';
import {
  decodeTransferCommand, decodeTransferReply, encodeReusedIdReply, encodeTransferCommand, encodeTransferReply, transferFailedTopic,
  transferRequestedTopic, transferSucceededTopic,
} from '../../src/payments/codec.ts';
import { parseCommandJson, requestReplyTopics } from '../../src/runtime/request-reply.ts';

const command: TransferCommand = {
  id: 'tr_1', merchantId: 'm_shop', fromAccountId: 'acc_a', toAccountId: 'acc_b', amount: 1250n, currency: 'USD',
  description: 'rent', metadata: { order: 'o_9' }, requestedMs: 1_700_000_000_000,
};
const request = { partition: 3, offset: 41, key: 'acc_a' };

test('a command encodes to the documented JSON and decodes back to itself', () => {
  assert.deepEqual(JSON.parse(encodeTransferCommand(command)), {
    id: 'tr_1', merchant_id: 'm_shop', from_account_id: 'acc_a', to_account_id: 'acc_b', amount: '1250', currency: 'USD',
    description: 'rent', metadata: { order: 'o_9' }, requested_ms: 1_700_000_000_000,
  });
  assert.deepEqual(decodeTransferCommand(encodeTransferCommand(command)), command);
});

test('any valid command round-trips exactly, amounts up to 2^53 − 1 included', () => {
  const text = fc.string({ minLength: 1, maxLength: 20 });
  fc.assert(fc.property(
    fc.record({
      id: text, merchantId: text, fromAccountId: text, toAccountId: text,
      amount: fc.bigInt({ min: 1n, max: transferAmountMax }), currency: fc.constantFrom('USD', 'EUR', 'JPY'),
      description: fc.option(fc.string()), metadata: fc.dictionary(fc.string(), fc.string()), requestedMs: fc.nat(),
    }),
    (generated) => {
      // fast-check's records have no prototype; a command from the API is a plain object.
      const plain: TransferCommand = { ...generated, metadata: { ...generated.metadata } };
      assert.deepEqual(decodeTransferCommand(encodeTransferCommand(plain)), plain);
    },
  ));
});

test('the topics are the convention\'s: payments.transfer.requested | succeeded | failed', () => {
  assert.deepEqual(
    { requested: transferRequestedTopic, succeeded: transferSucceededTopic, failed: transferFailedTopic },
    requestReplyTopics('payments', 'transfer'),
  );
  assert.equal(transferRequestedTopic, 'payments.transfer.requested');
});

test('a record that is not a command says why', () => {
  const valid = JSON.parse(encodeTransferCommand(command)) as Record<string, unknown>;
  const cases: [string, RegExp][] = [
    ['{oops', /^the command is not JSON$/],
    ['[1]', /not a JSON object/],
    [JSON.stringify({ ...valid, id: '' }), /id/],
    [JSON.stringify({ ...valid, merchant_id: 7 }), /merchant_id/],
    [JSON.stringify({ ...valid, to_account_id: undefined }), /to_account_id/],
    [JSON.stringify({ ...valid, amount: 1250 }), /amount/],
    [JSON.stringify({ ...valid, amount: '0' }), /amount/],
    [JSON.stringify({ ...valid, amount: '-5' }), /amount/],
    [JSON.stringify({ ...valid, amount: '012' }), /amount/],
    [JSON.stringify({ ...valid, amount: '1.5' }), /amount/],
    [JSON.stringify({ ...valid, amount: (transferAmountMax + 1n).toString() }), /amount/],
    [JSON.stringify({ ...valid, amount: '9'.repeat(400) }), /amount/],
    [JSON.stringify({ ...valid, currency: 'usd' }), /currency/],
    [JSON.stringify({ ...valid, description: 5 }), /description/],
    [JSON.stringify({ ...valid, metadata: { n: 1 } }), /metadata/],
    [JSON.stringify({ ...valid, metadata: ['a'] }), /metadata/],
    [JSON.stringify({ ...valid, requested_ms: -1 }), /requested_ms/],
    [JSON.stringify({ ...valid, requested_ms: 1.5 }), /requested_ms/],
  ];
  for (const [value, reason] of cases) {
    const decoded = decodeTransferCommand(value);
    assert.equal(typeof decoded, 'string', value);
    assert.match(decoded as string, reason, value);
  }
  const notJson = parseCommandJson('{oops');
  assert.equal(decodeTransferCommand('{oops'), notJson.ok ? null : notJson.message, 'the same message as every responder\'s');
});

test('replies follow the request/reply convention and read back', () => {
  const succeeded: Transfer = { ...command, status: 'succeeded', failureCode: null, settledMs: 1_700_000_000_500 };
  const failed: Transfer = { ...succeeded, status: 'failed', failureCode: 'insufficient_funds' };
  const succeededJson = JSON.parse(encodeTransferReply(request, succeeded)) as { request: unknown; result: { transfer: Record<string, unknown> } };
  assert.deepEqual(succeededJson.request, request);
  assert.deepEqual(Object.keys(succeededJson), ['request', 'result']);
  assert.equal(succeededJson.result.transfer.amount, '1250');
  assert.equal(succeededJson.result.transfer.status, 'succeeded');
  assert.deepEqual(decodeTransferReply(encodeTransferReply(request, succeeded)), { request, transfer: succeeded, error: null });

  const failedJson = JSON.parse(encodeTransferReply(request, failed)) as { request: unknown; error: object; transfer: Record<string, unknown> };
  assert.deepEqual(Object.keys(failedJson), ['request', 'error', 'transfer'], 'the convention\'s failed reply, with the decided transfer beside it');
  assert.deepEqual(failedJson.request, request);
  assert.deepEqual(failedJson.error, { code: 'insufficient_funds', message: 'the debited account did not hold the amount when the transfer was applied' });
  assert.equal(failedJson.transfer.failure_code, 'insufficient_funds');
  const reusedJson = JSON.parse(encodeReusedIdReply(request, command)) as { error: object };
  assert.deepEqual(Object.keys(reusedJson), ['request', 'error']);
  assert.deepEqual(Object.keys(reusedJson.error), ['code', 'message']);
  assert.deepEqual(Object.keys(succeededJson.result), ['transfer']);

  const failedReply = decodeTransferReply(encodeTransferReply(request, failed));
  assert.deepEqual(typeof failedReply === 'string' ? failedReply : [failedReply.error?.code, failedReply.transfer], ['insufficient_funds', failed]);

  const reused = decodeTransferReply(encodeReusedIdReply(request, command));
  assert.deepEqual(typeof reused === 'string' ? reused : [reused.error?.code, reused.transfer], ['transfer_id_reused', null]);
  assert.throws(() => encodeTransferReply(request, { ...succeeded, status: 'pending', settledMs: null }), /not decided/);
  assert.match(decodeTransferReply('{"request":{"partition":0,"offset":1,"key":"k"}}') as string, /transfer or an error/);
  assert.match(decodeTransferReply('{"result":{}}') as string, /request/);
});
