// Bearer-key authentication. Keys are random 24-byte secrets shown once; only their SHA-256 is
// stored (a slow password hash buys nothing for 192-bit random keys and would cap throughput).
// Lookups are cached briefly in memory because every ingest request authenticates.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { TallyError } from '../core/errors.ts';
import type { KeyKind, Merchant, MerchantStore } from '../core/ports/merchant-store.ts';

export const writeKeyPrefix = 'tw_';
export const secretKeyPrefix = 'ts_';
const keyBytes = 24;
const keyCacheEntriesMax = 10_000;
const keyCacheTtlMs = 60_000;

export function newKey(kind: KeyKind): string {
  return (kind === 'write' ? writeKeyPrefix : secretKeyPrefix) + randomBytes(keyBytes).toString('base64url');
}

export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function bearerToken(request: FastifyRequest): string {
  const header = request.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer ([\x21-\x7e]{1,256})$/.exec(header.trim()) : null;
  if (!match) throw new TallyError('unauthorized', 'send Authorization: Bearer <key>');
  return match[1]!;
}

/** Compares hashes in constant time: the admin token itself is never stored. */
export function checkAdminToken(request: FastifyRequest, adminTokenHash: string): void {
  const given = Buffer.from(hashKey(bearerToken(request)));
  const expected = Buffer.from(adminTokenHash);
  if (!timingSafeEqual(given, expected)) throw new TallyError('unauthorized', 'admin token required');
}

interface CachedKey {
  readonly found: { merchant: Merchant; kind: KeyKind } | null;
  readonly expiresMs: number;
}

export class KeyResolver {
  readonly #store: MerchantStore;
  readonly #cache = new Map<string, CachedKey>();

  constructor(store: MerchantStore) {
    this.#store = store;
  }

  /** The merchant of a key of the wanted kind; 401 for unknown keys, 403 for the wrong kind. */
  async resolve(request: FastifyRequest, kind: KeyKind): Promise<Merchant> {
    const key = bearerToken(request);
    const hash = hashKey(key);
    const now = Date.now();
    let cached = this.#cache.get(hash);
    if (!cached || cached.expiresMs < now) {
      cached = { found: await this.#store.findByKeyHash(hash), expiresMs: now + keyCacheTtlMs };
      if (this.#cache.size >= keyCacheEntriesMax) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(hash, cached);
    }
    if (!cached.found) throw new TallyError('unauthorized', 'unknown key');
    if (cached.found.kind !== kind) {
      throw new TallyError('forbidden', kind === 'secret' ? 'this endpoint needs the secret key, not the write key' : 'this endpoint needs the write key');
    }
    return cached.found.merchant;
  }
}
