// What the HTTP roles and processors need, built once by the composition root (src/cli).
// Only ports and plain values: nothing here knows which adapters sit behind them.
import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import type { EventLog } from '../core/ports/event-log.ts';
import type { EventStore } from '../core/ports/event-store.ts';
import type { RollupStore } from '../core/ports/rollup-store.ts';
import type { MerchantStore } from '../core/ports/merchant-store.ts';
import type { LedgerStore } from '../core/ports/ledger-store.ts';
import type { GeoLookup } from '../core/ports/geo-lookup.ts';
import type { Cache } from '../core/ports/cache.ts';
import type { AnalyticsRules } from '../core/analytics/rules.ts';
import type { TallyMetrics } from '../http/metrics.ts';

export interface Services {
  readonly config: Config;
  readonly logger: Logger;
  readonly log: EventLog;
  readonly events: EventStore;
  readonly rollups: RollupStore;
  readonly merchants: MerchantStore;
  /** Accounts, transfers and entries of the payments job. */
  readonly ledger: LedgerStore;
  readonly geo: GeoLookup;
  readonly rules: AnalyticsRules;
  readonly metrics: TallyMetrics;
  /** Query results by data version; null when disabled (TALLY_QUERY_CACHE_MB=0). */
  readonly queryCache: Cache | null;
  /** Secret behind the daily visitor-hash salt; lives in the data directory, never in events. */
  readonly saltSecret: Uint8Array;
  /** SHA-256 of the admin token (from TALLY_ADMIN_TOKEN, or generated on first start); null: admin API off. */
  readonly adminTokenHash: string | null;
  readonly now: () => number;
}

export type Role = 'collector' | 'processor' | 'query';
export const allRoles: readonly Role[] = ['collector', 'processor', 'query'];
