// A LogConsumer on a Kafka consumer group (classic protocol, cooperative-sticky assignment). The
// client keeps the membership alive in the background (heartbeats, rejoins); everything the
// handler sees happens inside poll, as with Kafka's own consumer:
// - a rebalance that takes partitions from this member waits, before it rejoins, for the next
//   poll to run onRevoked (the handler finishes and commits while it still owns them);
// - partitions the group gives this member are announced by onAssigned before any of their
//   records are returned;
// - a member that has not polled for pollIntervalMsMax while another member of its group waits
//   leaves the group, and its next poll reports the loss through onRevoked.
// Commits are checked against what this member owns and sent with its generation: a member that
// lost a partition, here or at the broker, gets LogFencedError and changes nothing.

import {
  Consumer,
  ConnectionPool,
  IS_CONTROL,
  ListOffsetTimestamps,
  kGetApi,
  kGetConnection,
} from '@platformatic/kafka';
import type { Admin, API, BaseOptions, Connection } from '@platformatic/kafka';
import { assertPollArguments } from '../../core/partitioner.ts';
import { LogFencedError, LogUnavailableError } from '../../core/ports/event-log.ts';
import type { ConsumedRecord, ConsumerOptions, LogConsumer, LogPartition, LogPosition } from '../../core/ports/event-log.ts';
import { asLogError, brokerErrorId, withDeadline } from './errors.ts';

export interface GroupSettings {
  readonly sessionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly pollIntervalMsMax: number;
  readonly fetchWaitMsMax: number;
  readonly requestTimeoutMs: number;
}

export interface KafkaLogConsumerOptions {
  readonly clientOptions: BaseOptions & { readonly requestTimeout: number; readonly connectTimeout: number };
  readonly group: GroupSettings;
  readonly consumer: ConsumerOptions;
  /** Shared with the log: describes the group when deciding whether a silent member must go. */
  readonly admin: Admin;
  readonly forget: (consumer: KafkaLogConsumer) => void;
}

interface OwnedPartition extends LogPartition {
  /** Next offset to fetch. */
  position: number;
  /** Fetched, not yet returned by poll. */
  buffered: ConsumedRecord[];
  /** Latest high watermark seen: a commit past it is checked against the broker. */
  highWatermark: number;
}

/** A JoinGroup the client holds back until this member has given up partitions. */
interface PendingRevocation {
  readonly promise: Promise<Buffer>;
  readonly resolve: (userData: Buffer) => void;
  readonly reject: (error: Error) => void;
}

const cooperativeSticky = [{ name: 'cooperative-sticky', version: 3 }];
/** Bytes one fetch brings back, overall and per partition (Kafka's consumer defaults are 50 MiB / 1 MiB). */
const fetchBytesMax = 16 * 1024 * 1024;
const partitionFetchBytesMax = 1024 * 1024;
/** After a failed join or fetch, wait this long before the next attempt. */
const retryBackoffMs = 250;
/** A commit that meets a rebalance checks this often whether this member's next generation has come. */
const commitRetryStepMs = 50;
/** Record batch attribute bit 3: the broker's append time is the batch's max timestamp. */
const logAppendTimeFlag = 0x08;
const noUserData = Buffer.alloc(0);

/** The member is in the group but its generation is being replaced (a rebalance is under way). */
const staleGenerationIds = ['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION'];
/** The member is no longer in the group: whatever it holds may be another's. */
const fencedIds = ['UNKNOWN_MEMBER_ID', 'FENCED_INSTANCE_ID'];

type FetchResponse = Awaited<ReturnType<Consumer['fetch']>>;
interface CommitTopic {
  readonly name: string;
  readonly partitions: { partitionIndex: number; committedOffset: bigint; committedLeaderEpoch: number }[];
}
/** OffsetCommit(groupId, generation, memberId, groupInstanceId, topics). */
type OffsetCommitApi = API<[string, number, string, string | null, CommitTopic[]], unknown>;

const partitionKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;
const partitionOf = (entry: LogPartition): LogPartition => ({ topic: entry.topic, partition: entry.partition });

