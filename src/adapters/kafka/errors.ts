// How failures of the Kafka client become the port's errors. The client reports broker answers as
// ProtocolErrors (with the broker's error id, e.g. ILLEGAL_GENERATION) nested inside aggregate
// errors; anything it raises means "Kafka did not do it", which the port calls LogUnavailableError
// (the collector answers 503). Our own argument errors pass through unchanged.

import { LogFencedError, LogUnavailableError } from '../../core/ports/event-log.ts';

interface ClientErrorShape {
  readonly code?: unknown;
  readonly apiId?: unknown;
  readonly serverErrorMessage?: unknown;
  readonly errors?: unknown;
}

/** Every error in the client's error tree: aggregates hold the attempts and the per-item answers. */
function* errorTree(error: unknown, depth = 0): Generator<ClientErrorShape & Error> {
  if (!(error instanceof Error) || depth > 8) return;
  yield error as ClientErrorShape & Error;
  const nested = (error as ClientErrorShape).errors;
  if (Array.isArray(nested)) for (const inner of nested) yield* errorTree(inner, depth + 1);
  if (error.cause !== undefined) yield* errorTree(error.cause, depth + 1);
}

/** The first broker error id among `ids` found in the error, if any. */
export function brokerErrorId(error: unknown, ids: readonly string[]): string | undefined {
  for (const item of errorTree(error)) {
    if (typeof item.apiId === 'string' && ids.includes(item.apiId)) return item.apiId;
  }
  return undefined;
}

/** The broker's own words when it gave some (they name the cause best), else the client's. */
export function describeFailure(error: unknown): string {
  let last = error instanceof Error ? error.message : String(error);
  for (const item of errorTree(error)) {
    if (typeof item.serverErrorMessage === 'string' && item.serverErrorMessage !== '') return item.serverErrorMessage;
    if (item.message !== '') last = item.message;
  }
  return last;
}

function isClientError(error: unknown): boolean {
  return error instanceof Error && typeof (error as ClientErrorShape).code === 'string' && String((error as ClientErrorShape).code).startsWith('PLT_KFK_');
}

/** Client and broker failures become LogUnavailableError; the port's own errors pass through. */
export function asLogError(error: unknown, what: string): unknown {
  if (error instanceof LogFencedError || error instanceof LogUnavailableError || error instanceof RangeError || error instanceof TypeError) {
    return error;
  }
  if (isClientError(error)) return new LogUnavailableError(`${what}: ${describeFailure(error)}`, { cause: error });
  return error;
}

/**
 * Settles like `promise`, or rejects with LogUnavailableError after `timeoutMs`: the client retries
 * on its own, and a caller must not wait on an unreachable broker for longer than it was promised.
 */
export function withDeadline<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new LogUnavailableError(`${what}: Kafka did not answer within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise.catch((error: unknown) => Promise.reject(asLogError(error, what))), expired]).finally(() => clearTimeout(timer));
}
