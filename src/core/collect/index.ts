// The collector's pure core: parse a request body, validate each event, enrich and build the
// TrackedEvents. collectItems runs the per-item steps for a whole body; the HTTP route
// (src/collector) authenticates, calls these, appends to the log and answers.
import type { ItemError } from '../errors.ts';
import type { TrackedEvent } from '../event.ts';
import { buildTrackedEvent, type BuildContext } from './build-event.ts';
import type { CollectLimits } from './options.ts';
import type { BodyItem } from './parse-body.ts';
import { isItemError, validateItem } from './validate.ts';

export { buildTrackedEvent, type BuildContext, type BuildOutcome } from './build-event.ts';
export { classifyReferrer, knownSource, type ReferrerInfo } from './enrich/referrer.ts';
export { parsePageUrl, type PageUrlParts } from './enrich/url.ts';
export {
  createUserAgentDescriber, describeUserAgent, isBrowserLike, type DeviceClass, type UserAgentInfo,
} from './enrich/user-agent.ts';
export { dailySalt, dailySaltSource, utcDayIndex, visitorHash, visitorIdOf } from './enrich/visitor.ts';
export { LruCache } from './lru.ts';
export { defaultCollectLimits, type CollectLimits } from './options.ts';
export { parseEventsBody, type BodyItem, type ParsedBody } from './parse-body.ts';
export { parseTimestamp } from './timestamp.ts';
export { createUuidV7Generator, uuidv7, uuidRandomBytes } from './uuid.ts';
export { isItemError, validateEvent, validateItem, type ValidContext, type ValidEvent, type ValidPage } from './validate.ts';

export interface CollectedItems {
  /** Built events, in body order, ready to append to the log. */
  readonly events: TrackedEvent[];
  /** One entry per invalid item, in body order. */
  readonly rejected: ItemError[];
  /** Events dropped as bot traffic: counted, neither stored nor reported as errors. */
  readonly bots: number;
}

export function collectItems(items: readonly BodyItem[], context: BuildContext, options: CollectLimits): CollectedItems {
  const events: TrackedEvent[] = [];
  const rejected: ItemError[] = [];
  let bots = 0;
  items.forEach((item, index) => {
    const valid = validateItem(item, index, context.nowMs, options);
    if (isItemError(valid)) {
      rejected.push(valid);
      return;
    }
    const outcome = buildTrackedEvent(valid, context);
    if (outcome.kind === 'bot') bots += 1;
    else events.push(outcome.event);
  });
  return { events, rejected, bots };
}
