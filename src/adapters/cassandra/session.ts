// One Cassandra connection shared by the Cassandra stores: the driver client bound to Tally's
// keyspace, the configured consistency levels, prepared statements everywhere, and the mapping of
// the driver's availability errors onto the retryable `store_unavailable` code. Schema changes are
// versioned per component and applied by `tally migrate` (migrate below), never implicitly by a role.
import cassandra from 'cassandra-driver';
import { TallyError } from '../../core/errors.ts';

const { Client, errors: driverErrors, types } = cassandra;

import type { ConsistencyName } from '../../config/config.ts';

export interface CassandraOptions {
  /** host:port (or host) of a few nodes; the driver discovers the rest. */
  readonly contactPoints: readonly string[];
  /** Data center this process sits in: LOCAL_* consistency and routing stay inside it. */
  readonly localDataCenter: string;
  readonly keyspace: string;
  /** Replication factor per data center, for `CREATE KEYSPACE` (NetworkTopologyStrategy). */
  readonly replication: Readonly<Record<string, number>>;
  /** Reads and writes (default LOCAL_QUORUM: a majority of the local replicas). */
  readonly consistency?: ConsistencyName;
  /** Lightweight transactions' Paxos phase (default LOCAL_SERIAL). */
  readonly serialConsistency?: 'SERIAL' | 'LOCAL_SERIAL';
  /** Client-side timeout per request (default 12 s, above the server's own write timeout). */
  readonly requestTimeoutMs?: number;
  readonly username?: string;
  readonly password?: string;
}

/** Reconnection to a node that went away: from a quarter second, doubling, never more than 2 s apart. */
const reconnectDelayMsMin = 250;
const reconnectDelayMsMax = 2000;

export type Row = cassandra.types.Row;
export type Params = readonly unknown[];

export interface QueryOptions {
  /** Safe to run twice (the driver may then retry or speculate it); false for LWTs and appends. */
  readonly idempotent: boolean;
  readonly fetchSize?: number;
  readonly pageState?: string;
  /** SERIAL levels read a row written by lightweight transactions linearizably (resolving a timed-out one). */
  readonly consistency?: ConsistencyName | 'LOCAL_ONE' | 'SERIAL' | 'LOCAL_SERIAL';
}

export interface BatchStatement {
  readonly query: string;
  readonly params: Params;
}

/** A keyspace's component and the CQL statements that bring it from version i to i + 1. */
export interface SchemaComponent {
  readonly component: string;
  /**
   * migrations[i] upgrades version i to i + 1; every statement must be idempotent (IF NOT EXISTS).
   * Statements name tables as `{keyspace}.name`: migrate fills in the session's keyspace.
   */
  readonly migrations: readonly (readonly string[])[];
}

export class CassandraSession {
  readonly client: cassandra.Client;
  readonly keyspace: string;
  readonly options: CassandraOptions;
  readonly #consistency: number;
  readonly #serialConsistency: number;
  #closed = false;

  private constructor(client: cassandra.Client, options: CassandraOptions) {
    this.client = client;
    this.keyspace = options.keyspace;
    this.options = options;
    this.#consistency = types.consistencies[toDriverName(options.consistency ?? 'LOCAL_QUORUM')];
    this.#serialConsistency = types.consistencies[toDriverName(options.serialConsistency ?? 'LOCAL_SERIAL')];
  }

  /**
   * Connects without a keyspace (it may not exist yet: `tally migrate` creates it); statements name
   * their tables through `table()`, so one client serves the migration and the stores.
   */
  static async connect(options: CassandraOptions): Promise<CassandraSession> {
    assertKeyspaceName(options.keyspace);
    const client = new Client({
      contactPoints: [...options.contactPoints],
      localDataCenter: options.localDataCenter,
      socketOptions: { readTimeout: options.requestTimeoutMs ?? 12_000, connectTimeout: 5000 },
      queryOptions: { prepare: true },
      // The driver's default waits up to 10 minutes between attempts to a node that went away: a
      // short outage would keep queries failing long after the node is back.
      policies: { reconnection: new cassandra.policies.reconnection.ExponentialReconnectionPolicy(reconnectDelayMsMin, reconnectDelayMsMax, false) },
      ...(options.username ? { credentials: { username: options.username, password: options.password ?? '' } } : {}),
    });
    try {
      await client.connect();
    } catch (error) {
      await client.shutdown().catch(() => {});
      throw unavailable('cannot connect to Cassandra', error);
    }
    return new CassandraSession(client, options);
  }

