// Several installations (or test runs) may share one Kafka cluster: a namespace prefixes every topic
// and consumer-group name this installation uses, so their records and group offsets never mix.
// A decorator over any EventLog: callers keep using the plain names ('events', 'analytics').
import type {
  AppendRecord, ConsumedRecord, ConsumerOptions, EventLog, LogConsumer, LogPartition, LogPosition,
} from '../../core/ports/event-log.ts';
import { assertTopicShape } from '../../core/partitioner.ts';

export class NamespacedEventLog implements EventLog {
  readonly #inner: EventLog;
  readonly #prefix: string;

  /** `namespace` '' returns the log itself: no prefix, no wrapper. */
  static wrap(inner: EventLog, namespace: string): EventLog {
    return namespace === '' ? inner : new NamespacedEventLog(inner, `${namespace}.`);
  }

  private constructor(inner: EventLog, prefix: string) {
    this.#inner = inner;
    this.#prefix = prefix;
  }

  async ensureTopic(topic: string, partitions: number): Promise<void> {
    // The plain name must be valid on its own: '' would otherwise pass as the prefix alone.
    assertTopicShape(topic, partitions);
    return this.#inner.ensureTopic(this.#in(topic), partitions);
  }

  async append(topic: string, records: readonly AppendRecord[]): Promise<LogPosition[]> {
    return (await this.#inner.append(this.#in(topic), records)).map((position) => this.#out(position));
  }

  consumer(options: ConsumerOptions): LogConsumer {
    const strip = (partitions: readonly LogPartition[]): LogPartition[] => partitions.map((partition) => this.#out(partition));
    const inner = this.#inner.consumer({
      group: this.#in(options.group),
      topics: options.topics.map((topic) => this.#in(topic)),
      ...(options.onAssigned ? { onAssigned: (partitions: readonly LogPartition[]) => options.onAssigned!(strip(partitions)) } : {}),
      ...(options.onRevoked ? { onRevoked: (partitions: readonly LogPartition[]) => options.onRevoked!(strip(partitions)) } : {}),
    });
    return {
      poll: async (maxRecords, maxWaitMs) => (await inner.poll(maxRecords, maxWaitMs)).map((record): ConsumedRecord => this.#out(record)),
      commit: (positions) => inner.commit(positions.map((position) => ({ ...position, topic: this.#in(position.topic) }))),
      assignment: () => strip(inner.assignment()),
      close: () => inner.close(),
    };
  }

  endOffsets(topic: string): Promise<Map<number, number>> {
    return this.#inner.endOffsets(this.#in(topic));
  }

  committedOffsets(group: string, topic: string): Promise<Map<number, number>> {
    return this.#inner.committedOffsets(this.#in(group), this.#in(topic));
  }

  ping(): Promise<void> {
    return this.#inner.ping();
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  #in(name: string): string {
    return `${this.#prefix}${name}`;
  }

  #out<T extends LogPartition>(item: T): T {
    return item.topic.startsWith(this.#prefix) ? { ...item, topic: item.topic.slice(this.#prefix.length) } : item;
  }
}
