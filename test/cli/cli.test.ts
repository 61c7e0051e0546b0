// The command line as a newcomer meets it: help lists every command, merchants can be created and
// listed, and a bad setting stops it with a message that names the setting (and no stack trace).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const main = new URL('../../src/cli/main.ts', import.meta.url).pathname;

async function tally(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [main, ...args], { env: { ...process.env, ...env }, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

test('tally --help lists every command and every setting', async () => {
  const { code, stdout } = await tally(['--help']);
  assert.equal(code, 0);
  for (const command of ['start', 'collector', 'processor', 'query', 'merchants', 'reprocess']) assert.match(stdout, new RegExp(`^  ${command}\\b`, 'm'));
  for (const setting of ['TALLY_DATA_DIR', 'TALLY_HOST', 'TALLY_PORT', 'TALLY_ADMIN_TOKEN']) assert.match(stdout, new RegExp(setting));
});

test('merchants create prints the keys once, and list shows the merchant without them', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tally-cli-'));
  try {
    const created = await tally(['merchants', 'create', '--name', 'Acme', '--currency', 'EUR'], { TALLY_DATA_DIR: dataDir });
    assert.equal(created.code, 0, created.stderr);
    const merchant = JSON.parse(created.stdout) as { id: string; currency: string; write_key: string; secret_key: string };
    assert.equal(merchant.currency, 'EUR');
    assert.match(merchant.write_key, /^tw_/);
    assert.match(merchant.secret_key, /^ts_/);
    const listed = await tally(['merchants', 'list'], { TALLY_DATA_DIR: dataDir });
    assert.equal(listed.code, 0);
    assert.deepEqual((JSON.parse(listed.stdout) as { id: string }[]).map((m) => m.id), [merchant.id]);
    assert.doesNotMatch(listed.stdout, /tw_|ts_/, 'keys are shown once and stored hashed');
    const bad = await tally(['merchants', 'create', '--name', 'X', '--currency', 'EURO'], { TALLY_DATA_DIR: dataDir });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid_merchant/);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a bad setting stops tally with a message naming it and no stack trace', async () => {
  const { code, stderr } = await tally(['start'], { TALLY_PORT: 'eighty' });
  assert.equal(code, 1);
  assert.match(stderr, /configuration: TALLY_PORT="eighty": must be an integer/);
  assert.doesNotMatch(stderr, /\n\s+at /);
});

test('an unknown command is refused with the help text', async () => {
  const { code, stderr } = await tally(['launch']);
  assert.equal(code, 2);
  assert.match(stderr, /unknown command "launch"/);
});
