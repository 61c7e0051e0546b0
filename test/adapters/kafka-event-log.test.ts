// The EventLog contract against a real Kafka broker, plus what only Kafka has: placement that
// agrees with other Kafka clients, bounded failures when the broker is away, topic settings.
// Every fixture gets its own namespace (topic and group prefix), so parallel runs on one broker
// never meet, and drops its topics and groups afterwards.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { Admin, Producer, compatibilityPartitioner } from '@platformatic/kafka';
import { KafkaEventLog } from '../../src/adapters/kafka/event-log.ts';
import type { KafkaEventLogOptions } from '../../src/adapters/kafka/event-log.ts';
import { NamespacedEventLog } from '../../src/adapters/kafka/namespace.ts';
import { partitionForKey, topicNameCharsMax } from '../../src/core/partitioner.ts';
import { LogUnavailableError } from '../../src/core/ports/event-log.ts';
import type { EventLog } from '../../src/core/ports/event-log.ts';
import { runEventLogContract } from '../contracts/event-log.contract.ts';
import { engineAddresses, enginesMissing, uniqueName } from '../support/engines.ts';

const missing = await enginesMissing('kafka');

/** Every namespace has this length, so the room left for topic names is known in advance. */
const namespaceChars = 20;
const newNamespace = (): string => uniqueName('klog').replaceAll('_', '-').padEnd(namespaceChars, '0').slice(0, namespaceChars);

