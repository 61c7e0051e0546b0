// Validates one request event against the collector API contract and returns either a
// ValidEvent (plain data, timestamps resolved) or the ItemError the client gets back for it.
// Strict on field names so typos surface; `null` or "" for an optional field means absent.
import type { ItemError } from '../errors.ts';
import type { PropertyValue, Revenue } from '../event.ts';
import { limits } from '../limits.ts';
import type { CollectLimits } from './options.ts';
import type { BodyItem } from './parse-body.ts';
import { FieldError, isRecord, unknownField } from './fields.ts';
import { quoteName } from './quote-name.ts';
import { parseTimestamp } from './timestamp.ts';
import { readContext, type ValidContext } from './validate-context.ts';

export type { ValidContext, ValidPage } from './validate-context.ts';

export interface ValidEvent {
  readonly id: string | null;
  readonly type: string;
  /** Event time (epoch ms); the time of receipt when the client gave none. */
  readonly timestampMs: number;
  readonly userId: string | null;
  readonly anonymousId: string | null;
  readonly sessionId: string | null;
  readonly properties: Readonly<Record<string, PropertyValue>> | null;
  readonly revenue: Revenue | null;
  readonly context: ValidContext;
}

const eventFields: ReadonlySet<string> = new Set([
  'id', 'type', 'timestamp', 'user_id', 'anonymous_id', 'session_id', 'properties', 'revenue', 'context',
]);

const eventTypePattern = /^[A-Za-z0-9_.:-]+$/;
const currencyPattern = /^[A-Z]{3}$/;
/** Below this an epoch-ms timestamp is before 1973: almost surely epoch seconds sent by mistake. */
const epochSecondsLikelyBelowMs = 1e11;

export function isItemError(result: ValidEvent | ItemError): result is ItemError {
  return 'code' in result;
}

/** Validates a parsed body item; a body-level parse failure passes through as its error. */
export function validateItem(item: BodyItem, index: number, nowMs: number, options: CollectLimits): ValidEvent | ItemError {
  if (item.kind === 'error') return item.error;
  return validateEvent(item.value, index, nowMs, options, item.bytes);
}

/** `bytes` is the event's serialized UTF-8 size; measured here when the caller has not. */
export function validateEvent(
  value: unknown,
  index: number,
  nowMs: number,
  options: CollectLimits,
  bytes?: number,
): ValidEvent | ItemError {
  const result = readEvent(value, nowMs, options, bytes);
  return result instanceof FieldError ? { index, code: result.code, message: result.message } : result;
}

function readEvent(value: unknown, nowMs: number, options: CollectLimits, bytes: number | undefined): ValidEvent | FieldError {
  if (!isRecord(value)) return new FieldError('event_not_object', 'An event must be a JSON object.');
  const size = bytes ?? Buffer.byteLength(JSON.stringify(value));
  if (size > options.eventBytesMax) {
    return new FieldError('event_too_large', `The event is ${size} bytes; at most ${options.eventBytesMax} are accepted.`);
  }
  const unknown = unknownField(value, eventFields, '');
  if (unknown) return unknown;
  const id = readId(value.id);
  if (id instanceof FieldError) return id;
  const type = readType(value.type);
  if (type instanceof FieldError) return type;
  const timestampMs = readTimestamp(value.timestamp, nowMs, options);
  if (timestampMs instanceof FieldError) return timestampMs;
  const userId = readIdentity(value.user_id, 'user_id');
  if (userId instanceof FieldError) return userId;
  const anonymousId = readIdentity(value.anonymous_id, 'anonymous_id');
  if (anonymousId instanceof FieldError) return anonymousId;
  const sessionId = readIdentity(value.session_id, 'session_id');
  if (sessionId instanceof FieldError) return sessionId;
  const properties = readProperties(value.properties);
  if (properties instanceof FieldError) return properties;
  const revenue = readRevenue(value.revenue);
  if (revenue instanceof FieldError) return revenue;
  const context = readContext(value.context);
  if (context instanceof FieldError) return context;
  return { id, type, timestampMs, userId, anonymousId, sessionId, properties, revenue, context };
}

function readId(value: unknown): string | null | FieldError {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string' && value.length >= 1 && value.length <= limits.eventIdCharsMax) return value;
  return new FieldError('invalid_event_id', `"id" must be a string of 1 to ${limits.eventIdCharsMax} characters.`);
}

