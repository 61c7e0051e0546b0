// The collector's HTTP edge: limits answer 413, rate limits 429 with Retry-After, keys 401/403,
// CORS for browsers, NDJSON bodies, allowed origins; and no body whatever yields a 5xx.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { startTestTally, type TestTally } from '../support/tally.ts';

describe('collector HTTP edge', () => {
  let tally: TestTally;
  let writeKey: string;

  before(async () => {
    tally = await startTestTally({ env: { TALLY_REQUEST_EVENTS_MAX: '5', TALLY_BODY_BYTES_MAX: '4096', TALLY_RATE_LIMIT_PER_SECOND: '1000' } });
    writeKey = (await tally.createMerchant('edge')).writeKey;
  });
  after(async () => tally?.close());

  const send = (payload: string, headers: Record<string, string> = {}) => tally.app.inject({
    method: 'POST', url: '/v1/events', payload,
    headers: { authorization: `Bearer ${writeKey}`, 'content-type': 'application/json', ...headers },
  });
  const code = (body: string): string => (JSON.parse(body) as { error: { code: string } }).error.code;

  test('the request-events limit accepts the limit and refuses limit + 1 with 413 too_many_events', async () => {
    const events = (n: number) => JSON.stringify(Array.from({ length: n }, () => ({ type: 'pageview' })));
    assert.equal((await send(events(5))).statusCode, 202);
    const over = await send(events(6));
    assert.equal(over.statusCode, 413);
    assert.equal(code(over.body), 'too_many_events');
  });

  test('a body over the byte limit is refused with 413 body_too_large', async () => {
    const response = await send(JSON.stringify({ type: 'pageview', properties: { big: 'x'.repeat(5000) } }));
    assert.equal(response.statusCode, 413);
    assert.equal(code(response.body), 'body_too_large');
  });

  test('missing, malformed and unknown keys get 401; a body that does not parse gets 400 invalid_json', async () => {
    for (const authorization of [undefined, 'Basic abc', 'Bearer tw_unknown']) {
      const response = await tally.app.inject({ method: 'POST', url: '/v1/events', payload: '{"type":"x"}', headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) } });
      assert.equal(response.statusCode, 401, String(authorization));
      assert.equal(code(response.body), 'unauthorized');
    }
    const broken = await send('{"type":');
    assert.equal(broken.statusCode, 400);
    assert.equal(code(broken.body), 'invalid_json');
  });

  test('NDJSON keeps the good lines around a bad one', async () => {
    const response = await send('{"type":"a"}\n{oops\n{"type":"b"}\n', { 'content-type': 'application/x-ndjson' });
    assert.equal(response.statusCode, 202);
    const body = response.json() as { accepted: number; rejected: { index: number; code: string }[] };
    assert.equal(body.accepted, 2);
    assert.deepEqual(body.rejected.map((r) => [r.index, r.code]), [[1, 'invalid_json']]);
  });

  test('browsers get CORS preflight answers; an origin outside the allowed list is refused', async () => {
    const preflight = await tally.app.inject({ method: 'OPTIONS', url: '/v1/events', headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' } });
    assert.equal(preflight.statusCode, 204);
    assert.equal(preflight.headers['access-control-allow-origin'], 'https://shop.example');
    const created = await tally.app.inject({ method: 'POST', url: '/v1/admin/merchants', headers: { authorization: 'Bearer test-admin-token-0123456789abcdef' }, payload: { name: 'strict', allowed_origins: ['https://mine.example'] } });
    const strictKey = (created.json() as { write_key: string }).write_key;
    const post = (origin: string) => tally.app.inject({ method: 'POST', url: '/v1/events', payload: '{"type":"x"}', headers: { authorization: `Bearer ${strictKey}`, 'content-type': 'text/plain', origin } });
    assert.equal((await post('https://mine.example')).statusCode, 202);
    const foreign = await post('https://evil.example');
    assert.equal(foreign.statusCode, 403);
    assert.equal(code(foreign.body), 'origin_not_allowed');
  });

  test('random bodies and content types never yield a 5xx', async () => {
    await fc.assert(fc.asyncProperty(
      fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify(v)), fc.array(fc.jsonValue()).map((v) => JSON.stringify(v))),
      fc.constantFrom('application/json', 'application/x-ndjson', 'text/plain', 'application/xml'),
      async (payload, contentType) => {
        const response = await send(payload, { 'content-type': contentType });
        assert.ok(response.statusCode < 500, `${response.statusCode} ${response.body}`);
        assert.doesNotMatch(response.body, /\n\s+at /, 'no stack traces');
      },
    ), { numRuns: 300 });
  });

  test('over the rate limit a key gets 429 with Retry-After, and other keys are unaffected', async () => {
    const limited = await startTestTally({ env: { TALLY_RATE_LIMIT_PER_SECOND: '2' } });
    try {
      const key = (await limited.createMerchant('busy')).writeKey;
      const other = (await limited.createMerchant('calm')).writeKey;
      const post = (k: string) => limited.app.inject({ method: 'POST', url: '/v1/events', payload: '{"type":"x"}', headers: { authorization: `Bearer ${k}`, 'content-type': 'application/json' } });
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await post(key)).statusCode);
      assert.deepEqual(statuses.slice(0, 4), [202, 202, 202, 202], 'a burst of twice the rate passes');
      const refused = await post(key);
      assert.equal(refused.statusCode, 429);
      assert.equal(code(refused.body), 'rate_limited');
      assert.ok(Number(refused.headers['retry-after']) >= 1);
      assert.equal((await post(other)).statusCode, 202);
    } finally {
      await limited.close();
    }
  });
});
