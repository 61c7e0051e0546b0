// Turns a validated request event into the TrackedEvent the log carries: server id, page and
// visit fields derived from URL, referrer, user agent and IP, and the visitor identity. The raw
// IP and user agent are used here and dropped: no TrackedEvent field holds them.
import type { PageContext, TrackedEvent, VisitContext } from '../event.ts';
import type { GeoLookup } from '../ports/geo-lookup.ts';
import { classifyReferrer } from './enrich/referrer.ts';
import { parsePageUrl, type PageUrlParts } from './enrich/url.ts';
import { describeUserAgent, isBrowserLike, unknownAgent, type UserAgentInfo } from './enrich/user-agent.ts';
import { visitorIdOf } from './enrich/visitor.ts';
import type { ValidEvent } from './validate.ts';

export interface BuildContext {
  readonly merchantId: string;
  /** Time of receipt (epoch ms). */
  readonly nowMs: number;
  /** Today's visitor salt (dailySalt of the server secret and the UTC day). */
  readonly salt: Uint8Array;
  readonly geo: GeoLookup;
  /** A server event id for events without one (createUuidV7Generator). */
  readonly newId: () => string;
  /** The request's client IP and User-Agent header; the event's context overrides both. */
  readonly requestIp: string | null;
  readonly requestUserAgent: string | null;
}

/** A bot's event is dropped and counted by the collector: neither stored nor an error. */
export type BuildOutcome = { readonly kind: 'event'; readonly event: TrackedEvent } | { readonly kind: 'bot' };

const botOutcome: BuildOutcome = Object.freeze({ kind: 'bot' });

export function buildTrackedEvent(valid: ValidEvent, context: BuildContext): BuildOutcome {
  const agent = visitorAgent(valid, context);
  if (agent.info.bot && agent.speaksForVisitor) return botOutcome;
  const ip = valid.context.ip ?? context.requestIp;
  const page = valid.context.page;
  const url = page?.url ? parsePageUrl(page.url) : null;
  const referrer = classifyReferrer(page?.referrer ?? null, url?.host ?? null);
  const event: TrackedEvent = {
    merchantId: context.merchantId,
    id: valid.id ?? context.newId(),
    type: valid.type,
    timestampMs: valid.timestampMs,
    receivedMs: context.nowMs,
    userId: valid.userId,
    anonymousId: valid.anonymousId,
    sessionId: valid.sessionId,
    visitorId: visitorIdOf({
      userId: valid.userId,
      anonymousId: valid.anonymousId,
      salt: context.salt,
      merchantId: context.merchantId,
      ip,
      userAgent: agent.userAgent,
    }),
    properties: valid.properties,
    revenue: valid.revenue,
    page: url === null ? null : pageOf(url, referrer.referrer, page?.title ?? null),
    visit: visitOf(url, referrer.source, ip === null ? null : context.geo.country(ip), agent.info),
    locale: valid.context.locale,
  };
  return { kind: 'event', event };
}

interface VisitorAgent {
  readonly userAgent: string | null;
  readonly info: UserAgentInfo;
  /** Whether the agent is the visitor's, so a bot verdict means the event came from a bot. */
  readonly speaksForVisitor: boolean;
}

/**
 * A user agent in the event's context is the visitor's (a browser tracker, or a server
 * forwarding its visitor's). The request's own header is the visitor's only when it is a
 * browser's: a server or app reporting an order through curl, axios or okhttp is not a crawler,
 * and dropping its events as bots would silently lose business events.
 */
function visitorAgent(valid: ValidEvent, context: BuildContext): VisitorAgent {
  const fromEvent = valid.context.userAgent;
  const userAgent = fromEvent ?? context.requestUserAgent;
  if (userAgent === null) return { userAgent, info: unknownAgent, speaksForVisitor: false };
  return { userAgent, info: describeUserAgent(userAgent), speaksForVisitor: fromEvent !== null || isBrowserLike(userAgent) };
}

function pageOf(url: PageUrlParts, referrer: string | null, title: string | null): PageContext {
  return { path: url.path, host: url.host, referrer, title };
}

function visitOf(url: PageUrlParts | null, referrerSource: string | null, country: string | null, agent: UserAgentInfo): VisitContext {
  return {
    // A tagged campaign names its source explicitly; it wins over the referrer's guess.
    source: url?.utmSource ?? referrerSource,
    utmSource: url?.utmSource ?? null,
    utmMedium: url?.utmMedium ?? null,
    utmCampaign: url?.utmCampaign ?? null,
    country,
    browser: agent.browser,
    os: agent.os,
    device: agent.device,
  };
}
