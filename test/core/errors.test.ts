// Keeps the error catalogue, its type and docs/errors.md in step (the fastify pattern).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { errorCatalogue, TallyError, type ErrorCode } from '../../src/core/errors.ts';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const documented = new Map<string, number>();
for (const match of doc.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)) documented.set(match[1]!, Number(match[2]));

test('every catalogued code is documented in docs/errors.md with its HTTP status', () => {
  for (const [code, spec] of Object.entries(errorCatalogue)) {
    assert.equal(documented.get(code), spec.status, `docs/errors.md row for ${code}`);
  }
});

test('docs/errors.md documents no code the catalogue lacks', () => {
  for (const code of documented.keys()) assert.ok(code in errorCatalogue, `${code} is documented but not in src/core/errors.ts`);
});

test('client mistakes are 4xx and never retryable; 5xx are retryable', () => {
  for (const [code, spec] of Object.entries(errorCatalogue)) {
    assert.ok(spec.status >= 400 && spec.status < 600, code);
    if (spec.status >= 500) assert.equal(spec.canRetry, true, code);
    if (spec.status >= 400 && spec.status < 500 && code !== 'rate_limited') assert.equal(spec.canRetry, false, code);
  }
});

test('a TallyError carries the status and retryability of its code', () => {
  const error = new TallyError('rate_limited' satisfies ErrorCode, 'slow down');
  assert.equal(error.status, 429);
  assert.equal(error.canRetry, true);
  assert.equal(error.message, 'slow down');
  assert.equal(new TallyError('not_found').message, errorCatalogue.not_found.description);
});
