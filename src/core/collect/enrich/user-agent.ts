// Describes a user agent: bot or not (isbot), browser, OS and device class (bowser). Parsing
// runs dozens of patterns, so results are memoized per user agent string in a bounded LRU: real
// traffic repeats a few thousand strings, and the bound caps memory under a flood of new ones.
import Bowser, { type ParsedResult } from 'bowser';
import { isbot } from 'isbot';
import { limits } from '../../limits.ts';
import { LruCache } from '../lru.ts';

export type DeviceClass = 'desktop' | 'mobile' | 'tablet';

export interface UserAgentInfo {
  readonly bot: boolean;
  readonly browser: string | null;
  readonly os: string | null;
  readonly device: DeviceClass | null;
}

/** Distinct user agents remembered; at ≤ 512 characters each, about 10 MB at most. */
export const userAgentCacheEntriesMax = 10_000;

export const unknownAgent: UserAgentInfo = Object.freeze({ bot: false, browser: null, os: null, device: null });

/** bowser's names where a shorter, more familiar one exists. */
const browserNames: ReadonlyMap<string, string> = new Map([
  ['Microsoft Edge', 'Edge'],
  ['Samsung Internet for Android', 'Samsung Internet'],
]);
const osNames: ReadonlyMap<string, string> = new Map([['Chrome OS', 'ChromeOS']]);
/** Operating systems that only run on desktops and laptops, for when bowser names no platform. */
const desktopSystems: ReadonlySet<string> = new Set(['Windows', 'macOS', 'Linux', 'ChromeOS']);

export type UserAgentDescriber = (userAgent: string) => UserAgentInfo;

export function createUserAgentDescriber(entriesMax: number = userAgentCacheEntriesMax): UserAgentDescriber {
  const cache = new LruCache<string, UserAgentInfo>(entriesMax);
  return (userAgent) => {
    const key = userAgent.length > limits.userAgentCharsMax ? userAgent.slice(0, limits.userAgentCharsMax) : userAgent;
    let info = cache.get(key);
    if (info === undefined) {
      info = parseUserAgent(key);
      cache.set(key, info);
    }
    return info;
  };
}

/** The process-wide describer; memoizing a pure function is safe to share. */
export const describeUserAgent: UserAgentDescriber = createUserAgentDescriber();

/**
 * Whether a user agent is a web browser's (every current browser and most crawlers that run
 * JavaScript send "Mozilla/5.0 …"), as opposed to an HTTP library in a server or app.
 */
export function isBrowserLike(userAgent: string): boolean {
  return userAgent.startsWith('Mozilla/') || userAgent.startsWith('Opera/');
}

function parseUserAgent(userAgent: string): UserAgentInfo {
  if (userAgent.trim() === '') return unknownAgent;
  const bot = isbot(userAgent);
  let parsed: ParsedResult;
  try {
    parsed = Bowser.parse(userAgent);
  } catch {
    // A parser failure on a hostile string must not fail the event: the agent is just unknown.
    return bot ? Object.freeze({ ...unknownAgent, bot }) : unknownAgent;
  }
  const browser = nameOrNull(parsed.browser.name, browserNames);
  const os = nameOrNull(parsed.os.name, osNames);
  return Object.freeze({
    bot: bot || parsed.platform.type === 'bot',
    browser,
    os,
    device: deviceOf(parsed.platform.type, os),
  });
}

function nameOrNull(name: string | undefined, renames: ReadonlyMap<string, string>): string | null {
  if (name === undefined || name === '') return null;
  return renames.get(name) ?? name;
}

function deviceOf(platform: string | undefined, os: string | null): DeviceClass | null {
  if (platform === 'desktop' || platform === 'mobile' || platform === 'tablet') return platform;
  if (platform === undefined && os !== null && desktopSystems.has(os)) return 'desktop';
  return null;
}
