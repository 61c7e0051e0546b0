// Test values for TrackedEvent and StoredEvent: complete, valid defaults that a test overrides
// only where its behaviour depends on a field, so each test says what matters to it.
import { emptyVisit } from '../../src/core/event.ts';
import type { TrackedEvent, VisitContext } from '../../src/core/event.ts';
import type { EventSource, StoredEvent } from '../../src/core/ports/event-store.ts';

/** 2024-01-15T10:00:00Z: a fixed, hour-aligned event time so buckets are predictable. */
export const baseTimeMs = Date.UTC(2024, 0, 15, 10, 0, 0);

export type EventOverrides = Partial<Omit<TrackedEvent, 'visit'>> & { readonly visit?: Partial<VisitContext> };

let sequence = 0;

/** A unique id per call within a test process: tests needing a fixed id pass one. */
export function nextEventId(): string {
  sequence += 1;
  return `evt-${sequence.toString().padStart(8, '0')}`;
}

export function makeEvent(overrides: EventOverrides = {}): TrackedEvent {
  const { visit, ...rest } = overrides;
  return {
    merchantId: 'm_test',
    id: nextEventId(),
    type: 'pageview',
    timestampMs: baseTimeMs,
    receivedMs: baseTimeMs + 250,
    userId: null,
    anonymousId: 'anon-1',
    sessionId: 'session-1',
    visitorId: 'a:anon-1',
    properties: null,
    revenue: null,
    page: { path: '/', host: 'shop.example', referrer: null, title: 'Home' },
    visit: { ...emptyVisit, ...visit },
    locale: 'en-US',
    ...rest,
  };
}

export function makeStored(event: TrackedEvent, source: EventSource = { partition: 0, offset: 0 }): StoredEvent {
  return { event, source: { partition: source.partition, offset: source.offset } };
}

/**
 * `count` events of one merchant spread one second apart from `startMs`, each with its own log
 * offset on partition 0 (starting at `firstOffset`).
 */
export function makeStoredBatch(
  count: number,
  options: { merchantId?: string; startMs?: number; stepMs?: number; firstOffset?: number; partition?: number } = {},
): StoredEvent[] {
  const merchantId = options.merchantId ?? 'm_test';
  const startMs = options.startMs ?? baseTimeMs;
  const stepMs = options.stepMs ?? 1000;
  const firstOffset = options.firstOffset ?? 0;
  const partition = options.partition ?? 0;
  const items: StoredEvent[] = [];
  for (let index = 0; index < count; index += 1) {
    const event = makeEvent({ merchantId, timestampMs: startMs + index * stepMs, receivedMs: startMs + index * stepMs + 100 });
    items.push(makeStored(event, { partition, offset: firstOffset + index }));
  }
  return items;
}
