// Key → partition mapping shared by every EventLog adapter: murmur2 over the key's UTF-8 bytes,
// the same function and seed as Kafka's default partitioner, so a key lands in the same partition
// whether the embedded log or Kafka carries it. Also the argument rules every adapter enforces.

import { limits } from './limits.ts';
import type { AppendRecord, ConsumerOptions } from './ports/event-log.ts';

const murmurSeed = 0x9747b28c;
const murmurMultiplier = 0x5bd1e995;
const murmurShiftBits = 24;
const utf8 = new TextEncoder();

/** Kafka's `Utils.murmur2`: a signed 32-bit hash of the bytes. */
export function murmur2(bytes: Uint8Array): number {
  const length = bytes.length;
  let hash = (murmurSeed ^ length) | 0;
  const wholeWordsBytes = length - (length % 4);
  for (let index = 0; index < wholeWordsBytes; index += 4) {
    // Little-endian words, as Kafka reads them.
    let word =
      (bytes[index]! & 0xff) |
      ((bytes[index + 1]! & 0xff) << 8) |
      ((bytes[index + 2]! & 0xff) << 16) |
      ((bytes[index + 3]! & 0xff) << 24);
    word = Math.imul(word, murmurMultiplier);
    word ^= word >>> murmurShiftBits;
    word = Math.imul(word, murmurMultiplier);
    hash = Math.imul(hash, murmurMultiplier) ^ word;
  }
  const tailBytes = length % 4;
  if (tailBytes === 3) hash ^= (bytes[wholeWordsBytes + 2]! & 0xff) << 16;
  if (tailBytes >= 2) hash ^= (bytes[wholeWordsBytes + 1]! & 0xff) << 8;
  if (tailBytes >= 1) {
    hash ^= bytes[wholeWordsBytes]! & 0xff;
    hash = Math.imul(hash, murmurMultiplier);
  }
  hash ^= hash >>> 13;
  hash = Math.imul(hash, murmurMultiplier);
  hash ^= hash >>> 15;
  return hash | 0;
}

/** The partition of `key` in a topic of `partitions` partitions (Kafka: toPositive(murmur2) % n). */
export function partitionForKey(key: string, partitions: number): number {
  if (!Number.isSafeInteger(partitions) || partitions < 1) {
    throw new RangeError(`partitions must be a positive integer, got ${partitions}`);
  }
  return (murmur2(utf8.encode(key)) & 0x7fffffff) % partitions;
}

export const topicPartitionsMax = limits.topicPartitionsMax;
export const topicNameCharsMax = limits.topicNameCharsMax;
const topicNamePattern = /^[A-Za-z0-9._-]+$/;

/** Throws a RangeError naming the problem when a topic name or partition count is not usable. */
export function assertTopicShape(topic: string, partitions: number): void {
  assertTopicName(topic);
  if (!Number.isSafeInteger(partitions) || partitions < 1 || partitions > topicPartitionsMax) {
    throw new RangeError(
      `topic "${topic}": partitions must be an integer from 1 to ${topicPartitionsMax}, got ${partitions}`,
    );
  }
}

export function assertTopicName(topic: string): void {
  if (typeof topic !== 'string' || topic.length === 0 || topic.length > topicNameCharsMax || !topicNamePattern.test(topic)) {
    throw new RangeError(
      `topic name must be 1–${topicNameCharsMax} characters of [A-Za-z0-9._-], got ${JSON.stringify(topic)}`,
    );
  }
}

export const pollWaitMsMax = limits.pollWaitMsMax;

export function assertPollArguments(maxRecords: number, maxWaitMs: number): void {
  if (!Number.isSafeInteger(maxRecords) || maxRecords < 1 || maxRecords > limits.pollRecordsMax) {
    throw new RangeError(`poll: maxRecords must be an integer from 1 to ${limits.pollRecordsMax}, got ${maxRecords}`);
  }
  if (!Number.isFinite(maxWaitMs) || maxWaitMs < 0 || maxWaitMs > pollWaitMsMax) {
    throw new RangeError(`poll: maxWaitMs must be from 0 to ${pollWaitMsMax}, got ${maxWaitMs}`);
  }
}

/** Keys and values are strings; anything else is a bug in the caller, not a log failure. */
export function assertAppendRecords(topic: string, records: readonly AppendRecord[]): void {
  if (!Array.isArray(records)) throw new TypeError(`append to "${topic}": records must be an array`);
  records.forEach((record: AppendRecord, index: number) => {
    if (typeof record !== 'object' || record === null) {
      throw new TypeError(`append to "${topic}": record ${index} is not an object`);
    }
    if (typeof record.key !== 'string' || typeof record.value !== 'string') {
      throw new TypeError(`append to "${topic}": record ${index} needs a string key and a string value`);
    }
  });
}

/** What every adapter's consumer() refuses: a group without a name, no topics, a bad topic name. */
export function assertConsumerOptions(options: ConsumerOptions): void {
  if (typeof options.group !== 'string' || options.group.length === 0) {
    throw new TypeError('consumer: group must be a non-empty string');
  }
  if (options.topics.length === 0) throw new TypeError('consumer: topics must not be empty');
  for (const topic of options.topics) assertTopicName(topic);
}

/** An adapter option that must be a positive integer, or its default when not given. */
export function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  const chosen = value ?? fallback;
  if (!Number.isSafeInteger(chosen) || chosen < 1) throw new RangeError(`${name} must be a positive integer, got ${chosen}`);
  return chosen;
}