  /** Fully qualified table name in this session's keyspace. */
  table(name: string): string {
    return `"${this.keyspace}"."${name}"`;
  }

  async execute(query: string, params: Params, options: QueryOptions): Promise<cassandra.types.ResultSet> {
    this.#assertOpen();
    try {
      return await this.client.execute(query, params as unknown[], {
        prepare: true,
        isIdempotent: options.idempotent,
        consistency: options.consistency ? types.consistencies[toDriverName(options.consistency)] : this.#consistency,
        serialConsistency: this.#serialConsistency,
        fetchSize: options.fetchSize,
        pageState: options.pageState,
      });
    } catch (error) {
      throw translateError(error);
    }
  }

  /**
   * A batch of writes. Logged batches are atomic (all or, after a failure, eventually all); unlogged
   * ones only save round trips and belong to one partition.
   */
  async batch(statements: readonly BatchStatement[], options: { logged: boolean; idempotent: boolean }): Promise<void> {
    this.#assertOpen();
    if (statements.length === 0) return;
    try {
      await this.client.batch(statements.map((s) => ({ query: s.query, params: s.params as unknown[] })), {
        prepare: true,
        logged: options.logged,
        isIdempotent: options.idempotent,
        consistency: this.#consistency,
        serialConsistency: this.#serialConsistency,
      });
    } catch (error) {
      throw translateError(error);
    }
  }

  /** Runs `work` over items with at most `concurrency` in flight; rejects with the first failure. */
  async forEachConcurrently<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
    let next = 0;
    const lanes = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    });
    await Promise.all(lanes);
  }

  async ping(): Promise<void> {
    await this.execute('SELECT release_version FROM system.local', [], { idempotent: true, consistency: 'LOCAL_ONE' });
  }

  /** Creates the keyspace if missing (`tally migrate`). Replication of an existing one is left alone. */
  async createKeyspace(): Promise<void> {
    const replication = Object.entries(this.options.replication)
      .map(([dc, factor]) => {
        if (!Number.isInteger(factor) || factor < 1) throw new RangeError(`replication factor for ${dc} must be a positive integer`);
        return `'${dc.replaceAll("'", "''")}': ${factor}`;
      })
      .join(', ');
    if (replication === '') throw new RangeError('replication needs at least one data center');
    await this.execute(
      `CREATE KEYSPACE IF NOT EXISTS "${this.keyspace}" WITH replication = {'class': 'NetworkTopologyStrategy', ${replication}}`,
      [], { idempotent: true },
    );
    await this.execute(
      `CREATE TABLE IF NOT EXISTS ${this.table('tally_schema')} (component text PRIMARY KEY, version int)`,
      [], { idempotent: true },
    );
  }

  /** Applies the component's missing migrations in order (`tally migrate`); returns [from, to]. */
  async migrate(schema: SchemaComponent): Promise<[number, number]> {
    const from = await this.schemaVersion(schema.component);
    const target = schema.migrations.length;
    if (from > target) throw new Error(newerMessage(schema.component, from, target));
    for (let version = from; version < target; version++) {
      for (const statement of schema.migrations[version]!) {
        await this.execute(statement.replaceAll('{keyspace}', `"${this.keyspace}"`), [], { idempotent: true });
      }
      await this.execute(`INSERT INTO ${this.table('tally_schema')} (component, version) VALUES (?, ?)`, [schema.component, version + 1], { idempotent: true });
    }
    return [from, target];
  }

  /** A role refuses to run on a schema it does not know: older needs `tally migrate`, newer an upgrade. */
  async assertSchema(schema: SchemaComponent): Promise<void> {
    const version = await this.schemaVersion(schema.component).catch((error: unknown) => {
      if (error instanceof TallyError) throw error;
      throw new Error(`Cassandra keyspace "${this.keyspace}" has no Tally schema: run \`tally migrate\` first`, { cause: error });
    });
    const target = schema.migrations.length;
    if (version > target) throw new Error(newerMessage(schema.component, version, target));
    if (version < target) {
      throw new Error(`Cassandra schema of ${schema.component} is at version ${version}, this build needs ${target}: run \`tally migrate\` first`);
    }
  }

  async schemaVersion(component: string): Promise<number> {
    const result = await this.execute(`SELECT version FROM ${this.table('tally_schema')} WHERE component = ?`, [component], { idempotent: true });
    const row = result.first();
    return row ? Number(row.get('version')) : 0;
  }

  /** Drops the keyspace (tests only). */
  async dropKeyspace(): Promise<void> {
    await this.execute(`DROP KEYSPACE IF EXISTS "${this.keyspace}"`, [], { idempotent: true });
  }

  get closed(): boolean {
    return this.#closed;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.client.shutdown();
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('Cassandra session is closed');
  }
}

