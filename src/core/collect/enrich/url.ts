// Derives the stored page fields from a page URL: the path (never the query, which may carry
// personal data), the host, and the three UTM campaign parameters.
import { limits } from '../../limits.ts';

export interface PageUrlParts {
  readonly path: string;
  /** Lowercase host name without port; null for a path-only URL. */
  readonly host: string | null;
  readonly utmSource: string | null;
  readonly utmMedium: string | null;
  readonly utmCampaign: string | null;
}

/** A UTM value longer than this is cut: campaign names are short, longer ones are junk. */
export const utmCharsMax = 128;
/** Percent-encoding can grow a path past the URL's own limit; the stored path is cut here. */
const pathCharsMax = limits.urlCharsMax;
/** Base for path-only URLs; its host is never reported. */
const pathOnlyBase = 'http://path-only.invalid';

/** `url` is an absolute http(s) URL or a path starting with "/" (as validation ensures). */
export function parsePageUrl(url: string): PageUrlParts {
  const pathOnly = url.startsWith('/');
  let parsed: URL;
  try {
    parsed = new URL(url, pathOnly ? pathOnlyBase : undefined);
  } catch {
    return { path: cut(url.split(/[?#]/, 1)[0] ?? '/', pathCharsMax), host: null, utmSource: null, utmMedium: null, utmCampaign: null };
  }
  const host = pathOnly || parsed.hostname === '' ? null : parsed.hostname;
  const path = cut(parsed.pathname, pathCharsMax);
  // Most URLs carry no campaign; skip building URLSearchParams for them.
  if (!parsed.search.includes('utm_')) {
    return { path, host, utmSource: null, utmMedium: null, utmCampaign: null };
  }
  const params = parsed.searchParams;
  return {
    path,
    host,
    utmSource: utmValue(params.get('utm_source')),
    utmMedium: utmValue(params.get('utm_medium')),
    utmCampaign: utmValue(params.get('utm_campaign')),
  };
}

/** Kept as given (case matters to some merchants), only trimmed and cut; blank is absent. */
function utmValue(value: string | null): string | null {
  if (value === null) return null;
  const trimmed = value.trim();
  return trimmed === '' ? null : cut(trimmed, utmCharsMax);
}

function cut(text: string, charsMax: number): string {
  return text.length > charsMax ? text.slice(0, charsMax) : text;
}
