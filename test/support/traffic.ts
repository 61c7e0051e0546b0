// The traffic the crash and distributed end-to-end tests send: generated events and the merchants
// they belong to, created through the admin API of a running `tally` child.
import assert from 'node:assert/strict';
import { randomInteger, type Random } from '../../src/adapters/memory/prng.ts';
import { processAdminToken } from './processes.ts';

const userAgent = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';

export interface SentEvent {
  readonly id: string;
  readonly type: string;
  readonly timestamp: string;
  readonly anonymous_id: string;
  readonly session_id: string;
  readonly revenue?: { readonly amount: number; readonly currency: 'USD' };
  readonly context: { readonly page: { readonly url: string }; readonly user_agent: string };
}

/** A pageview or (15 %) a purchase with revenue, at a random moment of the `spreadMs` before `nowMs`. */
export function makeEvent(random: Random, id: string, nowMs: number, spreadMs: number): SentEvent {
  const purchase = random() < 0.15;
  return {
    id,
    type: purchase ? 'purchase' : 'pageview',
    timestamp: new Date(nowMs - Math.floor(random() * spreadMs)).toISOString(),
    anonymous_id: `anon-${randomInteger(random, 0, 500)}`,
    session_id: `sess-${randomInteger(random, 0, 1500)}`,
    ...(purchase ? { revenue: { amount: randomInteger(random, 100, 20_000), currency: 'USD' as const } } : {}),
    context: { page: { url: `https://shop.example/p/${randomInteger(random, 0, 20)}` }, user_agent: userAgent },
  };
}

export interface MerchantKeys {
  readonly id: string;
  readonly writeKey: string;
  readonly secretKey: string;
}

export async function createMerchant(url: string, name: string): Promise<MerchantKeys> {
  const response = await fetch(`${url}/v1/admin/merchants`, {
    method: 'POST',
    headers: { authorization: `Bearer ${processAdminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name, currency: 'USD' }),
    signal: AbortSignal.timeout(15_000),
  });
  const body = (await response.json()) as { id: string; write_key: string; secret_key: string };
  assert.equal(response.status, 201, JSON.stringify(body));
  return { id: body.id, writeKey: body.write_key, secretKey: body.secret_key };
}

/** One answered (or unanswered: status null) POST /v1/events. Times are performance.now() ms. */
