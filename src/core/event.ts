// The analytics event as it travels the log and lands in the raw event store (the master
// dataset). Built by the collector from a validated request event plus enrichment; never holds a
// raw IP or user agent (privacy by default), only what was derived from them.

/** Revenue in integer minor units of an ISO 4217 currency. */
export interface Revenue {
  readonly amount: number;
  readonly currency: string;
}

export type PropertyValue = string | number | boolean;

export interface PageContext {
  /** URL path, without query or fragment (queries may carry personal data). */
  readonly path: string;
  readonly host: string | null;
  /** Referrer URL without its query string; null when absent or same-site. */
  readonly referrer: string | null;
  readonly title: string | null;
}

/** Visit attributes derived at collection; `null` where unknown. */
export interface VisitContext {
  readonly source: string | null;
  readonly utmSource: string | null;
  readonly utmMedium: string | null;
  readonly utmCampaign: string | null;
  readonly country: string | null;
  readonly browser: string | null;
  readonly os: string | null;
  readonly device: string | null;
}

export interface TrackedEvent {
  readonly merchantId: string;
  /** Client-given id, or a server-assigned UUIDv7; (merchantId, id) deduplicates. */
  readonly id: string;
  readonly type: string;
  /** Event time (UTC epoch ms): metrics bucket by it. */
  readonly timestampMs: number;
  /** Arrival time at the collector (UTC epoch ms): freshness is measured from it. */
  readonly receivedMs: number;
  readonly userId: string | null;
  readonly anonymousId: string | null;
  readonly sessionId: string | null;
  /** Identity for the `users` metric: `u:` user_id, else `a:` anonymous_id, else `v:` daily visitor hash. */
  readonly visitorId: string;
  readonly properties: Readonly<Record<string, PropertyValue>> | null;
  readonly revenue: Revenue | null;
  readonly page: PageContext | null;
  readonly visit: VisitContext;
  readonly locale: string | null;
}

export const emptyVisit: VisitContext = Object.freeze({
  source: null,
  utmSource: null,
  utmMedium: null,
  utmCampaign: null,
  country: null,
  browser: null,
  os: null,
  device: null,
});
