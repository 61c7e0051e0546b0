// SQLite MerchantStore: merchants and their keys, stored as SHA-256 hashes only. A key hash is
// the primary key of its row, so it is unique across merchants and kinds, and looking a request's
// key up is one index probe.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { KeyKind, Merchant, MerchantStore, NewMerchant } from '../../core/ports/merchant-store.ts';
import { migrateComponent, StoreConnection, transaction } from './database.ts';

export interface SqliteMerchantStoreOptions {
  /** An open database (shared with other stores, owned by the caller) or a file path to open and own. */
  readonly db: DatabaseSync | string;
}

const schemaComponent = 'merchants';
const schemaVersion = 1;

const createTablesSql = `
  CREATE TABLE IF NOT EXISTS merchants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    currency TEXT NOT NULL,
    allowed_origins TEXT NOT NULL,
    created_ms INTEGER NOT NULL
  ) STRICT;
  CREATE TABLE IF NOT EXISTS merchant_keys (
    key_hash TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    kind TEXT NOT NULL CHECK (kind IN ('write', 'secret'))
  ) STRICT;
  CREATE INDEX IF NOT EXISTS merchant_keys_by_merchant ON merchant_keys (merchant_id);
`;

const merchantColumns = 'm.id, m.name, m.currency, m.allowed_origins, m.created_ms';

export class SqliteMerchantStore implements MerchantStore {
  readonly #db: DatabaseSync;
  readonly #connection: StoreConnection;
  readonly #insertMerchant: StatementSync;
  readonly #insertKey: StatementSync;
  readonly #merchantExists: StatementSync;
  readonly #get: StatementSync;
  readonly #list: StatementSync;
  readonly #byKeyHash: StatementSync;
  readonly #ping: StatementSync;

  static create(options: SqliteMerchantStoreOptions): SqliteMerchantStore {
    return new SqliteMerchantStore(options);
  }

  constructor(options: SqliteMerchantStoreOptions) {
    this.#connection = new StoreConnection(options.db, 'SqliteMerchantStore', migrate);
    this.#db = this.#connection.db;
    const db = this.#db;
    this.#insertMerchant = db.prepare('INSERT INTO merchants (id, name, currency, allowed_origins, created_ms) VALUES (?, ?, ?, ?, ?)');
    this.#insertKey = db.prepare('INSERT INTO merchant_keys (key_hash, merchant_id, kind) VALUES (?, ?, ?)');
    this.#merchantExists = db.prepare('SELECT 1 FROM merchants WHERE id = ?');
    this.#get = db.prepare(`SELECT ${merchantColumns} FROM merchants m WHERE m.id = ?`);
    this.#list = db.prepare(`SELECT ${merchantColumns} FROM merchants m ORDER BY m.created_ms, m.id`);
    this.#byKeyHash = db.prepare(`SELECT ${merchantColumns}, k.kind FROM merchant_keys k JOIN merchants m ON m.id = k.merchant_id WHERE k.key_hash = ?`);
    this.#ping = db.prepare('SELECT 1');
  }

  async create(input: NewMerchant): Promise<void> {
    this.#assertOpen();
    const merchant = input.merchant;
    if (input.writeKeyHash === input.secretKeyHash) throw new Error('merchant store: write and secret key hashes must differ');
    transaction(this.#db, () => {
      if (this.#merchantExists.get(merchant.id)) throw new Error(`merchant store: merchant ${merchant.id} already exists`);
      this.#insertMerchant.run(merchant.id, merchant.name, merchant.currency, JSON.stringify(merchant.allowedOrigins), merchant.createdMs);
      try {
        this.#insertKey.run(input.writeKeyHash, merchant.id, 'write');
        this.#insertKey.run(input.secretKeyHash, merchant.id, 'secret');
      } catch (error) {
        // The transaction rolls back the merchant row too: a create is all or nothing.
        throw new Error('merchant store: key hash already in use', { cause: error });
      }
    });
  }

  async get(id: string): Promise<Merchant | null> {
    this.#assertOpen();
    const row = this.#get.get(id);
    return row ? rowToMerchant(row) : null;
  }

  async list(): Promise<Merchant[]> {
    this.#assertOpen();
    return this.#list.all().map(rowToMerchant);
  }

  async findByKeyHash(keyHash: string): Promise<{ merchant: Merchant; kind: KeyKind } | null> {
    this.#assertOpen();
    const row = this.#byKeyHash.get(keyHash);
    return row ? { merchant: rowToMerchant(row), kind: row.kind as KeyKind } : null;
  }

  async ping(): Promise<void> {
    this.#assertOpen();
    this.#ping.get();
  }

  async close(): Promise<void> {
    this.#connection.close();
  }

  #assertOpen(): void {
    this.#connection.assertOpen();
  }
}

function migrate(db: DatabaseSync): void {
  migrateComponent(db, { component: schemaComponent, version: schemaVersion, label: 'merchant store', create: (d) => d.exec(createTablesSql) });
}

function rowToMerchant(row: Record<string, unknown>): Merchant {
  return {
    id: row.id as string,
    name: row.name as string,
    currency: row.currency as string,
    allowedOrigins: JSON.parse(row.allowed_origins as string) as string[],
    createdMs: row.created_ms as number,
  };
}
