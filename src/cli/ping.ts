// `tally ping`: sends a ping over the log and waits for the pong, checking end to end that the log
// and a running processor role answer. The worked example of docs/request-reply.md.
import { randomUUID } from 'node:crypto';
import type { Config } from '../config/config.ts';
import { pingPartitions, pingResponder } from '../ping/responder.ts';
import { ensureRequestReplyTopics, requestOnce } from '../runtime/request-reply.ts';
import { openDeployment } from './compose.ts';

/** A processor answers within a poll or two; ten seconds covers one starting up. */
const pingTimeoutMs = 10_000;

export async function pingCommand(config: Config): Promise<number> {
  const deployment = await openDeployment({ ...config, logLevel: 'warn' });
  try {
    const { log } = deployment.services;
    await ensureRequestReplyTopics(log, pingResponder.topics, pingPartitions);
    const startedMs = performance.now();
    const command = { key: `ping-${randomUUID()}`, value: JSON.stringify({ sent_at: new Date().toISOString() }) };
    const reply = await requestOnce(log, pingResponder.topics, command, { group: 'tally.ping.requester', timeoutMs: pingTimeoutMs });
    const elapsedMs = Math.round(performance.now() - startedMs);
    if (!reply) {
      process.stderr.write(`tally: no answer on ${pingResponder.topics.succeeded} within ${pingTimeoutMs / 1000} s: is a processor (tally start or tally processor) running?\n`);
      return 1;
    }
    if (reply.outcome === 'failed') {
      process.stderr.write(`tally: ping failed: ${reply.error.code}: ${reply.error.message}\n`);
      return 1;
    }
    process.stdout.write(`${JSON.stringify(reply.result)} in ${elapsedMs} ms (${pingResponder.topics.requested} → ${pingResponder.topics.succeeded})\n`);
    return 0;
  } finally {
    await deployment.close();
  }
}
