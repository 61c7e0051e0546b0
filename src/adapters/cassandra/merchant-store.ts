// Cassandra MerchantStore: merchants by id, and their keys (SHA-256 hashes only) by hash.
//
// A create claims both key hashes, then the merchant id, each with `INSERT … IF NOT EXISTS`
// (merchants are created rarely: three lightweight transactions are cheap here), and the merchant
// row names its two key hashes. A key counts only when its row and its merchant's row agree, so
// whatever a failed or interrupted create leaves behind — key rows without a merchant row, or
// pointing at another merchant that kept its id — authenticates nothing, and a merchant row exists
// only once both of its keys do. A logged batch cannot do this: it cannot refuse an id or a hash
// already in use, and conditional batches must stay inside one partition.
//
// list() reads the whole merchants table a page at a time: an admin listing of every merchant,
// O(merchants) in time and memory, as the SQLite adapter's.
import type cassandra from 'cassandra-driver';
import type { KeyKind, Merchant, MerchantStore, NewMerchant } from '../../core/ports/merchant-store.ts';
import type { CassandraSession, Row, SchemaComponent } from './session.ts';

export const merchantStoreSchema: SchemaComponent = {
  component: 'merchants',
  migrations: [[
    `CREATE TABLE IF NOT EXISTS {keyspace}.merchants (
       id text PRIMARY KEY, name text, currency text, allowed_origins list<text>, created_ms bigint,
       write_key_hash text, secret_key_hash text
     )`,
    `CREATE TABLE IF NOT EXISTS {keyspace}.merchant_keys (
       key_hash text PRIMARY KEY, merchant_id text, kind text
     )`,
  ]],
};

/** Merchants per page while listing them all. */
const listPageSize = 1000;

export interface CassandraMerchantStoreOptions {
  /** Shared with the other stores; the caller owns it and closes it. */
  readonly session: CassandraSession;
}

export class CassandraMerchantStore implements MerchantStore {
  readonly #session: CassandraSession;
  readonly #merchants: string;
  readonly #keys: string;
  readonly #merchantColumns = 'id, name, currency, allowed_origins, created_ms, write_key_hash, secret_key_hash';
  #closed = false;

  /** Checks the schema (`tally migrate` creates it); statements are prepared on first use. */
  static async open(options: CassandraMerchantStoreOptions): Promise<CassandraMerchantStore> {
    await options.session.assertSchema(merchantStoreSchema);
    return new CassandraMerchantStore(options.session);
  }

  private constructor(session: CassandraSession) {
    this.#session = session;
    this.#merchants = session.table('merchants');
    this.#keys = session.table('merchant_keys');
  }

  async create(input: NewMerchant): Promise<void> {
    this.#assertOpen();
    const merchant = input.merchant;
    if (input.writeKeyHash === input.secretKeyHash) throw new Error('merchant store: write and secret key hashes must differ');
    const keys: [string, KeyKind][] = [[input.writeKeyHash, 'write'], [input.secretKeyHash, 'secret']];
    const claimed = await Promise.all(keys.map(([hash, kind]) => this.#claimKey(hash, merchant.id, kind)));
    if (claimed.includes(false)) {
      await this.#releaseKeys(keys.filter((_, index) => claimed[index]).map(([hash]) => hash), merchant.id);
      throw new Error('merchant store: key hash already in use');
    }
    const created = await this.#session.execute(
      `INSERT INTO ${this.#merchants} (${this.#merchantColumns}) VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
      [merchant.id, merchant.name, merchant.currency, [...merchant.allowedOrigins], merchant.createdMs, input.writeKeyHash, input.secretKeyHash],
      { idempotent: false },
    );
    if (!created.wasApplied()) {
      await this.#releaseKeys(keys.map(([hash]) => hash), merchant.id);
      throw new Error(`merchant store: merchant ${merchant.id} already exists`);
    }
  }

  async get(id: string): Promise<Merchant | null> {
    this.#assertOpen();
    const row = await this.#merchantRow(id);
    return row ? rowToMerchant(row) : null;
  }

  async list(): Promise<Merchant[]> {
    this.#assertOpen();
    const merchants: Merchant[] = [];
    let pageState: string | undefined;
    do {
      const result = await this.#session.execute(`SELECT ${this.#merchantColumns} FROM ${this.#merchants}`, [], {
        idempotent: true, fetchSize: listPageSize, ...(pageState ? { pageState } : {}),
      });
      merchants.push(...result.rows.map(rowToMerchant));
      pageState = result.pageState ?? undefined;
    } while (pageState);
    return merchants.sort(byCreation);
  }

  async findByKeyHash(keyHash: string): Promise<{ merchant: Merchant; kind: KeyKind } | null> {
    this.#assertOpen();
    // Cassandra refuses empty partition keys, so no key (and no merchant) has an empty one.
    if (keyHash === '') return null;
    const key = (await this.#session.execute(`SELECT merchant_id, kind FROM ${this.#keys} WHERE key_hash = ?`, [keyHash], { idempotent: true })).first();
    if (!key) return null;
    const kind = key.get('kind') as KeyKind;
    const row = await this.#merchantRow(key.get('merchant_id') as string);
    // Only the merchant row makes a key count: see the top of the file.
    if (!row || row.get(kind === 'write' ? 'write_key_hash' : 'secret_key_hash') !== keyHash) return null;
    return { merchant: rowToMerchant(row), kind };
  }

  async ping(): Promise<void> {
    this.#assertOpen();
    await this.#session.ping();
  }

  /** The session is shared and stays open: the composition root closes it. */
  async close(): Promise<void> {
    this.#closed = true;
  }

  async #merchantRow(id: string): Promise<Row | null> {
    if (id === '') return null;
    const result = await this.#session.execute(`SELECT ${this.#merchantColumns} FROM ${this.#merchants} WHERE id = ?`, [id], { idempotent: true });
    return result.first();
  }

  /** True when this call created the key row; false when the hash was in use already. */
  async #claimKey(keyHash: string, merchantId: string, kind: KeyKind): Promise<boolean> {
    const result = await this.#session.execute(
      `INSERT INTO ${this.#keys} (key_hash, merchant_id, kind) VALUES (?, ?, ?) IF NOT EXISTS`,
      [keyHash, merchantId, kind],
      { idempotent: false },
    );
    return result.wasApplied();
  }

  /** Removes key rows this create claimed; the condition spares a row someone else holds. */
  async #releaseKeys(keyHashes: readonly string[], merchantId: string): Promise<void> {
    await Promise.all(keyHashes.map((hash) =>
      this.#session.execute(`DELETE FROM ${this.#keys} WHERE key_hash = ? IF merchant_id = ?`, [hash, merchantId], { idempotent: false }),
    ));
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('CassandraMerchantStore is closed');
  }
}

/** Oldest first; the id breaks ties so the order is total and the same in every adapter. */
function byCreation(a: Merchant, b: Merchant): number {
  if (a.createdMs !== b.createdMs) return a.createdMs - b.createdMs;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function rowToMerchant(row: Row): Merchant {
  return {
    id: row.get('id') as string,
    name: row.get('name') as string,
    currency: row.get('currency') as string,
    // Cassandra stores an empty list as no value.
    allowedOrigins: (row.get('allowed_origins') as string[] | null) ?? [],
    createdMs: (row.get('created_ms') as cassandra.types.Long).toNumber(),
  };
}
