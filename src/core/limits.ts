// Every bound Tally enforces, in one place, with the unit last and a one-line why.
// Configurable limits take these as defaults (src/config); the rest are fixed by the design.
// Relations between limits are asserted at load, so a bad edit fails at start, not in production.

const minuteMs = 60_000;
const hourMs = 60 * minuteMs;
const dayMs = 24 * hourMs;

export const time = { minuteMs, hourMs, dayMs } as const;

export const limits = {
  // Collector (defaults; configurable)
  /** A request body larger than this is refused with 413 before parsing. */
  bodyBytesMax: 1024 * 1024,
  /** Events in one request: bounds per-request work and the size of the `rejected` array. */
  requestEventsMax: 1000,
  /** One event's JSON size: keeps one event from dominating a batch or a log record. */
  eventBytesMax: 32 * 1024,
  /** Clock skew tolerated for client timestamps ahead of the server. */
  futureSkewMs: 5 * minuteMs,
  /** Late events older than this are rejected: rollups outside the window are closed. */
  lateWindowMs: 7 * dayMs,

  // Event fields (fixed by the API)
  /** Room for a UUID or an order number with a prefix; the dedup key stays small. */
  eventIdCharsMax: 64,
  /** Types are names, not payloads; short keeps rollup keys small. */
  eventTypeCharsMax: 64,
  /** user_id, anonymous_id, session_id: identifiers, never documents. */
  identityCharsMax: 128,
  /** Properties per event: each becomes rollup cells, so the count is bounded. */
  propertiesKeysMax: 50,
  /** A property name is part of a dimension name (prop:<name>). */
  propertyKeyCharsMax: 128,
  /** A property value is a label to group by, not a blob. */
  propertyStringCharsMax: 1024,
  /** Longer URLs are not served by common browsers and servers either. */
  urlCharsMax: 2048,
  /** Page titles beyond this are truncated by browsers' UIs anyway. */
  titleCharsMax: 512,
  /** Real user agents fit; longer ones are abuse, and the parser's cache keys on them. */
  userAgentCharsMax: 512,
  /** BCP 47 tags in practice. */
  localeCharsMax: 35,
  /** An IPv6 address with an embedded IPv4 tail is at most 45 characters. */
  ipCharsMax: 45,

  // Processor runtime
  /** Records handled per poll: bounds memory per batch and the work lost to a crash. */
  pollRecordsMax: 20_000,
  /** A poll that brings fewer records than this waits pollLingerMs for more: fewer, fuller batches. */
  pollLingerRecordsMin: 1000,
  /** How long a small batch waits to fill up; bounded well below the freshness target (2 s). */
  pollLingerMs: 50,
  /** Attempts for a retryable failure before the record goes to the dead-letter topic. */
  retryAttemptsMax: 8,
  /** First retry delay; doubles per attempt (full jitter) up to retryDelayMsMax. */
  retryBaseDelayMs: 50,
  /** Longest wait between retries: a recovered store is noticed within this. */
  retryDelayMsMax: 10_000,

  // Event log
  /** Partitions of one topic; Kafka's practical per-topic range. */
  topicPartitionsMax: 1024,
  /** Prefix of topics and groups when installations share a Kafka cluster (TALLY_KAFKA_NAMESPACE). */
  kafkaNamespaceCharsMax: 40,
  /** Kafka's own bound on topic names (a namespace's prefix counts towards it). */
  topicNameCharsMax: 249,
  /** Longest a poll may wait: longer hides a stuck consumer from its heartbeat. */
  pollWaitMsMax: 60_000,
  /** Appends waiting for one group commit: bounds memory and the latency of the last one in. */
  appendQueueRecordsMax: 50_000,
  /** How often the embedded log's retention pass runs. */
  logRetentionIntervalMs: 5 * minuteMs,
  /** Group-commit window: appends arriving within it share one fsync. */
  groupCommitWindowMs: 0,

  // Query
  /** Rows one query response may carry (the API's `limit` maximum). */
  queryRowsMax: 10_000,
  /** Rows when the query names no `limit`. */
  queryRowsDefault: 1000,
  /** Dimensions per query: more multiply rows without adding insight. */
  queryDimensionsMax: 3,
  /** Filters per query. */
  queryFiltersMax: 20,
  /** Values in one filter's list. */
  queryFilterValuesMax: 100,
  /** time:minute is only offered for short ranges: a minute series longer than this is noise. */
  minuteRangeMsMax: 48 * hourMs,
  /** Buckets in one time series response. */
  queryBucketsMax: 5000,
  /** Longest date range a query may span (about 5 years). */
  queryRangeMsMax: 5 * 366 * dayMs,
  /** Cached query results per process: bounds the cache's bookkeeping whatever its byte budget. */
  queryCacheEntriesMax: 10_000,
  /** Raw events a query may scan before it is refused with query_too_large. */
  queryScanEventsMax: 2_000_000,

  // Reprocessing
  /** Longest range one reprocessing job may rebuild. */
  reprocessRangeMsMax: 5 * 366 * dayMs,
  /** Raw events read per reprocessing step: bounds memory and the work lost to a crash. */
  reprocessStepEventsMax: 20_000,

  // Merchants
  /** A display name. */
  merchantNameCharsMax: 100,
  /** Origins per write key: a merchant's sites, not the web. */
  allowedOriginsMax: 50,

  // Payments
  /** Payments bodies are small: the largest valid one (50 metadata pairs) fits many times over. */
  paymentsBodyBytesMax: 64 * 1024,
  /** Metadata keys per account or transfer: labels for the merchant's own bookkeeping. */
  metadataKeysMax: 50,
  /** A metadata key names a label (Stripe's bound, as for the other metadata limits). */
  metadataKeyCharsMax: 40,
  /** A metadata value is a reference (an order number, a customer id), never a document. */
  metadataValueCharsMax: 500,
  /** An account's display name. */
  accountNameCharsMax: 100,
  /** A transfer's description: a line on a statement. */
  transferDescriptionCharsMax: 1000,
  /** Items on one page of a list (accounts, an account's transfers). */
  pageItemsMax: 100,
  /** Items on a page when the request names no limit. */
  pageItemsDefault: 10,
  /** Idempotency-Key header: room for a UUID with a prefix, small enough to index. */
  idempotencyKeyCharsMax: 255,
  /** Idempotency keys are kept at least this long: a client retrying within a day gets its answer. */
  idempotencyKeyRetentionMs: dayMs,
  /** How often old idempotency keys are pruned. */
  idempotencyPruneIntervalMs: hourMs,
  /** Longest a POST /v1/transfers may wait for the outcome (?wait_ms): requests must not hang. */
  transferWaitMsMax: 10_000,
  /** First wait between reads of a waited-for transfer; doubles up to transferPollMsMax. */
  transferPollMsMin: 2,
  /** Longest wait between reads of a waited-for transfer: the answer is at most this late. */
  transferPollMsMax: 20,
  /** A claimed key whose transfer is not recorded after this was abandoned (its append failed): a retry re-sends it. */
  idempotencyClaimStaleMs: 10_000,
  /** Embedded ledger: idempotency claims and pending transfers waiting for one group commit (memory, latency of the last one in). */
  ledgerWriteQueueMax: 10_000,

  // Request/reply over the log
  /** The message of a `.failed` reply: a signal for the requester, not a log. */
  replyErrorMessageCharsMax: 1000,
} as const;

