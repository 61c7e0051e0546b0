// What every EventStore adapter shares: the scan cursor (opaque to callers, the same across
// adapters so a cursor's meaning never depends on the deployment) and the scan request checks.
import { TallyError } from '../errors.ts';
import type { ScanRequest } from './event-store.ts';

/** Where a scan page ended: events sort by (timestampMs, id). */
export interface ScanPosition {
  readonly timestampMs: number;
  readonly id: string;
}

export function encodeScanCursor(position: ScanPosition): string {
  return Buffer.from(JSON.stringify([position.timestampMs, position.id])).toString('base64url');
}

/** A cursor that did not come from encodeScanCursor is the client's mistake: invalid_request. */
export function decodeScanCursor(cursor: string): ScanPosition {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new TallyError('invalid_request', 'malformed scan cursor');
  }
  if (!Array.isArray(parsed) || parsed.length !== 2 || !Number.isSafeInteger(parsed[0]) || typeof parsed[1] !== 'string') {
    throw new TallyError('invalid_request', 'malformed scan cursor');
  }
  return { timestampMs: parsed[0] as number, id: parsed[1] };
}

export function assertScanRequest(request: ScanRequest): void {
  if (!Number.isSafeInteger(request.limit) || request.limit < 1) throw new RangeError(`scan limit must be a positive integer, got ${request.limit}`);
  if (!Number.isSafeInteger(request.fromMs) || !Number.isSafeInteger(request.toMs)) throw new RangeError('scan range must be integer epoch ms');
}
