// Splits a collector request body into items: a JSON body (one event, an array, or
// { "events": [...] }) or NDJSON (one event per line). Whole-body failures throw TallyError; a bad
// NDJSON line becomes that item's error so the good lines around it are still collected.
import { TallyError } from '../errors.ts';
import type { ItemError } from '../errors.ts';
import type { CollectLimits } from './options.ts';
import { quoteName } from './quote-name.ts';

/** One item of the body: a parsed JSON value with its UTF-8 size, or why it could not be read. */
export type BodyItem =
  | { readonly kind: 'value'; readonly value: unknown; readonly bytes: number }
  | { readonly kind: 'error'; readonly error: ItemError };

export interface ParsedBody {
  readonly items: readonly BodyItem[];
}

type BodyFormat = 'json' | 'ndjson';

/** Parser messages can quote the input; bound what goes back into a response. */
const parseMessageCharsMax = 200;

const formatsByMediaType: ReadonlyMap<string, BodyFormat> = new Map<string, BodyFormat>([
  ['application/json', 'json'],
  // navigator.sendBeacon with a string body sends text/plain; it avoids a CORS preflight.
  ['text/plain', 'json'],
  ['application/x-ndjson', 'ndjson'],
  ['application/ndjson', 'ndjson'],
]);

export function parseEventsBody(contentType: string, raw: string, limits: CollectLimits): ParsedBody {
  const format = formatsByMediaType.get(mediaTypeOf(contentType));
  if (format === undefined) {
    throw new TallyError(
      'unsupported_media_type',
      'Send events as application/json (an event, an array or {"events": [...]}) or application/x-ndjson.',
    );
  }
  const text = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
  return { items: format === 'json' ? jsonItems(text, limits) : ndjsonItems(text, limits) };
}

/** `application/json; charset=utf-8` → `application/json`. */
function mediaTypeOf(contentType: string): string {
  const semicolon = contentType.indexOf(';');
  return (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
}

function jsonItems(text: string, limits: CollectLimits): BodyItem[] {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new TallyError('invalid_json', `The body is not valid JSON: ${parseMessage(error)}`);
  }
  const values = eventValuesOf(body);
  assertEventCount(values.length, limits);
  return values.map((value) => ({ kind: 'value', value, bytes: Buffer.byteLength(JSON.stringify(value)) }));
}

/** The events a JSON body carries; anything that is not an array or wrapper is one event. */
function eventValuesOf(body: unknown): readonly unknown[] {
  if (Array.isArray(body)) return body;
  if (typeof body !== 'object' || body === null || !Object.hasOwn(body, 'events')) return [body];
  const wrapper = body as Record<string, unknown>;
  const extra = Object.keys(wrapper).find((key) => key !== 'events');
  if (extra !== undefined) {
    throw new TallyError('invalid_request', `The body has an unknown field ${quoteName(extra)} next to "events".`);
  }
  if (!Array.isArray(wrapper.events)) throw new TallyError('invalid_request', '"events" must be an array.');
  return wrapper.events;
}

function ndjsonItems(text: string, limits: CollectLimits): BodyItem[] {
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  // Count before parsing, so an oversized request costs no JSON.parse at all.
  assertEventCount(lines.length, limits);
  return lines.map((line, index): BodyItem => {
    try {
      return { kind: 'value', value: JSON.parse(line), bytes: Buffer.byteLength(line) };
    } catch (error) {
      const message = `Line ${index + 1} of the NDJSON body is not valid JSON: ${parseMessage(error)}`;
      return { kind: 'error', error: { index, code: 'invalid_json', message } };
    }
  });
}

function assertEventCount(count: number, limits: CollectLimits): void {
  if (count > limits.requestEventsMax) {
    throw new TallyError(
      'too_many_events',
      `The request carries ${count} events; at most ${limits.requestEventsMax} are accepted per request.`,
      { count, max: limits.requestEventsMax },
    );
  }
}

function parseMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.length > parseMessageCharsMax ? `${message.slice(0, parseMessageCharsMax)}…` : message;
}