if (missing !== null) {
  test('kafka event log', (t) => t.skip(missing));
} else {
  const brokers = engineAddresses().kafkaBrokers;
  const admin = new Admin({ clientId: 'tally-test-cleanup', bootstrapBrokers: brokers });
  after(() => admin.close());

  // 6 s is the shortest session a broker with Kafka's default group.min.session.timeout.ms takes
  // (scripts/engines/kafka/server.properties lowers it to 1 s for brokers started since); it only
  // matters for killed members. A member that stops polling for a second gives its partitions up
  // to a waiting member whatever the session.
  const groupTimings: Partial<KafkaEventLogOptions> = {
    sessionTimeoutMs: 6_000,
    heartbeatIntervalMs: 200,
    pollIntervalMsMax: 1_000,
    fetchWaitMsMax: 100,
  };

  const openLog = (options: Partial<KafkaEventLogOptions> = {}): KafkaEventLog =>
    KafkaEventLog.connect({ brokers, clientId: 'tally-test', ...groupTimings, ...options });

  /** Deletes the namespace's topics and consumer groups. */
  const dropNamespace = async (namespace: string): Promise<void> => {
    const prefix = `${namespace}.`;
    const topics = (await admin.listTopics()).filter((topic) => topic.startsWith(prefix));
    if (topics.length > 0) await admin.deleteTopics({ topics });
    const groups = [...(await admin.listGroups()).keys()].filter((group) => group.startsWith(prefix));
    if (groups.length > 0) await admin.deleteGroups({ groups });
  };

  runEventLogContract('kafka', {
    topicNameCharsMax: topicNameCharsMax - namespaceChars - 1,
    create: async (options) => {
      const namespace = newNamespace();
      const open = (): EventLog =>
        NamespacedEventLog.wrap(
          openLog(options?.appendQueueRecordsMax === undefined ? {} : { appendQueueRecordsMax: options.appendQueueRecordsMax }),
          namespace,
        );
      return { log: open(), reopen: async () => open(), cleanup: () => dropNamespace(namespace) };
    },
  });

  describe('kafka event log', () => {
    const withLog = async (run: (log: KafkaEventLog, topic: (name: string) => string) => Promise<void>): Promise<void> => {
      const namespace = newNamespace();
      const log = openLog();
      try {
        await run(log, (name) => `${namespace}.${name}`);
      } finally {
        await log.close();
        await dropNamespace(namespace);
      }
    };

    // The client's own default partitioner is murmur2 >>> 0, not Kafka's murmur2 & 0x7fffffff: it
    // places keys with a negative hash elsewhere, so append names the partition itself; the
    // client's compatibilityPartitioner is the Java client's default and must agree with it.
    test('a key lands where partitionForKey says, and where the Java client’s default partitioner puts it', () =>
      withLog(async (log, topic) => {
        const placed = topic('placed');
        await log.ensureTopic(placed, 6);
        const keys = ['merchant-1', 'merchant-2', 'café', '🙂', 'x'.repeat(300), ...Array.from({ length: 20 }, (_, index) => `k${index}`)];
        const positions = await log.append(placed, keys.map((key) => ({ key, value: 'ours' })));
        const producer = new Producer({ clientId: 'tally-test-plain', bootstrapBrokers: brokers, partitioner: compatibilityPartitioner });
        try {
          for (const [index, key] of keys.entries()) {
            const sent = await producer.send({ messages: [{ topic: placed, key: Buffer.from(key), value: Buffer.from('plain') }] });
            assert.equal(sent.offsets?.[0]?.partition, partitionForKey(key, 6), `Java-compatible client, key ${key}`);
            assert.equal(positions[index]!.partition, partitionForKey(key, 6), `our append, key ${key}`);
          }
        } finally {
          await producer.close();
        }
        const ends = await log.endOffsets(placed);
        assert.equal([...ends.values()].reduce((sum, end) => sum + end, 0), keys.length * 2);
      }));

    test('members joining and leaving while records flow: no partition held twice, every record delivered and committed', () =>
      withLog(async (log, topic) => {
        const flowing = topic('flowing');
        const group = topic('workers');
        await log.ensureTopic(flowing, 4);
        const owners = new Map<number, string>();
        const doubleHeld: string[] = [];
        const delivered = new Set<string>();
        const startMember = (name: string): { stop: () => Promise<void> } => {
          let stopping = false;
          const consumer = log.consumer({
            group,
            topics: [flowing],
            onAssigned: async (parts) => {
              for (const { partition } of parts) {
                if (owners.has(partition)) doubleHeld.push(`${name} got ${partition} from ${owners.get(partition)}`);
                owners.set(partition, name);
              }
            },
            onRevoked: async (parts) => {
              for (const { partition } of parts) if (owners.get(partition) === name) owners.delete(partition);
            },
          });
          const loop = (async () => {
            while (!stopping) {
              const batch = await consumer.poll(500, 100);
              for (const record of batch) delivered.add(record.value);
              const next = new Map<number, number>();
              for (const record of batch) next.set(record.partition, Math.max(next.get(record.partition) ?? 0, record.offset + 1));
              // A commit fenced by a move is redelivered to the next owner: allowed, not required.
              await consumer.commit([...next].map(([partition, offset]) => ({ topic: flowing, partition, offset }))).catch(() => {});
            }
            await consumer.close();
          })();
          return {
            stop: async () => {
              stopping = true;
              await loop;
            },
          };
        };
        let appended = 0;
        let appending = true;
        const producing = (async () => {
          while (appending) {
            const values = Array.from({ length: 20 }, (_, index) => `r${appended + index}`);
            await log.append(flowing, values.map((value, index) => ({ key: `k${(appended + index) % 13}`, value })));
            appended += values.length;
            await sleep(20);
          }
        })();
        const first = startMember('first');
        await sleep(1_000);
        const second = startMember('second');
        await sleep(1_500);
        const third = startMember('third');
        await sleep(1_500);
        await second.stop();
        await sleep(1_500);
        appending = false;
        await producing;
        const ends = await log.endOffsets(flowing);
        const deadlineMs = Date.now() + 15_000;
        const caughtUp = async (): Promise<boolean> => {
          const committed = await log.committedOffsets(group, flowing);
          // A partition no key maps to has nothing to commit.
          return [...ends].every(([partition, end]) => (committed.get(partition) ?? 0) === end);
        };
        while (!(await caughtUp()) && Date.now() < deadlineMs) await sleep(100);
        const committedToTheEnd = await caughtUp();
        await Promise.all([first.stop(), third.stop()]);
        assert.deepEqual(doubleHeld, []);
        assert.equal(delivered.size, appended, 'every appended record was delivered');
        assert.ok(committedToTheEnd, 'the group committed up to the end of every partition');
      }));

    test('one append several times larger than a produce request reaches one partition whole and in order', () =>
      withLog(async (log, topic) => {
        // 4 MB of incompressible values for one key: beyond the broker's 1 MB message.max.bytes
        // in one request, so the append must travel as several.
        const large = topic('large');
        await log.ensureTopic(large, 2);
        const records = Array.from({ length: 4000 }, (_, index) => ({ key: 'one-merchant', value: `${index}:${randomBytes(768).toString('base64')}` }));
        const positions = await log.append(large, records);
        const partition = partitionForKey('one-merchant', 2);
        assert.deepEqual(positions.map((position) => position.offset), records.map((_, index) => index));
        assert.ok(positions.every((position) => position.partition === partition));
        assert.equal((await log.endOffsets(large)).get(partition), records.length);
        const consumer = log.consumer({ group: topic('large-reader'), topics: [large] });
        const read: string[] = [];
        for (let attempt = 0; read.length < records.length && attempt < 100; attempt++) {
          for (const record of await consumer.poll(5000, 500)) read.push(record.value);
        }
        await consumer.close();
        assert.deepEqual(read.map((value) => value.slice(0, value.indexOf(':'))), records.map((_, index) => String(index)));
      }));

    test('a record’s appendedMs is the broker’s append time', () =>
      withLog(async (log, topic) => {
        const timed = topic('timed');
        await log.ensureTopic(timed, 1);
        const beforeMs = Date.now();
        await log.append(timed, [{ key: 'k', value: 'v' }]);
        const afterMs = Date.now();
        const consumer = log.consumer({ group: topic('reader'), topics: [timed] });
        let records = await consumer.poll(10, 10_000);
        for (let attempt = 0; records.length === 0 && attempt < 50; attempt++) records = await consumer.poll(10, 200);
        assert.equal(records.length, 1);
        // Same machine, same clock; a millisecond of rounding either side.
        assert.ok(records[0]!.appendedMs >= beforeMs - 1 && records[0]!.appendedMs <= afterMs + 1, `${beforeMs} ≤ ${records[0]!.appendedMs} ≤ ${afterMs}`);
      }));

    test('ensureTopic on a topic created elsewhere with another partition count fails and changes nothing', () =>
      withLog(async (log, topic) => {
        const other = topic('other');
        await admin.createTopics({ topics: [{ topic: other, partitions: 3, replicas: 1 }] });
        await assert.rejects(log.ensureTopic(other, 2), /has 3 partitions; asked for 2/);
        assert.equal((await log.endOffsets(other)).size, 3);
      }));

    test('a replication factor above the broker count is refused with the reason, and creates nothing', async () => {
      const namespace = newNamespace();
      const log = openLog({ replicationFactor: 3, minInsyncReplicas: 2 });
      try {
        await assert.rejects(log.ensureTopic(`${namespace}.replicated`, 1), /replication factor 3 needs as many brokers, but the cluster has 1/);
        await assert.rejects(log.endOffsets(`${namespace}.replicated`), /unknown topic/);
      } finally {
        await log.close();
        await dropNamespace(namespace);
      }
    });

    test('min.insync.replicas above the replication factor is refused when the log is opened', () => {
      assert.throws(() => openLog({ replicationFactor: 1, minInsyncReplicas: 2 }), RangeError);
    });

    test('with no broker listening, every call rejects with LogUnavailableError within the request timeout', async () => {
      const requestTimeoutMs = 1_500;
      const log = KafkaEventLog.connect({ brokers: ['127.0.0.1:1'], requestTimeoutMs });
      try {
        await expectUnavailableWithin(() => log.append('events', [{ key: 'k', value: 'v' }]), requestTimeoutMs);
        await expectUnavailableWithin(() => log.ensureTopic('events', 1), requestTimeoutMs);
        await expectUnavailableWithin(() => log.ping(), requestTimeoutMs);
        await expectUnavailableWithin(() => log.endOffsets('events'), requestTimeoutMs);
      } finally {
        await log.close();
      }
    });

    test('a broker that accepts connections but never answers: calls still end at the request timeout', async () => {
      const sockets = new Set<Socket>();
      const silent = createServer((socket) => {
        sockets.add(socket);
        socket.on('error', () => {});
      });
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const requestTimeoutMs = 1_000;
      const log = KafkaEventLog.connect({ brokers: [`127.0.0.1:${(silent.address() as AddressInfo).port}`], requestTimeoutMs });
      try {
        await expectUnavailableWithin(() => log.append('events', [{ key: 'k', value: 'v' }]), requestTimeoutMs);
        await expectUnavailableWithin(() => log.ping(), requestTimeoutMs);
      } finally {
        await log.close();
        for (const socket of sockets) socket.destroy();
        await new Promise((resolve) => silent.close(resolve));
      }
    });
  });
}

/** Rejects with LogUnavailableError, and not much later than the bound. */
async function expectUnavailableWithin(call: () => Promise<unknown>, timeoutMs: number): Promise<void> {
  const startedMs = Date.now();
  await assert.rejects(call(), LogUnavailableError);
  const tookMs = Date.now() - startedMs;
  // Timers are not exact on a busy machine: a quarter of the bound of slack.
  assert.ok(tookMs <= timeoutMs * 1.25 + 250, `took ${tookMs} ms, bound ${timeoutMs} ms`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
