// In-memory MerchantStore: merchants and their hashed keys for tests and the memory profile.
// Key hashes are unique across all merchants and kinds; a create that would reuse one changes
// nothing and throws, as the SQLite adapter's unique constraint does.
import type { KeyKind, Merchant, MerchantStore, NewMerchant } from '../../core/ports/merchant-store.ts';

interface KeyEntry {
  readonly merchantId: string;
  readonly kind: KeyKind;
}

export class MemoryMerchantStore implements MerchantStore {
  readonly #merchants = new Map<string, Merchant>();
  readonly #keys = new Map<string, KeyEntry>();
  #closed = false;

  static create(): MemoryMerchantStore {
    return new MemoryMerchantStore();
  }

  async create(input: NewMerchant): Promise<void> {
    this.#assertOpen();
    const merchant = input.merchant;
    if (input.writeKeyHash === input.secretKeyHash) throw new Error('merchant store: write and secret key hashes must differ');
    if (this.#merchants.has(merchant.id)) throw new Error(`merchant store: merchant ${merchant.id} already exists`);
    if (this.#keys.has(input.writeKeyHash) || this.#keys.has(input.secretKeyHash)) throw new Error('merchant store: key hash already in use');
    this.#merchants.set(merchant.id, copyMerchant(merchant));
    this.#keys.set(input.writeKeyHash, { merchantId: merchant.id, kind: 'write' });
    this.#keys.set(input.secretKeyHash, { merchantId: merchant.id, kind: 'secret' });
  }

  async get(id: string): Promise<Merchant | null> {
    this.#assertOpen();
    const merchant = this.#merchants.get(id);
    return merchant ? copyMerchant(merchant) : null;
  }

  async list(): Promise<Merchant[]> {
    this.#assertOpen();
    return [...this.#merchants.values()].sort(byCreation).map(copyMerchant);
  }

  async findByKeyHash(keyHash: string): Promise<{ merchant: Merchant; kind: KeyKind } | null> {
    this.#assertOpen();
    const entry = this.#keys.get(keyHash);
    if (!entry) return null;
    const merchant = this.#merchants.get(entry.merchantId);
    if (!merchant) throw new Error(`merchant store: key points at missing merchant ${entry.merchantId}`);
    return { merchant: copyMerchant(merchant), kind: entry.kind };
  }

  async ping(): Promise<void> {
    this.#assertOpen();
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('MemoryMerchantStore is closed');
  }
}

/** Oldest first; the id breaks ties so the order is total and the same in every adapter. */
function byCreation(a: Merchant, b: Merchant): number {
  if (a.createdMs !== b.createdMs) return a.createdMs - b.createdMs;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function copyMerchant(merchant: Merchant): Merchant {
  return {
    id: merchant.id,
    name: merchant.name,
    currency: merchant.currency,
    allowedOrigins: [...merchant.allowedOrigins],
    createdMs: merchant.createdMs,
  };
}
