// Synthetic shop traffic for the benchmarks, seeded so every run sends the same shape: one
// merchant, 500 paths (a few pages get most views), 50 referring sites, 100,000 visitors, a dozen
// browsers, some checkouts with revenue. Events are API request events (what a tracker sends).
import { seededRandom, type Random } from '../src/adapters/memory/prng.ts';
import { time } from '../src/core/limits.ts';

export const dataShape = {
  pathsCount: 500,
  sourcesCount: 50,
  visitorsCount: 100_000,
  historyDays: 30,
} as const;

/** Countries need a GeoIP file (TALLY_GEOIP_DB) and none ships with Tally: events carry no IP. */
export const countryNote = 'no GeoIP file on the machine: visit:country is "(none)" for every event';

/** An event as POST /v1/events takes it. */
export interface RequestEvent {
  readonly type: string;
  readonly timestamp?: number;
  readonly anonymous_id: string;
  readonly session_id: string;
  readonly properties?: Readonly<Record<string, string>>;
  readonly revenue?: { readonly amount: number; readonly currency: string };
  readonly context: {
    readonly page: { readonly url: string; readonly referrer?: string };
    readonly user_agent: string;
    readonly locale: string;
  };
}

const knownReferrers = [
  'https://www.google.com/', 'https://www.bing.com/', 'https://duckduckgo.com/', 'https://www.facebook.com/',
  'https://t.co/', 'https://www.reddit.com/r/shops/', 'https://news.ycombinator.com/', 'https://www.linkedin.com/feed/',
];
/** 50 referring sites: the well-known ones, then blogs (each its own source: its host). */
const referrers = Array.from({ length: dataShape.sourcesCount }, (_, index) => knownReferrers[index] ?? `https://blog-${index}.example/post`);

const userAgents = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15',
  'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36',
  'Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36',
  'Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0',
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0',
];
const locales = ['en-US', 'de-DE', 'fr-FR', 'en-GB', 'es-ES', 'ja-JP', 'pt-BR', 'nl-NL'];
const plans = ['basic', 'pro', 'team'];
const payments = ['card', 'paypal', 'invoice'];

/** Share of visits without a referrer (typed URL, bookmark). */
const directShare = 0.3;
/** Share of page URLs tagged with a newsletter campaign. */
const campaignShare = 0.1;

/** Skewed pick in [0, count): index 0 is the most frequent (r³ puts ~13% of picks on it). */
function skewed(random: Random, count: number, power: number): number {
  return Math.min(count - 1, Math.floor(count * random() ** power));
}

function pick<T>(random: Random, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

/**
 * Returns a generator of request events. With a timestamp the event carries it (history);
 * without one the server stamps it (live traffic, as a tracker sends).
 */
export function createEventSource(seed: number): (timestampMs?: number) => RequestEvent {
  const random = seededRandom(seed);
  return (timestampMs) => {
    const visitor = Math.floor(random() * dataShape.visitorsCount);
    const day = timestampMs === undefined ? 0 : Math.floor(timestampMs / time.dayMs);
    const path = `/products/item-${skewed(random, dataShape.pathsCount, 3)}`;
    const query = random() < campaignShare ? `?utm_source=newsletter&utm_medium=email&utm_campaign=week-${day % 5}` : '';
    const page = random() < directShare
      ? { url: `https://shop.example${path}${query}` }
      : { url: `https://shop.example${path}${query}`, referrer: referrers[skewed(random, referrers.length, 2)]! };
    const roll = random();
    const type = roll < 0.86 ? 'pageview' : roll < 0.94 ? 'add_to_cart' : roll < 0.96 ? 'signup' : 'checkout';
    const base = {
      type,
      ...(timestampMs === undefined ? {} : { timestamp: timestampMs }),
      anonymous_id: `visitor-${visitor}`,
      session_id: `visitor-${visitor}-${day}-${visitor % 3}`,
      context: { page, user_agent: userAgents[visitor % userAgents.length]!, locale: locales[visitor % locales.length]! },
    };
    if (type !== 'checkout') return base;
    return {
      ...base,
      properties: { plan: pick(random, plans), payment: pick(random, payments) },
      revenue: { amount: 500 + Math.floor(random() * 19_500), currency: 'USD' },
    };
  };
}

/** `count` bodies of one live event each (no id, no timestamp: the server assigns both). */
export function singleEventBodies(count: number, seed: number): string[] {
  const next = createEventSource(seed);
  return Array.from({ length: count }, () => JSON.stringify(next()));
}

/** `count` bodies of `eventsPerBody` live events each (a JSON array). */
export function batchBodies(count: number, eventsPerBody: number, seed: number): string[] {
  const next = createEventSource(seed);
  return Array.from({ length: count }, () => JSON.stringify(Array.from({ length: eventsPerBody }, () => next())));
}

/** The history window of the datasets: the 30 UTC days a "30d" query covers, up to `nowMs`. */
export function historyWindow(nowMs: number): { fromMs: number; toMs: number } {
  const todayMs = Math.floor(nowMs / time.dayMs) * time.dayMs;
  return { fromMs: todayMs - (dataShape.historyDays - 1) * time.dayMs, toMs: nowMs };
}

/**
 * Event `index` of `total` spread evenly over the window, in time order: the history reads as if
 * it had arrived live over 30 days (which is also what keeps a batch's rollup cells few).
 */
export function historyTimestamp(index: number, total: number, window: { fromMs: number; toMs: number }): number {
  return window.fromMs + Math.floor(((window.toMs - window.fromMs) * index) / total);
}
