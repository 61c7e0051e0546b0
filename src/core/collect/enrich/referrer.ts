// Classifies a referrer into the `visit:source` dimension: known search engines, social networks
// and mail clients get one canonical name (m.facebook.com and l.facebook.com are both
// "Facebook"); other sites are their host without "www."; a same-site referrer is internal.
import { limits } from '../../limits.ts';

export interface ReferrerInfo {
  /** Referrer URL without query or fragment; null when absent, unreadable or internal. */
  readonly referrer: string | null;
  /** Canonical source name or referring host; null for a direct or internal visit. */
  readonly source: string | null;
}

const noReferrer: ReferrerInfo = Object.freeze({ referrer: null, source: null });

/** Exact hosts (and their subdomains) with a canonical source name. */
const sourcesByDomain: ReadonlyMap<string, string> = new Map([
  // Search
  ['bing.com', 'Bing'], ['duckduckgo.com', 'DuckDuckGo'], ['baidu.com', 'Baidu'], ['ecosia.org', 'Ecosia'],
  ['search.brave.com', 'Brave Search'], ['qwant.com', 'Qwant'], ['startpage.com', 'Startpage'],
  ['naver.com', 'Naver'], ['seznam.cz', 'Seznam'], ['perplexity.ai', 'Perplexity'],
  ['chatgpt.com', 'ChatGPT'], ['chat.openai.com', 'ChatGPT'],
  ['com.google.android.googlequicksearchbox', 'Google'],
  // Social
  ['facebook.com', 'Facebook'], ['fb.com', 'Facebook'], ['fb.me', 'Facebook'],
  ['instagram.com', 'Instagram'],
  ['t.co', 'Twitter'], ['twitter.com', 'Twitter'], ['x.com', 'Twitter'],
  ['linkedin.com', 'LinkedIn'], ['lnkd.in', 'LinkedIn'], ['com.linkedin.android', 'LinkedIn'],
  ['reddit.com', 'Reddit'], ['youtube.com', 'YouTube'], ['youtu.be', 'YouTube'],
  ['pin.it', 'Pinterest'], ['tiktok.com', 'TikTok'], ['github.com', 'GitHub'],
  ['news.ycombinator.com', 'Hacker News'], ['threads.net', 'Threads'], ['bsky.app', 'Bluesky'], ['vk.com', 'VK'],
  // Mail
  ['mail.google.com', 'Gmail'], ['com.google.android.gm', 'Gmail'],
  ['outlook.live.com', 'Outlook'], ['outlook.office.com', 'Outlook'], ['outlook.office365.com', 'Outlook'],
  ['mail.yahoo.com', 'Yahoo Mail'],
]);

/** Brands with a domain per country (google.de, yahoo.co.jp, yandex.ru): matched by label. */
const sourcesByBrand: ReadonlyMap<string, string> = new Map([
  ['google', 'Google'], ['yahoo', 'Yahoo'], ['yandex', 'Yandex'], ['pinterest', 'Pinterest'], ['bing', 'Bing'],
]);

export function classifyReferrer(referrer: string | null, pageHost: string | null): ReferrerInfo {
  if (referrer === null) return noReferrer;
  let parsed: URL;
  try {
    parsed = new URL(referrer);
  } catch {
    return noReferrer;
  }
  const isWeb = parsed.protocol === 'http:' || parsed.protocol === 'https:';
  // android-app://<package>/ is what Android apps (Gmail, the Google app) send as referrer.
  if ((!isWeb && parsed.protocol !== 'android-app:') || parsed.hostname === '') return noReferrer;
  const host = withoutWww(parsed.hostname.toLowerCase());
  if (pageHost !== null && host === withoutWww(pageHost.toLowerCase())) return noReferrer;
  const base = isWeb ? parsed.origin : `${parsed.protocol}//${parsed.hostname}`;
  const stripped = base + parsed.pathname;
  return {
    referrer: stripped.length > limits.urlCharsMax ? stripped.slice(0, limits.urlCharsMax) : stripped,
    source: knownSource(host) ?? host,
  };
}

/** The canonical name of a host, or null when it is not a known source. */
export function knownSource(host: string): string | null {
  const labels = host.split('.');
  // The host itself, then each parent domain: m.facebook.com → facebook.com.
  for (let start = 0; start < labels.length - 1; start++) {
    const name = sourcesByDomain.get(start === 0 ? host : labels.slice(start).join('.'));
    if (name !== undefined) return name;
  }
  for (let index = 0; index < labels.length - 1; index++) {
    const name = sourcesByBrand.get(labels[index] ?? '');
    if (name !== undefined && isCountrySuffix(labels.slice(index + 1))) return name;
  }
  return null;
}

/** com, de, co.uk, com.br: one or two short labels after the brand. */
function isCountrySuffix(labels: readonly string[]): boolean {
  return labels.length >= 1 && labels.length <= 2 && labels.every((label) => label.length >= 2 && label.length <= 3);
}

function withoutWww(host: string): string {
  return host.startsWith('www.') ? host.slice(4) : host;
}
