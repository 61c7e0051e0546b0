// Encoding of analytics events on the log. The collector writes them; the processor reads them
// back and must not trust them blindly (another producer, an old version, a corrupted record):
// a record that does not decode is dead-lettered with the reason, never crashes the loop.
import type { PageContext, PropertyValue, Revenue, TrackedEvent, VisitContext } from '../core/event.ts';

export function encodeTrackedEvent(event: TrackedEvent): string {
  return JSON.stringify(event);
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const isNullableString = (value: unknown): value is string | null => value === null || typeof value === 'string';

/** The event, or a message saying why the record is not one. */
export function decodeTrackedEvent(value: string): TrackedEvent | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return 'record is not JSON';
  }
  if (!isObject(parsed)) return 'record is not a JSON object';
  const e = parsed;
  if (typeof e.merchantId !== 'string' || e.merchantId === '') return 'merchantId missing';
  if (typeof e.id !== 'string' || e.id === '') return 'id missing';
  if (typeof e.type !== 'string' || e.type === '') return 'type missing';
  if (!Number.isSafeInteger(e.timestampMs) || !Number.isSafeInteger(e.receivedMs)) return 'timestampMs/receivedMs must be integers';
  if (typeof e.visitorId !== 'string') return 'visitorId missing';
  for (const field of ['userId', 'anonymousId', 'sessionId', 'locale'] as const) {
    if (!isNullableString(e[field])) return `${field} must be a string or null`;
  }
  const properties = decodeProperties(e.properties);
  if (typeof properties === 'string') return properties;
  const revenue = decodeRevenue(e.revenue);
  if (typeof revenue === 'string') return revenue;
  const page = decodePage(e.page);
  if (typeof page === 'string') return page;
  const visit = decodeVisit(e.visit);
  if (typeof visit === 'string') return visit;
  return {
    merchantId: e.merchantId, id: e.id, type: e.type,
    timestampMs: e.timestampMs as number, receivedMs: e.receivedMs as number,
    userId: e.userId as string | null, anonymousId: e.anonymousId as string | null,
    sessionId: e.sessionId as string | null, visitorId: e.visitorId,
    properties, revenue, page, visit, locale: e.locale as string | null,
  };
}

function decodeProperties(value: unknown): Record<string, PropertyValue> | null | string {
  if (value === null || value === undefined) return null;
  if (!isObject(value)) return 'properties must be an object';
  for (const v of Object.values(value)) {
    if (typeof v !== 'string' && typeof v !== 'boolean' && !(typeof v === 'number' && Number.isFinite(v))) {
      return 'property values must be strings, finite numbers or booleans';
    }
  }
  return value as Record<string, PropertyValue>;
}

function decodeRevenue(value: unknown): Revenue | null | string {
  if (value === null || value === undefined) return null;
  if (!isObject(value) || !Number.isSafeInteger(value.amount) || (value.amount as number) < 0) return 'revenue.amount must be a non-negative integer';
  if (typeof value.currency !== 'string' || !/^[A-Z]{3}$/.test(value.currency)) return 'revenue.currency must be ISO 4217';
  return { amount: value.amount as number, currency: value.currency };
}

function decodePage(value: unknown): PageContext | null | string {
  if (value === null || value === undefined) return null;
  if (!isObject(value) || typeof value.path !== 'string') return 'page.path must be a string';
  if (!isNullableString(value.host) || !isNullableString(value.referrer) || !isNullableString(value.title)) {
    return 'page fields must be strings or null';
  }
  return { path: value.path, host: value.host, referrer: value.referrer, title: value.title };
}

const visitFields = ['source', 'utmSource', 'utmMedium', 'utmCampaign', 'country', 'browser', 'os', 'device'] as const;

function decodeVisit(value: unknown): VisitContext | string {
  if (!isObject(value)) return 'visit must be an object';
  for (const field of visitFields) {
    const v = value[field] ?? null;
    if (!isNullableString(v)) return `visit.${field} must be a string or null`;
  }
  const visit: Record<string, string | null> = {};
  for (const field of visitFields) visit[field] = (value[field] as string | null | undefined) ?? null;
  return visit as unknown as VisitContext;
}
