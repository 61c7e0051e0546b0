// A Cassandra session on a fresh keyspace for adapter tests: each fixture creates and migrates its
// own keyspace and drops it afterwards, so cases never see each other's rows.
import { CassandraSession, type SchemaComponent } from '../../src/adapters/cassandra/session.ts';
import { engineAddresses, uniqueName } from './engines.ts';

interface Closable {
  close(): Promise<void>;
}

export async function connectTestSession(keyspacePrefix: string): Promise<CassandraSession> {
  const addresses = engineAddresses();
  return CassandraSession.connect({
    contactPoints: addresses.cassandraContactPoints,
    localDataCenter: addresses.cassandraDc,
    keyspace: uniqueName(keyspacePrefix),
    replication: { [addresses.cassandraDc]: 1 },
  });
}

/** A fresh, migrated keyspace per fixture; reopen opens a new store on it with the same session. */
export async function cassandraFixture<T extends Closable>(
  keyspacePrefix: string,
  schema: SchemaComponent,
  open: (session: CassandraSession) => Promise<T>,
): Promise<{ store: T; reopen: () => Promise<T>; dispose(): Promise<void> }> {
  const session = await connectTestSession(keyspacePrefix);
  try {
    await session.createKeyspace();
    await session.migrate(schema);
    let current = await open(session);
    return {
      store: current,
      async reopen() {
        await current.close();
        current = await open(session);
        return current;
      },
      async dispose() {
        await current.close();
        await session.dropKeyspace();
        await session.close();
      },
    };
  } catch (error) {
    await session.dropKeyspace().finally(() => session.close());
    throw error;
  }
}
