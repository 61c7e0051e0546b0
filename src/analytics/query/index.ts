// The analytics query engine behind POST /v1/query: parse a body into a Query, plan it over
// rollup cells and raw scans, execute it against the ports. The HTTP route lives elsewhere.
export { executeQuery, runQuery, type QueryContext, type QueryResponse } from './execute.ts';
export { runCachedQuery, type CachedQueryOptions } from './cached.ts';
export { parseQuery, filterOperators, type Filter, type FilterOperator, type OrderTerm, type Query, type SortDirection } from './parse.ts';
export { cellDimension, planQuery, type CellRead, type Plan } from './plan.ts';
export type { MetricValue, QueryResult } from './results.ts';
export {
  bucketStartAt, formatBucket, parseRfc3339, relativeRanges, resolveRelativeRange, resolveTimeZone, timeBuckets,
  type DateRange, type RelativeRange, type TimeBucket,
} from './time-range.ts';
