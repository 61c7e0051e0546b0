// Topic provisioning on Kafka: what ensureTopic (and so `tally migrate`) does. Topics are created
// with a fixed partition count, the installation's replication factor and min.insync.replicas, and
// LogAppendTime timestamps (a record's time is when the broker took it: lag is measured from it).
// A partition count never changes: that would move keys to other partitions.

import type { Admin } from '@platformatic/kafka';
import { LogUnavailableError } from '../../core/ports/event-log.ts';
import { brokerErrorId, describeFailure } from './errors.ts';

export interface TopicSettings {
  readonly replicationFactor: number;
  readonly minInsyncReplicas: number;
}

/** Thrown for a topic Kafka does not have: the caller must create it first. */
export class UnknownTopicError extends Error {
  constructor(topic: string) {
    super(`unknown topic "${topic}": create it first (ensureTopic, tally migrate)`);
    this.name = 'UnknownTopicError';
  }
}

/** Newly created partitions get leaders a moment after CreateTopics answers: wait for them. */
const leaderWaitStepMs = 50;

/** The topic's partition count, or undefined when Kafka has no such topic. */
export async function partitionCountOf(admin: Admin, topic: string): Promise<number | undefined> {
  // Kafka calls an unknown topic retriable, and the client would retry it: ask once first, and
  // use the client's retries only for other failures (a connection lost, a leader moving).
  try {
    return await describedPartitionCount(admin, topic, { retries: 0 });
  } catch (error) {
    if (isUnknownTopic(error)) return undefined;
  }
  try {
    return await describedPartitionCount(admin, topic, {});
  } catch (error) {
    if (isUnknownTopic(error)) return undefined;
    throw error;
  }
}

async function describedPartitionCount(admin: Admin, topic: string, retries: { retries?: number }): Promise<number | undefined> {
  const metadata = await admin.metadata({ topics: [topic], forceUpdate: true, ...retries });
  return metadata.topics.get(topic)?.partitionsCount;
}

/** Like partitionCountOf, but an absent topic is an error. */
export async function requirePartitionCount(admin: Admin, topic: string): Promise<number> {
  const count = await partitionCountOf(admin, topic);
  if (count === undefined) throw new UnknownTopicError(topic);
  return count;
}

/**
 * Creates the topic when it does not exist, then checks its partition count; resolves once every
 * partition has a leader, so the next append or fetch finds it. Safe to run from several places
 * at once (a concurrent creation is the same outcome).
 */
export async function ensureTopicExists(
  admin: Admin,
  topic: string,
  partitions: number,
  settings: TopicSettings,
  timeoutMs: number,
): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  let existing = await partitionCountOf(admin, topic);
  if (existing === undefined) {
    await createTopic(admin, topic, partitions, settings);
    existing = await waitForLeaders(admin, topic, deadlineMs);
    await waitUntilServed(admin, topic, existing, deadlineMs);
  }
  if (existing !== partitions) {
    throw new Error(
      `topic "${topic}" has ${existing} partitions; asked for ${partitions}. ` +
        'Partition counts never change (that would move keys to other partitions).',
    );
  }
}

async function createTopic(admin: Admin, topic: string, partitions: number, settings: TopicSettings): Promise<void> {
  const metadata = await admin.metadata({ topics: [] });
  if (settings.replicationFactor > metadata.brokers.size) {
    throw new Error(
      `topic "${topic}": replication factor ${settings.replicationFactor} needs as many brokers, ` +
        `but the cluster has ${metadata.brokers.size}; lower the replication factor (TALLY_KAFKA_REPLICATION_FACTOR)`,
    );
  }
  try {
    await admin.createTopics({
      topics: [{ topic, partitions, replicas: settings.replicationFactor }],
      configs: [
        { name: 'min.insync.replicas', value: String(settings.minInsyncReplicas) },
        { name: 'message.timestamp.type', value: 'LogAppendTime' },
      ],
    });
  } catch (error) {
    if (brokerErrorId(error, ['TOPIC_ALREADY_EXISTS']) !== undefined) return;
    if (brokerErrorId(error, ['INVALID_REPLICATION_FACTOR', 'INVALID_CONFIG', 'POLICY_VIOLATION', 'INVALID_TOPIC_EXCEPTION']) !== undefined) {
      // The settings, not the broker's health, are wrong: retrying would fail the same way.
      throw new Error(`topic "${topic}" cannot be created: ${describeFailure(error)}`);
    }
    throw error;
  }
}

async function waitForLeaders(admin: Admin, topic: string, deadlineMs: number): Promise<number> {
  while (Date.now() < deadlineMs) {
    try {
      const metadata = await admin.metadata({ topics: [topic], forceUpdate: true });
      const described = metadata.topics.get(topic);
      if (described !== undefined && described.partitions.length === described.partitionsCount && described.partitions.every((partition) => partition.leader >= 0)) {
        return described.partitionsCount;
      }
    } catch (error) {
      if (!isUnknownTopic(error)) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, leaderWaitStepMs));
  }
  throw new LogUnavailableError(`topic "${topic}" was created but its partitions have no leader yet`);
}

/**
 * The controller names a leader before that broker has loaded the partition: until it has, requests
 * answer NOT_LEADER_OR_FOLLOWER (seen with 1,024 new partitions on a busy machine). Resolve only once
 * every partition answers an offsets request.
 */
async function waitUntilServed(admin: Admin, topic: string, partitions: number, deadlineMs: number): Promise<void> {
  const request = { topics: [{ name: topic, partitions: Array.from({ length: partitions }, (_, partitionIndex) => ({ partitionIndex, timestamp: -1n })) }] };
  while (Date.now() < deadlineMs) {
    try {
      await admin.listOffsets(request);
      return;
    } catch (error) {
      if (brokerErrorId(error, ['NOT_LEADER_OR_FOLLOWER', 'LEADER_NOT_AVAILABLE', 'UNKNOWN_TOPIC_OR_PARTITION']) === undefined) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, leaderWaitStepMs));
  }
  throw new LogUnavailableError(`topic "${topic}" was created but its leaders do not serve it yet`);
}

/** The client reports an absent topic as a user error naming it, or as the broker's error id. */
function isUnknownTopic(error: unknown): boolean {
  if (brokerErrorId(error, ['UNKNOWN_TOPIC_OR_PARTITION', 'UNKNOWN_TOPIC_ID']) !== undefined) return true;
  return error instanceof Error && /^Unknown topic /.test(error.message);
}
