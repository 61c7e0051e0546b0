// Validates an event's `context`: the page (url, referrer, title), user agent, locale and IP a
// browser tracker or a server forwarding its visitor sends. Raw values only; enrichment derives
// the stored fields from them and drops the IP and user agent.
import { limits } from '../limits.ts';
import { FieldError, isRecord, unknownField } from './fields.ts';

export interface ValidPage {
  /** An absolute http(s) URL or a path starting with "/". */
  readonly url: string | null;
  readonly referrer: string | null;
  readonly title: string | null;
}

export interface ValidContext {
  readonly page: ValidPage | null;
  readonly userAgent: string | null;
  readonly locale: string | null;
  readonly ip: string | null;
}

const ipCharsMax = limits.ipCharsMax;
const ipPattern = /^[0-9A-Fa-f:.]+$/;

const contextFields: ReadonlySet<string> = new Set(['page', 'user_agent', 'locale', 'ip']);
const pageFields: ReadonlySet<string> = new Set(['url', 'referrer', 'title']);

export const emptyContext: ValidContext = Object.freeze({ page: null, userAgent: null, locale: null, ip: null });

export function readContext(value: unknown): ValidContext | FieldError {
  if (value === undefined || value === null) return emptyContext;
  if (!isRecord(value)) return new FieldError('invalid_context', '"context" must be an object.');
  const unknown = unknownField(value, contextFields, 'context.');
  if (unknown) return unknown;
  const page = readPage(value.page);
  if (page instanceof FieldError) return page;
  const userAgent = readText(value.user_agent, 'context.user_agent', limits.userAgentCharsMax);
  if (userAgent instanceof FieldError) return userAgent;
  const locale = readText(value.locale, 'context.locale', limits.localeCharsMax);
  if (locale instanceof FieldError) return locale;
  const ip = readText(value.ip, 'context.ip', ipCharsMax);
  if (ip instanceof FieldError) return ip;
  if (ip !== null && !ipPattern.test(ip)) {
    return new FieldError('invalid_context', '"context.ip" must be an IPv4 or IPv6 address.');
  }
  return { page, userAgent, locale, ip };
}

function readPage(value: unknown): ValidPage | null | FieldError {
  if (value === undefined || value === null) return null;
  if (!isRecord(value)) return new FieldError('invalid_context', '"context.page" must be an object.');
  const unknown = unknownField(value, pageFields, 'context.page.');
  if (unknown) return unknown;
  const url = readText(value.url, 'context.page.url', limits.urlCharsMax);
  if (url instanceof FieldError) return url;
  if (url !== null && !isPageUrl(url)) {
    return new FieldError('invalid_context', '"context.page.url" must be an absolute http(s) URL or a path starting with "/".');
  }
  const referrer = readText(value.referrer, 'context.page.referrer', limits.urlCharsMax);
  if (referrer instanceof FieldError) return referrer;
  const title = readText(value.title, 'context.page.title', limits.titleCharsMax);
  if (title instanceof FieldError) return title;
  if (url === null && referrer === null && title === null) return null;
  return { url, referrer, title };
}

/** An optional string up to `charsMax`; null and "" are absent (document.referrer is "" when none). */
function readText(value: unknown, name: string, charsMax: number): string | null | FieldError {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value === 'string' && value.length <= charsMax) return value;
  return new FieldError('invalid_context', `"${name}" must be a string of at most ${charsMax} characters.`);
}

function isPageUrl(url: string): boolean {
  // "//host/path" is scheme-relative, not a path.
  if (url.startsWith('/')) return !url.startsWith('//');
  const scheme = url.slice(0, 8).toLowerCase();
  return (scheme.startsWith('http://') || scheme.startsWith('https://')) && URL.canParse(url);
}
