// MerchantStore port: merchants and their keys. Keys are stored as SHA-256 hashes only; the
// plaintext is shown once at creation.

export interface Merchant {
  readonly id: string;
  readonly name: string;
  /** ISO 4217: the currency the `revenue` metric sums in. */
  readonly currency: string;
  /** Browser origins allowed to use the write key; empty allows any. */
  readonly allowedOrigins: readonly string[];
  readonly createdMs: number;
}

export type KeyKind = 'write' | 'secret';

export interface NewMerchant {
  readonly merchant: Merchant;
  readonly writeKeyHash: string;
  readonly secretKeyHash: string;
}

export interface MerchantStore {
  create(input: NewMerchant): Promise<void>;
  get(id: string): Promise<Merchant | null>;
  list(): Promise<Merchant[]>;
  findByKeyHash(keyHash: string): Promise<{ merchant: Merchant; kind: KeyKind } | null>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