export type Limits = typeof limits;

function assertRelations(l: Limits): void {
  const check = (ok: boolean, what: string): void => {
    if (!ok) throw new Error(`limits: ${what}`);
  };
  check(l.eventBytesMax <= l.bodyBytesMax, 'one event must fit in one body');
  check(l.queryRowsDefault <= l.queryRowsMax, 'default rows within the maximum');
  check(l.retryBaseDelayMs < l.retryDelayMsMax, 'retry base delay below its cap');
  check(l.pollRecordsMax <= l.appendQueueRecordsMax, 'a poll fits in the append queue');
  check(l.pollLingerRecordsMin < l.pollRecordsMax, 'lingering only for batches below the maximum');
  check(l.minuteRangeMsMax / minuteMs <= l.queryBucketsMax, 'a full minute series fits the bucket limit');
  check(l.lateWindowMs < l.reprocessRangeMsMax, 'the late window can be reprocessed');
  check(l.pageItemsDefault <= l.pageItemsMax, 'default page within the maximum');
  check(l.transferPollMsMin <= l.transferPollMsMax && l.transferPollMsMax < l.transferWaitMsMax, 'transfer polls are shorter than the longest wait');
  check(l.idempotencyPruneIntervalMs < l.idempotencyKeyRetentionMs, 'keys are pruned more often than they expire');
}

assertRelations(limits);