function toDriverName(name: ConsistencyName | 'LOCAL_ONE' | 'SERIAL' | 'LOCAL_SERIAL'): keyof typeof types.consistencies {
  const map = {
    LOCAL_ONE: 'localOne', QUORUM: 'quorum', LOCAL_QUORUM: 'localQuorum', EACH_QUORUM: 'eachQuorum', ALL: 'all',
    SERIAL: 'serial', LOCAL_SERIAL: 'localSerial',
  } as const;
  return map[name];
}

function newerMessage(component: string, found: number, known: number): string {
  return `Cassandra schema of ${component} is at version ${found}, newer than this build's ${known}: upgrade Tally`;
}

function assertKeyspaceName(name: string): void {
  // Cassandra's own rule; checked here because the name is interpolated into CQL.
  if (!/^[a-zA-Z][a-zA-Z0-9_]{0,47}$/.test(name)) throw new RangeError(`keyspace name ${JSON.stringify(name)} must match [a-zA-Z][a-zA-Z0-9_]{0,47}`);
}

const availabilityCodes: ReadonlySet<number> = new Set([
  types.responseErrorCodes.unavailableException,
  types.responseErrorCodes.overloaded,
  types.responseErrorCodes.isBootstrapping,
  types.responseErrorCodes.writeTimeout,
  types.responseErrorCodes.readTimeout,
  types.responseErrorCodes.readFailure,
  types.responseErrorCodes.writeFailure,
]);

/** True for failures that say "Cassandra cannot answer now" rather than "this statement is wrong". */
export function isAvailabilityError(error: unknown): boolean {
  if (error instanceof TallyError) return error.code === 'store_unavailable';
  if (error instanceof driverErrors.NoHostAvailableError || error instanceof driverErrors.OperationTimedOutError) return true;
  if (error instanceof driverErrors.BusyConnectionError) return true;
  if (error instanceof driverErrors.ResponseError) return availabilityCodes.has(error.code);
  return false;
}

/**
 * A write whose outcome is unknown (it timed out after reaching a coordinator): it may or may not
 * have been applied, so callers of conditional writes must read back, never re-apply blindly.
 */
export function isUncertainWrite(error: unknown): boolean {
  const cause = error instanceof TallyError ? (error as Error).cause : error;
  if (cause instanceof driverErrors.OperationTimedOutError) return true;
  return cause instanceof driverErrors.ResponseError && cause.code === types.responseErrorCodes.writeTimeout;
}

function translateError(error: unknown): unknown {
  if (isAvailabilityError(error)) return unavailable('Cassandra did not answer', error);
  return error;
}

function unavailable(message: string, cause: unknown): TallyError {
  const error = new TallyError('store_unavailable', message);
  (error as Error).cause = cause;
  return error;
}
