// Idempotency keys with Stripe's semantics: a key is scoped to its merchant and bound to one
// request (method, path and canonical body); the same request again is answered as the first was,
// with `Idempotent-Replayed: true`, and another request with the key is refused (422
// idempotency_key_reused). Requests refused by validation (400) do not use up a key.
//
// A key is claimed BEFORE the work it guards (the append of a transfer command, the creation of an
// account): the claim stores the response the request will give, naming the id made for it, and
// the store keeps the first claim (putIdempotency). Two concurrent requests with one key thus
// agree on one id, and only the claimer does the work. If the claimer fails after its claim (the
// log refused the append: it answered 503, nothing acknowledged), a later request with the key
// finds the claim, waits for the claimer, and once the claim is stale redoes the work with the
// same id and payload — which the ledger applies once, however many times it arrives.
import { createHash } from 'node:crypto';
import { TallyError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import type { IdempotencyRecord, LedgerStore } from '../core/ports/ledger-store.ts';

export interface IdempotentRequest {
  readonly merchantId: string;
  readonly key: string;
  readonly requestHash: string;
}

/** SHA-256 of the method, the path and the body with object keys sorted (whitespace and key order do not count). */
export function requestHash(method: string, path: string, body: unknown): string {
  return createHash('sha256').update(`${method} ${path}\n${canonicalJson(body ?? null)}`).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export class IdempotencyKeys {
  readonly #ledger: LedgerStore;
  readonly #now: () => number;

  constructor(ledger: LedgerStore, now: () => number) {
    this.#ledger = ledger;
    this.#now = now;
  }

  /** The claim on the key, or null when it is unused; refuses a claim made by another request. */
  async find(request: IdempotentRequest): Promise<IdempotencyRecord | null> {
    const record = await this.#ledger.getIdempotency(request.merchantId, request.key);
    if (record) assertSameRequest(record, request);
    return record;
  }

  /** Claims the key with the response this request gives; `ours` is false when another request claimed it first. */
  async claim(request: IdempotentRequest, status: number, body: unknown): Promise<{ record: IdempotencyRecord; ours: boolean }> {
    const wanted: IdempotencyRecord = { ...request, status, body: JSON.stringify(body), createdMs: this.#now() };
    const record = await this.#ledger.putIdempotency(wanted);
    assertSameRequest(record, request);
    return { record, ours: record.body === wanted.body && record.createdMs === wanted.createdMs };
  }
}

function assertSameRequest(record: IdempotencyRecord, request: IdempotentRequest): void {
  if (record.requestHash !== request.requestHash) {
    throw new TallyError('idempotency_key_reused', `the Idempotency-Key ${JSON.stringify(request.key)} was used with another request; use a new key`);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Completes another request's claim: reads until the claimed work is visible; when it is not by
 * the time the claim is stale (idempotencyClaimStaleMs after it was made), redoes it — the claimer
 * gave up — and reads again. The wait is bounded in this process's time too, whatever the clock says.
 */
export async function completeClaim<T>(record: IdempotencyRecord, now: () => number, read: () => Promise<T | null>, redo: () => Promise<void>): Promise<T | null> {
  const claimAgeMs = Math.max(0, now() - record.createdMs);
  const deadline = performance.now() + Math.max(0, limits.idempotencyClaimStaleMs - claimAgeMs);
  for (;;) {
    const found = await read();
    if (found !== null) return found;
    if (performance.now() >= deadline) break;
    await sleep(limits.transferPollMsMax);
  }
  await redo();
  return read();
}