export class KafkaLogConsumer implements LogConsumer {
  readonly #options: KafkaLogConsumerOptions;
  readonly #client: Consumer;
  /** Fetches wait at the broker; their own connections keep heartbeats and commits from queueing behind them. */
  readonly #fetchPool: ConnectionPool;
  readonly #owned = new Map<string, OwnedPartition>();
  /** Partitions this member lost without having been told (left the group, membership expired). */
  #lost: LogPartition[] = [];
  #pendingRevocation: PendingRevocation | undefined;
  #membership: 'out' | 'joining' | 'in' = 'out';
  /** A LeaveGroup in flight: the next join waits for it, or its answer would reset the new membership. */
  #leaving: Promise<void> | undefined;
  #nextJoinMs = 0;
  /** Starting offsets of newly assigned partitions could not be read: not before this. */
  #assignRetryMs = 0;
  #fetching: Promise<void> | undefined;
  #fetchRetryMs = 0;
  #wake: (() => void) | undefined;
  #polling: Promise<unknown> | undefined;
  #lastPollEndMs = Date.now();
  #silenceTimer: ReturnType<typeof setTimeout> | undefined;
  #readRotation = 0;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: KafkaLogConsumerOptions) {
    this.#options = options;
    const { group } = options;
    this.#client = new Consumer({
      ...options.clientOptions,
      groupId: options.consumer.group,
      sessionTimeout: group.sessionTimeoutMs,
      heartbeatInterval: group.heartbeatIntervalMs,
      // The broker waits this long for members to rejoin: a revocation runs in the next poll.
      rebalanceTimeout: Math.max(group.sessionTimeoutMs, group.pollIntervalMsMax + group.requestTimeoutMs),
      protocols: cooperativeSticky,
      protocolsMetadata: () => this.#beforeJoin(),
      autocommit: false,
    });
    this.#client.topics.trackAll(...new Set(options.consumer.topics));
    this.#fetchPool = new ConnectionPool(options.clientOptions.clientId, options.clientOptions);
    this.#client.on('consumer:group:join', () => {
      if (this.#membership === 'joining') this.#membership = 'in';
      this.#wakeUp();
    });
    this.#client.on('consumer:group:rebalance', () => this.#wakeUp());
    // The client gave up rejoining (broker away longer than its retries): membership is gone.
    this.#client.on('error', () => this.#loseMembership());
  }

  poll(maxRecords: number, maxWaitMs: number): Promise<ConsumedRecord[]> {
    try {
      assertPollArguments(maxRecords, maxWaitMs);
      if (this.#closed) throw new Error('poll: the consumer is closed');
      if (this.#polling !== undefined) throw new Error('poll: another poll is already in progress on this consumer');
    } catch (error) {
      return Promise.reject(error);
    }
    clearTimeout(this.#silenceTimer);
    const polling = this.#poll(maxRecords, performance.now() + maxWaitMs).finally(() => {
      this.#polling = undefined;
      this.#lastPollEndMs = Date.now();
      this.#armSilenceTimer();
    });
    this.#polling = polling;
    return polling;
  }

  async commit(positions: readonly LogPosition[]): Promise<void> {
    const checked = positions.map((position) => {
      const entry = this.#owned.get(partitionKey(position.topic, position.partition));
      if (entry === undefined) throw this.#fenced(position);
      if (!Number.isSafeInteger(position.offset) || position.offset < 0) {
        throw new RangeError(`commit ${position.topic}[${position.partition}]: offset ${position.offset} is not a non-negative integer`);
      }
      return { entry, offset: position.offset };
    });
    if (checked.length === 0) return;
    const beyond = checked.filter(({ entry, offset }) => offset > entry.highWatermark);
    if (beyond.length > 0) await this.#refreshHighWatermarks(beyond.map(({ entry }) => entry));
    for (const { entry, offset } of checked) {
      if (offset > entry.highWatermark) {
        throw new RangeError(`commit ${entry.topic}[${entry.partition}]: offset ${offset} is past the end ${entry.highWatermark}`);
      }
    }
    await withDeadline(this.#sendCommit(checked), this.#options.group.requestTimeoutMs, `commit for group "${this.#options.consumer.group}"`);
  }

  assignment(): readonly LogPartition[] {
    return [...this.#owned.values()].map(partitionOf);
  }

  /** Ends a waiting poll, runs onRevoked for everything held, then leaves the group at once. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#silenceTimer);
    this.#wakeUp();
    // A poll may be inside onAssigned or onRevoked: the handler must not see two hooks at once.
    await this.#polling?.catch(() => {});
    const revoked = [...this.#lost, ...this.#owned.values()].map(partitionOf);
    this.#lost = [];
    try {
      if (revoked.length > 0) await this.#options.consumer.onRevoked?.(revoked);
    } finally {
      this.#owned.clear();
      // A join waiting for a revocation must not go ahead: the member is leaving.
      this.#releaseJoin(new Error('the consumer is closing'));
      this.#options.forget(this);
      const timeoutMs = this.#options.group.requestTimeoutMs;
      await Promise.allSettled([
        withDeadline(this.#client.close(true), timeoutMs, 'leave group'),
        withDeadline(this.#fetchPool.close(), timeoutMs, 'close fetch connections'),
      ]);
    }
  }

  async #poll(maxRecords: number, deadline: number): Promise<ConsumedRecord[]> {
    for (;;) {
      if (this.#closed) return [];
      await this.#settleMembership();
      if (this.#closed) return [];
      const ready = this.#takeBuffered(maxRecords);
      if (ready.length > 0) return ready;
      const remainingMs = deadline - performance.now();
      if (remainingMs <= 0) return [];
      this.#startFetching(Math.min(remainingMs, this.#options.group.fetchWaitMsMax));
      // A failed join or fetch is tried again within the same poll, after its back-off.
      const retryMs =
        Math.max(this.#membership === 'out' ? this.#nextJoinMs : 0, this.#fetching === undefined ? this.#fetchRetryMs : 0, this.#assignRetryMs) - Date.now();
      await this.#sleep(retryMs > 0 ? Math.min(remainingMs, retryMs) : remainingMs);
    }
  }

  /** Runs, in this poll, what the group decided since the last one: losses, revocations, assignments. */
  async #settleMembership(): Promise<void> {
    const { onAssigned, onRevoked } = this.#options.consumer;
    if (this.#lost.length > 0) {
      const lost = this.#lost;
      this.#lost = [];
      await onRevoked?.(lost);
    }
    if (this.#pendingRevocation !== undefined) {
      const kept = this.#assignedByGroup();
      const revoked = [...this.#owned.entries()].filter(([key]) => !kept.has(key));
      // Still owned while the handler finishes and commits; the rejoin waits for this.
      if (revoked.length > 0) await onRevoked?.(revoked.map(([, entry]) => partitionOf(entry)));
      for (const [key] of revoked) this.#owned.delete(key);
      this.#releaseJoin();
    }
    if (this.#membership === 'out') {
      this.#join();
      return;
    }
    if (this.#membership !== 'in') return;
    const assigned = [...this.#assignedByGroup().values()].filter((part) => !this.#owned.has(partitionKey(part.topic, part.partition)));
    if (assigned.length === 0 || this.#closed || Date.now() < this.#assignRetryMs) return;
    let starts: Map<string, number>;
    try {
      starts = await this.#startingOffsets(assigned);
    } catch {
      // The broker did not answer: the partitions are taken up by a later poll.
      this.#assignRetryMs = Date.now() + retryBackoffMs;
      return;
    }
    const added: LogPartition[] = [];
    for (const part of assigned) {
      const position = starts.get(partitionKey(part.topic, part.partition));
      if (position === undefined) continue;
      this.#owned.set(partitionKey(part.topic, part.partition), { ...part, position, buffered: [], highWatermark: position });
      added.push(part);
    }
    if (added.length > 0) await onAssigned?.(added);
  }

  /** What the group coordinator's last assignment gives this member. */
  #assignedByGroup(): Map<string, LogPartition> {
    const assigned = new Map<string, LogPartition>();
    for (const { topic, partitions } of this.#client.assignments ?? []) {
      for (const partition of partitions) assigned.set(partitionKey(topic, partition), { topic, partition });
    }
    return assigned;
  }

  #join(): void {
    if (this.#leaving !== undefined || Date.now() < this.#nextJoinMs) return;
    this.#membership = 'joining';
    this.#client.joinGroup().then(
      () => {
        if (this.#membership === 'joining') this.#membership = 'in';
        this.#wakeUp();
      },
      () => {
        // Broker away or topic missing: the next poll tries again.
        this.#membership = 'out';
        this.#nextJoinMs = Date.now() + retryBackoffMs;
        this.#wakeUp();
      },
    );
  }

  /**
   * Called by the client before every JoinGroup. With cooperative-sticky assignment a rebalance
   * takes partitions away in two rounds: the first round's assignment leaves them out, and the
   * member must give them up before its second JoinGroup, where others may get them.
   */
  #beforeJoin(): Promise<Buffer> {
    if (this.#closed) return Promise.reject(new Error('the consumer is closing'));
    const kept = this.#assignedByGroup();
    if (![...this.#owned.keys()].some((key) => !kept.has(key))) return Promise.resolve(noUserData);
    // The client asks again when it retries a join: the same revocation answers both.
    if (this.#pendingRevocation !== undefined) return this.#pendingRevocation.promise;
    this.#pendingRevocation = Promise.withResolvers<Buffer>();
    this.#wakeUp();
    this.#armSilenceTimer();
    return this.#pendingRevocation.promise;
  }

  /** Lets the held-back JoinGroup go out, or (with an error) refuses it: no JoinGroup for this member. */
  #releaseJoin(refusal?: Error): void {
    const pending = this.#pendingRevocation;
    this.#pendingRevocation = undefined;
    if (refusal === undefined) pending?.resolve(noUserData);
    else pending?.reject(refusal);
  }

  /** The client gave up a rejoin it started on its own: the group moved on without this member. */
  #loseMembership(): void {
    if (this.#closed || this.#membership !== 'in') return;
    this.#releaseJoin(new Error('the membership was lost'));
    this.#dropOwnership();
    this.#wakeUp();
  }

  /** Partitions gone without onRevoked first: the next poll reports them, then rejoins. */
  #dropOwnership(): void {
    this.#lost.push(...[...this.#owned.values()].map(partitionOf));
    this.#owned.clear();
    this.#membership = 'out';
  }

  /** Between polls only: a silent member gives its partitions up when another member wants them. */
  #armSilenceTimer(): void {
    clearTimeout(this.#silenceTimer);
    if (this.#closed || this.#polling !== undefined || this.#owned.size === 0) return;
    const dueMs = this.#lastPollEndMs + this.#options.group.pollIntervalMsMax - Date.now();
    // Once overdue, the group is asked at most once per recheck interval: a member busy on a long
    // batch, alone in its group (or cut off from the broker), must not spin on describeGroups.
    this.#silenceTimer = setTimeout(() => void this.#checkSilence(), Math.max(silenceRecheckMs, dueMs));
    // A bookkeeping timer: it must never be what keeps a process alive.
    this.#silenceTimer.unref();
  }

  async #checkSilence(): Promise<void> {
    if (this.#closed || this.#polling !== undefined) return;
    if (this.#pendingRevocation === undefined && !(await this.#othersInGroup())) {
      this.#armSilenceTimer();
      return;
    }
    if (this.#closed || this.#polling !== undefined) return;
    this.#leaveSilently();
  }

  async #othersInGroup(): Promise<boolean> {
    try {
      const groups = await withDeadline(
        this.#options.admin.describeGroups({ groups: [this.#options.consumer.group] }),
        this.#options.group.requestTimeoutMs,
        'describe group',
      );
      return (groups.get(this.#options.consumer.group)?.members.size ?? 0) > 1;
    } catch {
      // Cannot tell: keep the partitions; the next check asks again.
      return false;
    }
  }

  /** Leaves the group now, so the waiting members get the partitions without this one. */
  #leaveSilently(): void {
    this.#dropOwnership();
    // Leave first, then refuse the join that waited: no JoinGroup goes out for this member.
    this.#leaving = callback<void>((done) => this.#client.leaveGroup(true, done))
      .catch(() => {})
      .finally(() => {
        this.#leaving = undefined;
        this.#wakeUp();
      });
    this.#releaseJoin(new Error('member stopped polling'));
  }

  #startFetching(waitMs: number): void {
    if (this.#fetching !== undefined || this.#owned.size === 0 || Date.now() < this.#fetchRetryMs) return;
    const wanted = [...this.#owned.values()].filter((entry) => entry.buffered.length === 0);
    if (wanted.length === 0) return;
    this.#fetching = this.#fetch(wanted, Math.max(1, Math.floor(waitMs)))
      .catch(() => this.#fetchFailed())
      .finally(() => {
        this.#fetching = undefined;
        this.#wakeUp();
      });
  }

  async #fetch(wanted: readonly OwnedPartition[], waitMs: number): Promise<void> {
    const topics = [...new Set(wanted.map((entry) => entry.topic))];
    const metadata = await this.#client.metadata({ topics });
    const topicNames = new Map<string, string>();
    const byLeader = new Map<number, Map<string, OwnedPartition[]>>();
    for (const entry of wanted) {
      const described = metadata.topics.get(entry.topic);
      const leader = described?.partitions[entry.partition]?.leader;
      if (described === undefined || leader === undefined || leader < 0) continue;
      topicNames.set(described.id, entry.topic);
      const topicsOfLeader = byLeader.get(leader) ?? new Map<string, OwnedPartition[]>();
      topicsOfLeader.set(described.id, [...(topicsOfLeader.get(described.id) ?? []), entry]);
      byLeader.set(leader, topicsOfLeader);
    }
    if (byLeader.size === 0) throw new LogUnavailableError('no leader known for the partitions to fetch');
    await Promise.all(
      [...byLeader].map(async ([node, topicsOfLeader]) => {
        const requested = new Map<string, number>();
        const request = [...topicsOfLeader].map(([topicId, entries]) => ({
          topicId,
          partitions: entries.map((entry) => {
            requested.set(partitionKey(entry.topic, entry.partition), entry.position);
            return {
              partition: entry.partition,
              fetchOffset: BigInt(entry.position),
              currentLeaderEpoch: -1,
              lastFetchedEpoch: -1,
              partitionMaxBytes: partitionFetchBytesMax,
            };
          }),
        }));
        try {
          const response = await this.#client.fetch({
            node,
            topics: request,
            maxWaitTime: waitMs,
            minBytes: 1,
            maxBytes: fetchBytesMax,
            connectionPool: this.#fetchPool,
          });
          this.#buffer(response, topicNames, requested);
        } catch (error) {
          if (!this.#resetOutOfRange(error, topicNames, requested)) throw error;
        }
      }),
    );
  }

  /** Keeps the records of partitions still owned at the offsets they were asked for. */
  #buffer(response: FetchResponse, topicNames: ReadonlyMap<string, string>, requested: ReadonlyMap<string, number>): void {
    if (this.#closed) return;
    for (const topicResponse of response.responses) {
      const topic = topicNames.get(topicResponse.topicId);
      if (topic === undefined) continue;
      for (const partitionResponse of topicResponse.partitions) {
        const key = partitionKey(topic, partitionResponse.partitionIndex);
        const entry = this.#owned.get(key);
        const from = requested.get(key);
        // Revoked, or re-positioned, while the fetch was out: its answer is stale.
        if (entry === undefined || from === undefined || entry.position !== from) continue;
        entry.highWatermark = Math.max(entry.highWatermark, Number(partitionResponse.highWatermark));
        for (const batch of partitionResponse.records ?? []) {
          const nextOffset = Number(batch.firstOffset) + batch.lastOffsetDelta + 1;
          if ((batch.attributes & IS_CONTROL) === 0) {
            for (const record of batch.records) {
              const offset = Number(batch.firstOffset) + record.offsetDelta;
              // A compressed batch may start before the offset asked for.
              if (offset < from) continue;
              entry.buffered.push({
                topic,
                partition: entry.partition,
                offset,
                key: record.key?.toString('utf8') ?? '',
                value: record.value?.toString('utf8') ?? '',
                appendedMs: Number((batch.attributes & logAppendTimeFlag) !== 0 ? batch.maxTimestamp : batch.firstTimestamp + record.timestampDelta),
              });
            }
          }
          entry.position = Math.max(entry.position, nextOffset);
        }
      }
    }
  }

  /** Records below the log start were deleted by retention: continue from the oldest kept. */
  #resetOutOfRange(error: unknown, topicNames: ReadonlyMap<string, string>, requested: ReadonlyMap<string, number>): boolean {
    const response = (error as { response?: FetchResponse }).response;
    if (brokerErrorId(error, ['OFFSET_OUT_OF_RANGE']) === undefined || response === undefined) return false;
    for (const topicResponse of response.responses) {
      const topic = topicNames.get(topicResponse.topicId);
      for (const partitionResponse of topicResponse.partitions) {
        if (topic === undefined || partitionResponse.logStartOffset < 0n) continue;
        const key = partitionKey(topic, partitionResponse.partitionIndex);
        const entry = this.#owned.get(key);
        if (entry !== undefined && entry.position === requested.get(key) && entry.position < Number(partitionResponse.logStartOffset)) {
          entry.position = Number(partitionResponse.logStartOffset);
        }
      }
    }
    return true;
  }

  /**
   * Leaders moving, a broker restarting: the client refreshes its metadata and the fetch is tried
   * again after a back-off. Polls return [] meanwhile, never an error: consumer lag shows the outage.
   */
  #fetchFailed(): void {
    this.#fetchRetryMs = Date.now() + retryBackoffMs;
  }

  /** Up to maxRecords buffered records, each partition's in offset order, starting with a different partition each time. */
  #takeBuffered(maxRecords: number): ConsumedRecord[] {
    const owned = [...this.#owned.values()];
    const taken: ConsumedRecord[] = [];
    this.#readRotation = (this.#readRotation + 1) % Math.max(owned.length, 1);
    for (let index = 0; index < owned.length && taken.length < maxRecords; index++) {
      const entry = owned[(this.#readRotation + index) % owned.length]!;
      taken.push(...entry.buffered.splice(0, maxRecords - taken.length));
    }
    return taken;
  }

  /** Committed offsets of newly assigned partitions; the log start where the group has none. */
  async #startingOffsets(parts: readonly LogPartition[]): Promise<Map<string, number>> {
    const byTopic = new Map<string, number[]>();
    for (const part of parts) byTopic.set(part.topic, [...(byTopic.get(part.topic) ?? []), part.partition]);
    const what = `offsets of group "${this.#options.consumer.group}"`;
    const timeoutMs = this.#options.group.requestTimeoutMs;
    const committed = await withDeadline(
      this.#client.listCommittedOffsets({ topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })) }),
      timeoutMs,
      what,
    );
    const starts = new Map<string, number>();
    const uncommitted = new Map<string, number[]>();
    for (const part of parts) {
      const offset = committed.get(part.topic)?.[part.partition];
      if (offset !== undefined && offset >= 0n) starts.set(partitionKey(part.topic, part.partition), Number(offset));
      else uncommitted.set(part.topic, [...(uncommitted.get(part.topic) ?? []), part.partition]);
    }
    if (uncommitted.size > 0) {
      const earliest = await withDeadline(
        this.#client.listOffsets({ topics: [...uncommitted.keys()], partitions: Object.fromEntries(uncommitted), timestamp: ListOffsetTimestamps.EARLIEST }),
        timeoutMs,
        what,
      );
      for (const [topic, partitions] of uncommitted) {
        for (const partition of partitions) {
          const offset = earliest.get(topic)?.[partition];
          if (offset !== undefined) starts.set(partitionKey(topic, partition), Number(offset));
        }
      }
    }
    return starts;
  }

  async #refreshHighWatermarks(entries: readonly OwnedPartition[]): Promise<void> {
    const byTopic = new Map<string, number[]>();
    for (const entry of entries) byTopic.set(entry.topic, [...(byTopic.get(entry.topic) ?? []), entry.partition]);
    const ends = await withDeadline(
      this.#client.listOffsets({ topics: [...byTopic.keys()], partitions: Object.fromEntries(byTopic), timestamp: ListOffsetTimestamps.LATEST }),
      this.#options.group.requestTimeoutMs,
      'commit: end offsets',
    );
    for (const entry of entries) {
      const end = ends.get(entry.topic)?.[entry.partition];
      if (end !== undefined) entry.highWatermark = Math.max(entry.highWatermark, Number(end));
    }
  }

  /**
   * OffsetCommit with this member's generation, sent directly: the client's own commit rejoins
   * the group and retries on a generation error, which could commit work this member lost.
   * Here a retry happens only for partitions this member still owns: with cooperative
   * assignment, a partition is given to another member only after this one revoked it (in
   * poll) or left, so a newer generation of this same member may commit what it still holds.
   */
  async #sendCommit(checked: readonly { entry: OwnedPartition; offset: number }[]): Promise<void> {
    const giveUpMs = Date.now() + this.#options.group.requestTimeoutMs;
    for (;;) {
      const memberId = this.#client.memberId;
      if (memberId === null) throw this.#fenced(checked[0]!.entry);
      for (const { entry } of checked) if (this.#owned.get(partitionKey(entry.topic, entry.partition)) !== entry) throw this.#fenced(entry);
      const generation = this.#client.generationId;
      const byTopic = new Map<string, CommitTopic['partitions']>();
      for (const { entry, offset } of checked) {
        byTopic.set(entry.topic, [...(byTopic.get(entry.topic) ?? []), { partitionIndex: entry.partition, committedOffset: BigInt(offset), committedLeaderEpoch: -1 }]);
      }
      try {
        const connection = await this.#coordinatorConnection();
        const api = await callback<OffsetCommitApi>((done) => this.#client[kGetApi]('OffsetCommit', done));
        const topics = [...byTopic].map(([name, partitions]) => ({ name, partitions }));
        await api.async(connection, this.#options.consumer.group, generation, memberId, null, topics);
        return;
      } catch (error) {
        if (brokerErrorId(error, fencedIds) !== undefined) throw this.#fenced(checked[0]!.entry);
        if (brokerErrorId(error, staleGenerationIds) === undefined) throw asLogError(error, `commit for group "${this.#options.consumer.group}"`);
        // This member's next generation waits for its next poll when it must give partitions up
        // first: waiting here would only stall that poll. Otherwise the rejoin is under way.
        if (this.#pendingRevocation !== undefined) throw this.#fenced(checked[0]!.entry);
        await this.#generationAfter(generation, giveUpMs);
        if (this.#client.generationId === generation) throw this.#fenced(checked[0]!.entry);
      }
    }
  }

  /** Until the client holds a generation other than `generation`, or the time is up. */
  async #generationAfter(generation: number, giveUpMs: number): Promise<void> {
    while (this.#client.generationId === generation && Date.now() < giveUpMs && this.#pendingRevocation === undefined) {
      await new Promise((resolve) => setTimeout(resolve, commitRetryStepMs));
    }
  }

  async #coordinatorConnection(): Promise<Connection> {
    const coordinatorId = await this.#client.findGroupCoordinator();
    const metadata = await this.#client.metadata({ topics: [] });
    const broker = metadata.brokers.get(coordinatorId);
    if (broker === undefined) throw new LogUnavailableError(`group coordinator ${coordinatorId} is not in the cluster metadata`);
    return callback<Connection>((done) => this.#client[kGetConnection](broker, done));
  }

  #fenced(position: LogPartition): LogFencedError {
    return new LogFencedError(`group "${this.#options.consumer.group}": this member no longer owns ${position.topic}[${position.partition}]`);
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Until something happens (records, a rebalance, close) or the time is up. */
  #sleep(maxMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#wakeUp(), maxMs);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

/** How often an overdue member asks whether another member is waiting for its partitions. */
const silenceRecheckMs = 1000;

/** The client's protected callback-style helpers as promises. */
function callback<T = unknown>(start: (done: (error: Error | null, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    start((error, value) => (error ? reject(error) : resolve(value as T)));
  });
}
