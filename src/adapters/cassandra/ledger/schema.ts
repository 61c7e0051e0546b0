// The Cassandra ledger's tables (the protocol that writes them heads ../ledger-store.ts).
import type { SchemaComponent } from '../session.ts';

/** How long a batch's intent is kept: far longer than any batch can stay pending before someone finishes it. */
export const intentTtlSeconds = 7 * 24 * 3600;

/** Idempotency records outlive the 24 hours they are promised even if pruning never runs, then expire. */
export const idempotencyTtlSeconds = 7 * 24 * 3600;

export const ledgerStoreSchema: SchemaComponent = {
  component: 'ledger',
  migrations: [[
    // An account is its partition: the attributes are static columns, and each source (log
    // partition) that moved its balance has one row with the net sum of its entries on this
    // account and the position of the last of them. balance = Σ net. A source's row has one
    // writer (the source's owner, fenced by ledger_partitions), written USING TIMESTAMP seq.
    `CREATE TABLE IF NOT EXISTS {keyspace}.ledger_accounts (
       id text, source text,
       merchant_id text static, currency text static, name text static, allow_overdraft boolean static,
       metadata text static, created_ms bigint static,
       net varint, last_position bigint,
       PRIMARY KEY ((id), source)
     )`,
    `CREATE TABLE IF NOT EXISTS {keyspace}.ledger_accounts_by_merchant (
       merchant_id text, created_ms bigint, id text,
       PRIMARY KEY ((merchant_id), created_ms, id)
     )`,
    // Append-only: one row per (account, transfer), clustered by the source and the command's
    // position in it. Debits carry what their funds check counted (decided_balance, seen).
    `CREATE TABLE IF NOT EXISTS {keyspace}.ledger_entries (
       account_id text, source text, position bigint,
       transfer_id text, merchant_id text, amount bigint, decided_balance varint, seen map<text, bigint>, settled_ms bigint,
       PRIMARY KEY ((account_id), source, position)
     )`,
    // One row per transfer id, created by whoever names the id first (the API's pending record or
    // the ledger's claim, both IF NOT EXISTS): the payload it holds owns the id. claim_source says
    // which log partition decides it; status is set once, by that partition's batch.
    `CREATE TABLE IF NOT EXISTS {keyspace}.ledger_transfers (
       id text PRIMARY KEY,
       merchant_id text, from_account_id text, to_account_id text, amount bigint, currency text,
       description text, metadata text, requested_ms bigint,
       claim_source text, status text, failure_code text, settled_ms bigint
     )`,
    `CREATE TABLE IF NOT EXISTS {keyspace}.ledger_account_transfers (
       account_id text, requested_ms bigint, transfer_id text, merchant_id text,
       PRIMARY KEY ((account_id), requested_ms, transfer_id)
     ) WITH CLUSTERING ORDER BY (requested_ms DESC, transfer_id DESC)`,
    // Per log partition: the last settled offset and the one batch claimed but not finished.
    `CREATE TABLE IF NOT EXISTS {keyspace}.ledger_partitions (
       stream text, partition int, settled_offset bigint, pending_id text, pending_through bigint,
       PRIMARY KEY ((stream, partition))
     )`,
    `CREATE TABLE IF NOT EXISTS {keyspace}.ledger_intents (
       stream text, partition int, id text, part int, parts int, writes text,
       PRIMARY KEY ((stream, partition, id), part)
     ) WITH default_time_to_live = ${intentTtlSeconds}`,
    `CREATE TABLE IF NOT EXISTS {keyspace}.ledger_idempotency (
       merchant_id text, key text, request_hash text, status int, body text, created_ms bigint,
       PRIMARY KEY ((merchant_id, key))
     )`,
    // What pruning walks: the keys of each hour, and the hours that have keys.
    `CREATE TABLE IF NOT EXISTS {keyspace}.ledger_idempotency_by_hour (
       hour bigint, merchant_id text, key text,
       PRIMARY KEY ((hour), merchant_id, key)
     ) WITH default_time_to_live = ${idempotencyTtlSeconds}`,
    `CREATE TABLE IF NOT EXISTS {keyspace}.ledger_idempotency_hours (
       shard int, hour bigint,
       PRIMARY KEY ((shard), hour)
     ) WITH default_time_to_live = ${idempotencyTtlSeconds}`,
  ]],
};
