// The built-in `ping` responder, the smallest example of request/reply over the log
// (docs/request-reply.md): a JSON object on `tally.ping.requested` is answered with
// `{ "message": "pong" }` on `tally.ping.succeeded`; anything else gets invalid_format on `.failed`.
import { defineResponder } from '../runtime/request-reply.ts';

/** Pings are rare and need no parallelism: one partition per topic. */
export const pingPartitions = 1;

export const pingResponder = defineResponder<Record<string, unknown>, { message: 'pong' }>({
  prefix: 'tally',
  name: 'ping',
  decode(json) {
    if (typeof json !== 'object' || json === null || Array.isArray(json)) return { ok: false, message: 'a ping is a JSON object, such as {}' };
    return { ok: true, input: json as Record<string, unknown> };
  },
  async handle() {
    return { message: 'pong' };
  },
});
