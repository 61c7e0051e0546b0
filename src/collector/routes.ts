// POST /v1/events: authenticate the write key, parse and validate the body, enrich, and answer
// 202 only after the accepted events are durably in the log. Valid events are kept even when
// others in the batch are rejected; the response lists each rejection by index.
import { randomBytes } from 'node:crypto';
import cors from '@fastify/cors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { TallyError } from '../core/errors.ts';
import { LogUnavailableError } from '../core/ports/event-log.ts';
import { collectItems, createUuidV7Generator, dailySalt, parseEventsBody, utcDayIndex, type CollectLimits } from '../core/collect/index.ts';
import { encodeTrackedEvent } from '../analytics/event-codec.ts';
import { eventsTopic } from '../analytics/processor.ts';
import { KeyResolver } from '../http/auth.ts';
import { RateLimiter } from '../http/rate-limit.ts';
import type { Merchant } from '../core/ports/merchant-store.ts';
import type { Services } from '../app/services.ts';

const bodyMediaTypes = ['application/json', 'text/plain', 'application/x-ndjson', 'application/ndjson'];
/** Browsers may cache the CORS preflight this long. */
const preflightMaxAgeSeconds = 600;

export async function collectorRoutes(app: FastifyInstance, services: Services): Promise<void> {
  const { config, metrics, log } = services;
  const keys = new KeyResolver(services.merchants);
  const limiter = new RateLimiter(config.rateLimitPerSecond, services.now);
  const collectLimits: CollectLimits = {
    requestEventsMax: config.requestEventsMax, eventBytesMax: config.eventBytesMax,
    futureSkewMs: config.futureSkewMs, lateWindowMs: config.lateWindowMs,
  };
  const newId = createUuidV7Generator(services.now, (count) => randomBytes(count));
  const salts = new DailySalt(services.saltSecret);

  await app.register(cors, {
    origin: true, methods: ['POST'], allowedHeaders: ['authorization', 'content-type'], maxAge: preflightMaxAgeSeconds,
  });
  // Bodies arrive as text: NDJSON needs the lines, and each event's own size is checked.
  app.addContentTypeParser(bodyMediaTypes, { parseAs: 'string', bodyLimit: config.bodyBytesMax }, (_request, body, done) => done(null, body));

  app.post('/v1/events', async (request, reply) => {
    const merchant = await keys.resolve(request, 'write');
    checkOrigin(request, merchant);
    limiter.take(`write:${merchant.id}`);
    const contentType = String(request.headers['content-type'] ?? 'application/json');
    const parsed = parseEventsBody(contentType, typeof request.body === 'string' ? request.body : '', collectLimits);
    const nowMs = services.now();
    const collected = collectItems(parsed.items, {
      merchantId: merchant.id, nowMs, salt: salts.forDay(nowMs), geo: services.geo, newId,
      requestIp: request.ip ?? null, requestUserAgent: headerValue(request, 'user-agent'),
    }, collectLimits);
    for (const rejection of collected.rejected) metrics.eventsRejected.inc({ code: rejection.code });
    if (collected.bots > 0) metrics.botsDropped.inc(collected.bots);
    if (collected.events.length === 0 && collected.bots === 0) {
      throw new TallyError('no_valid_events', 'no event in the request was valid', { rejected: collected.rejected });
    }
    if (collected.events.length > 0) {
      try {
        await log.append(eventsTopic, collected.events.map((event) => ({ key: merchant.id, value: encodeTrackedEvent(event) })));
      } catch (error) {
        if (error instanceof LogUnavailableError) throw new TallyError('log_unavailable');
        throw error;
      }
      metrics.eventsAccepted.inc(collected.events.length);
    }
    return reply.code(202).send({ accepted: collected.events.length, rejected: collected.rejected });
  });
}

function headerValue(request: FastifyRequest, name: string): string | null {
  const value = request.headers[name];
  return typeof value === 'string' ? value : null;
}

/** A write key may be limited to the merchant's own sites; requests without Origin are servers. */
function checkOrigin(request: FastifyRequest, merchant: Merchant): void {
  const origin = headerValue(request, 'origin');
  if (origin === null || merchant.allowedOrigins.length === 0) return;
  if (!merchant.allowedOrigins.includes(origin)) throw new TallyError('origin_not_allowed', `origin ${origin} may not use this write key`);
}

/** The visitor-hash salt of the current UTC day, derived once per day. */
class DailySalt {
  readonly #secret: Uint8Array;
  #day = -1;
  #salt: Uint8Array = new Uint8Array();

  constructor(secret: Uint8Array) {
    this.#secret = secret;
  }

  forDay(nowMs: number): Uint8Array {
    const day = utcDayIndex(nowMs);
    if (day !== this.#day) {
      this.#salt = dailySalt(this.#secret, day);
      this.#day = day;
    }
    return this.#salt;
  }
}
