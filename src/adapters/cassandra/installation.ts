// Secrets every instance of one installation must share. Embedded, they are files in the data
// directory; distributed, collectors on many machines must derive the same daily visitor salt, so the
// secret lives in Cassandra, created once by `tally migrate` (first writer wins, LWT) and read at start.
import { randomBytes } from 'node:crypto';
import type { CassandraSession, SchemaComponent } from './session.ts';

export const installationSchema: SchemaComponent = {
  component: 'installation',
  migrations: [
    ['CREATE TABLE IF NOT EXISTS {keyspace}.installation_secrets (name text PRIMARY KEY, secret blob)'],
  ],
};

const visitorSalt = 'visitor-salt';
const secretBytes = 32;

/** Creates the visitor-salt secret unless one exists; whichever migrate ran first keeps its secret. */
export async function ensureVisitorSaltSecret(session: CassandraSession): Promise<void> {
  await session.execute(
    `INSERT INTO ${session.table('installation_secrets')} (name, secret) VALUES (?, ?) IF NOT EXISTS`,
    [visitorSalt, randomBytes(secretBytes)],
    { idempotent: false },
  );
}

export async function readVisitorSaltSecret(session: CassandraSession): Promise<Uint8Array> {
  const row = (await session.execute(`SELECT secret FROM ${session.table('installation_secrets')} WHERE name = ?`, [visitorSalt], { idempotent: true })).first();
  const secret = row?.get('secret') as Buffer | null | undefined;
  if (!secret || secret.length !== secretBytes) throw new Error('the installation has no visitor-salt secret: run `tally migrate` first');
  return new Uint8Array(secret);
}
