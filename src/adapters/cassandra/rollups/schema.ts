// The rollup store's tables (component 'rollups', created by `tally migrate`). Why each has its
// shape is in the design note at the top of ../rollup-store.ts; in short: cells are written only by
// plain writes with explicit timestamps, the claim rows and the layout only by lightweight
// transactions — Cassandra orders the two kinds of write differently, so no table mixes them.
import type { SchemaComponent } from '../session.ts';

export const rollupStoreSchema: SchemaComponent = {
  component: 'rollups',
  migrations: [[
    // One row per (cell, source). Leveled compaction: every batch rewrites the rows of the current
    // buckets, and LCS keeps a row's versions in one SSTable per level, so reads stay cheap; the
    // extra compaction writes fall on rollups, a fraction of the event volume.
    `CREATE TABLE IF NOT EXISTS {keyspace}.rollup_cells (
       merchant_id text, generation int, granularity text, dimension text, span_start_ms bigint,
       bucket_ms bigint, value text, source text,
       events bigint, revenue varint, users blob, sessions blob, seq bigint,
       PRIMARY KEY ((merchant_id, generation, granularity, dimension, span_start_ms), bucket_ms, value, source)
     ) WITH compaction = {'class': 'LeveledCompactionStrategy'}`,
    // The spans that hold cells: a read over years (or "everything") visits only populated partitions.
    `CREATE TABLE IF NOT EXISTS {keyspace}.rollup_cell_spans (
       merchant_id text, generation int, granularity text, dimension text, span_start_ms bigint,
       PRIMARY KEY ((merchant_id, generation, granularity, dimension), span_start_ms)
     )`,
    // Per log partition: the applied offset and the one claimed batch (pending_id '' when none).
    `CREATE TABLE IF NOT EXISTS {keyspace}.rollup_partitions (
       stream text, log_partition int, applied_offset bigint, fence_epoch bigint,
       pending_id text, pending_through bigint, pending_chunks int,
       PRIMARY KEY ((stream, log_partition))
     )`,
    `CREATE TABLE IF NOT EXISTS {keyspace}.rollup_stream_partitions (
       stream text, log_partition int,
       PRIMARY KEY ((stream), log_partition)
     )`,
    // A claimed write's cells, so that anyone can finish it. Written with a TTL and deleted once the
    // write is finished; a deleted intent that came back (repair after gc grace) is never read again.
    `CREATE TABLE IF NOT EXISTS {keyspace}.rollup_intents (
       source text, pending_id text, chunk int, data blob,
       PRIMARY KEY ((source, pending_id), chunk)
     ) WITH gc_grace_seconds = 3600`,
    `CREATE TABLE IF NOT EXISTS {keyspace}.rollup_layout (
       id text PRIMARY KEY, epoch bigint, change_id text, snapshot text, max_generation int,
       base text, generations text, overlays text, jobs text
     )`,
    // A reprocessing job's progress and its one claimed step (pending_id '' when none).
    `CREATE TABLE IF NOT EXISTS {keyspace}.rollup_jobs (
       id text PRIMARY KEY, step bigint, done_through_ms bigint, events_done bigint, events_total bigint,
       updated_ms bigint, closed boolean,
       pending_id text, pending_chunks int, pending_done_through_ms bigint, pending_events_done bigint,
       pending_events_total bigint, pending_updated_ms bigint
     )`,
    // Applied offsets as dataVersion reads them: one small partition, written after each finish.
    `CREATE TABLE IF NOT EXISTS {keyspace}.rollup_data_versions (
       scope text, stream text, log_partition int, applied_offset bigint,
       PRIMARY KEY ((scope), stream, log_partition)
     )`,
  ]],
};