function readType(value: unknown): string | FieldError {
  if (typeof value === 'string' && value.length <= limits.eventTypeCharsMax && eventTypePattern.test(value)) {
    return value;
  }
  const why = value === undefined || value === null ? '"type" is required: ' : '';
  return new FieldError('invalid_event_type', `${why}"type" must be 1 to ${limits.eventTypeCharsMax} characters of [A-Za-z0-9_.:-].`);
}

function readTimestamp(value: unknown, nowMs: number, options: CollectLimits): number | FieldError {
  if (value === undefined || value === null) return nowMs;
  const timestampMs = parseTimestamp(value);
  if (timestampMs === null) {
    return new FieldError('invalid_timestamp', '"timestamp" must be an RFC 3339 date-time string or epoch milliseconds.');
  }
  if (timestampMs > nowMs + options.futureSkewMs) {
    return new FieldError('timestamp_in_future', `"timestamp" is more than ${options.futureSkewMs} ms ahead of the server clock.`);
  }
  if (timestampMs < nowMs - options.lateWindowMs) {
    const hint = typeof value === 'number' && timestampMs >= 0 && timestampMs < epochSecondsLikelyBelowMs
      ? ' It looks like epoch seconds; send epoch milliseconds.'
      : '';
    return new FieldError('timestamp_too_old', `"timestamp" is older than the ${options.lateWindowMs} ms late-event window.${hint}`);
  }
  return timestampMs;
}

function readIdentity(value: unknown, name: string): string | null | FieldError {
  // "" is absent: counting it would merge every sender of an empty id into one user.
  if (value === undefined || value === null || value === '') return null;
  if (typeof value === 'string' && value.length <= limits.identityCharsMax) return value;
  return new FieldError('invalid_identity', `"${name}" must be a string of at most ${limits.identityCharsMax} characters.`);
}

function readProperties(value: unknown): Readonly<Record<string, PropertyValue>> | null | FieldError {
  if (value === undefined || value === null) return null;
  if (!isRecord(value)) return new FieldError('invalid_properties', '"properties" must be an object.');
  const keys = Object.keys(value);
  if (keys.length > limits.propertiesKeysMax) {
    return new FieldError('invalid_properties', `"properties" has ${keys.length} keys; at most ${limits.propertiesKeysMax} are accepted.`);
  }
  const entries: [string, PropertyValue][] = [];
  for (const key of keys) {
    if (key.length === 0 || key.length > limits.propertyKeyCharsMax) {
      return new FieldError('invalid_properties', `Property names must be 1 to ${limits.propertyKeyCharsMax} characters.`);
    }
    const property = value[key];
    if (property === null) continue; // a null property is absent, like a null field
    if (!isPropertyValue(property)) {
      return new FieldError(
        'invalid_properties',
        `Property ${quoteName(key)} must be a string of at most ${limits.propertyStringCharsMax} characters, a finite number or a boolean.`,
      );
    }
    entries.push([key, property]);
  }
  // fromEntries defines own properties, so a key such as "__proto__" stays plain data.
  return entries.length === 0 ? null : Object.fromEntries(entries);
}

function isPropertyValue(value: unknown): value is PropertyValue {
  if (typeof value === 'string') return value.length <= limits.propertyStringCharsMax;
  if (typeof value === 'number') return Number.isFinite(value);
  return typeof value === 'boolean';
}

const revenueFields: ReadonlySet<string> = new Set(['amount', 'currency']);

function readRevenue(value: unknown): Revenue | null | FieldError {
  if (value === undefined || value === null) return null;
  const shape = 'must be { "amount": integer minor units from 0 to 2^53-1, "currency": ISO 4217 code such as "EUR" }';
  if (!isRecord(value)) return new FieldError('invalid_revenue', `"revenue" ${shape}.`);
  const extra = Object.keys(value).find((key) => !revenueFields.has(key));
  if (extra !== undefined) return new FieldError('invalid_revenue', `"revenue" has an unknown field ${quoteName(extra)}; it ${shape}.`);
  const { amount, currency } = value;
  if (typeof amount !== 'number' || !Number.isSafeInteger(amount) || amount < 0) {
    return new FieldError('invalid_revenue', `"revenue.amount" must be an integer of minor units from 0 to 2^53-1.`);
  }
  if (typeof currency !== 'string' || !currencyPattern.test(currency)) {
    return new FieldError('invalid_revenue', `"revenue.currency" must be an ISO 4217 code of three uppercase letters.`);
  }
  return { amount, currency };
}
