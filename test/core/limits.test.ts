// Every limit is documented with its value (docs/limits.md is generated from limits.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { limitsDoc } from '../../scripts/gen-limits-doc.ts';

test('docs/limits.md is up to date with src/core/limits.ts (regenerate: node scripts/gen-limits-doc.ts)', () => {
  assert.equal(readFileSync(new URL('../../docs/limits.md', import.meta.url), 'utf8'), limitsDoc());
});
