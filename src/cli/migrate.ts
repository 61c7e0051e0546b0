// `tally migrate`: brings the configured deployment's storage to this build's schema. Distributed:
// creates the topics (partition counts fixed from then on), the keyspace and every table, in
// versioned idempotent steps, and the installation's shared secrets. Embedded: the SQLite files
// migrate themselves when opened, so this opens and closes them.
import { isDistributed, type Config } from '../config/config.ts';
import { openEmbedded } from './compose.ts';

export async function migrateCommand(config: Config): Promise<number> {
  if (!isDistributed(config)) {
    const deployment = await openEmbedded({ ...config, logLevel: 'warn' });
    await deployment.close();
    process.stdout.write(`embedded storage in ${config.dataDir} is at this build's schema\n`);
    return 0;
  }
  const { migrateDistributed } = await import('./compose-distributed.ts');
  const report = await migrateDistributed(config);
  for (const topic of report.topics) process.stdout.write(`topic ${topic.name}: ${topic.partitions} partitions\n`);
  for (const schema of report.schemas) {
    const change = schema.from === schema.to ? `at version ${schema.to}` : `version ${schema.from} → ${schema.to}`;
    process.stdout.write(`schema ${schema.component}: ${change}\n`);
  }
  process.stdout.write(`keyspace ${config.cassandraKeyspace} ready\n`);
  return 0;
}
