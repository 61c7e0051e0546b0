// The collector limits that operators may configure (src/config passes them in); defaults come
// from core/limits.ts so one place still holds every bound.
import { limits } from '../limits.ts';

export interface CollectLimits {
  /** Events in one request; more fails the whole request with too_many_events. */
  readonly requestEventsMax: number;
  /** One event's serialized JSON size in UTF-8 bytes. */
  readonly eventBytesMax: number;
  /** How far ahead of the server clock a client timestamp may be. */
  readonly futureSkewMs: number;
  /** How far behind the server clock a client timestamp may be. */
  readonly lateWindowMs: number;
}

export const defaultCollectLimits: CollectLimits = Object.freeze({
  requestEventsMax: limits.requestEventsMax,
  eventBytesMax: limits.eventBytesMax,
  futureSkewMs: limits.futureSkewMs,
  lateWindowMs: limits.lateWindowMs,
});
