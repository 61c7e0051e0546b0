// The one catalogue of Tally's error codes. Each code carries its HTTP status (used only at the
// edge) and whether retrying the same request can succeed. docs/errors.md lists the same codes,
// and test/core/errors.test.ts keeps the two in step.

export interface ErrorSpec {
  readonly status: number;
  readonly canRetry: boolean;
  readonly description: string;
}

export const errorCatalogue = {
  // Request shape and authentication
  invalid_json: { status: 400, canRetry: false, description: 'The body is not valid JSON or NDJSON.' },
  invalid_request: { status: 400, canRetry: false, description: 'The request does not match the endpoint schema.' },
  unsupported_media_type: { status: 415, canRetry: false, description: 'The Content-Type is not one the endpoint accepts.' },
  body_too_large: { status: 413, canRetry: false, description: 'The body exceeds the configured size limit.' },
  too_many_events: { status: 413, canRetry: false, description: 'The request carries more events than the per-request limit.' },
  unauthorized: { status: 401, canRetry: false, description: 'The Authorization header is missing, malformed or names an unknown key.' },
  forbidden: { status: 403, canRetry: false, description: 'The key is valid but may not be used for this endpoint (for example a write key on /v1/query).' },
  origin_not_allowed: { status: 403, canRetry: false, description: "The browser Origin is not in the write key's allowed origins." },
  rate_limited: { status: 429, canRetry: true, description: "The key exceeded its rate limit; retry after the Retry-After header's seconds." },
  not_found: { status: 404, canRetry: false, description: 'No such resource, or it belongs to another merchant.' },

  // Per-event validation (collector; reported per item in `rejected`)
  no_valid_events: { status: 400, canRetry: false, description: 'No event in the request was valid; see `rejected` for each reason.' },
  event_not_object: { status: 400, canRetry: false, description: 'An event must be a JSON object.' },
  event_too_large: { status: 413, canRetry: false, description: 'One event exceeds the per-event size limit.' },
  invalid_event_id: { status: 400, canRetry: false, description: '`id` must be a non-empty string of at most 64 characters.' },
  invalid_event_type: { status: 400, canRetry: false, description: '`type` must be 1–64 characters of [A-Za-z0-9_.:-].' },
  invalid_timestamp: { status: 400, canRetry: false, description: '`timestamp` is neither RFC 3339 nor epoch milliseconds.' },
  timestamp_in_future: { status: 400, canRetry: false, description: '`timestamp` is more than the allowed skew ahead of the server clock.' },
  timestamp_too_old: { status: 400, canRetry: false, description: '`timestamp` is older than the late-event window.' },
  invalid_identity: { status: 400, canRetry: false, description: '`user_id`, `anonymous_id` and `session_id` must be strings of at most 128 characters.' },
  invalid_properties: { status: 400, canRetry: false, description: '`properties` must be an object of at most 50 keys with string (≤ 1024), number or boolean values.' },
  invalid_revenue: { status: 400, canRetry: false, description: '`revenue` must be { amount: integer minor units ≥ 0, currency: ISO 4217 code }.' },
  invalid_context: { status: 400, canRetry: false, description: '`context` has a field of the wrong type or size.' },
  unknown_field: { status: 400, canRetry: false, description: 'The event has a field Tally does not know.' },

  // Query
  unknown_metric: { status: 400, canRetry: false, description: 'A metric in `metrics` or `order_by` is not one Tally knows.' },
  unknown_dimension: { status: 400, canRetry: false, description: 'A dimension in `dimensions`, `filters` or `order_by` is not one Tally knows.' },
  unknown_operator: { status: 400, canRetry: false, description: 'A filter operator is not `is`, `is_not` or `contains`.' },
  invalid_date_range: { status: 400, canRetry: false, description: '`date_range` is malformed, empty, reversed or too long for the granularity.' },
  invalid_timezone: { status: 400, canRetry: false, description: '`timezone` is not an IANA time zone name.' },
  too_many_buckets: { status: 400, canRetry: false, description: 'The time dimension would produce more buckets than allowed; use a coarser granularity.' },
  query_too_large: { status: 400, canRetry: false, description: 'The query needs a raw-event scan beyond the scan bound; narrow the date range or drop a dimension.' },

  // Admin and reprocessing
  invalid_merchant: { status: 400, canRetry: false, description: 'The merchant name or currency is invalid.' },
  reprocess_job_not_found: { status: 404, canRetry: false, description: 'No reprocessing job with that id.' },
  reprocess_range_invalid: { status: 400, canRetry: false, description: 'The reprocessing range is malformed, reversed or too long.' },

  // Payments
  account_exists: { status: 409, canRetry: false, description: 'An account with that id already exists.' },
  account_not_found: { status: 404, canRetry: false, description: 'No account with that id, or it belongs to another merchant.' },
  transfer_not_found: { status: 404, canRetry: false, description: 'No transfer with that id, or it belongs to another merchant.' },
  currency_mismatch: { status: 422, canRetry: false, description: "The transfer's currency is not the currency of both accounts." },
  insufficient_funds: { status: 402, canRetry: false, description: 'The debited account (without overdraft) holds less than the amount.' },
  idempotency_key_required: { status: 400, canRetry: false, description: 'This endpoint needs an Idempotency-Key header (1–255 printable ASCII characters).' },
  idempotency_key_reused: { status: 422, canRetry: false, description: 'The Idempotency-Key was already used with a different request; use a new key for a new request.' },

  // Availability (the server's side; the client may retry)
  log_unavailable: { status: 503, canRetry: true, description: 'The event log did not take the write; nothing was acknowledged. Retry later.' },
  store_unavailable: { status: 503, canRetry: true, description: 'The store did not answer; retry later.' },
  shutting_down: { status: 503, canRetry: true, description: 'The server is draining for shutdown; retry against another instance or later.' },
  internal_error: { status: 500, canRetry: true, description: 'An unexpected failure; the response carries no details, the server log does.' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorCatalogue;

/** An expected failure with a catalogued code: thrown across layers, mapped to HTTP at the edge. */
export class TallyError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly canRetry: boolean;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message?: string, details?: Record<string, unknown>) {
    const spec: ErrorSpec = errorCatalogue[code];
    super(message ?? spec.description);
    this.name = 'TallyError';
    this.code = code;
    this.status = spec.status;
    this.canRetry = spec.canRetry;
    this.details = details;
  }
}

export function isTallyError(value: unknown): value is TallyError {
  return value instanceof TallyError;
}

/** A per-item failure inside a batch (collector `rejected` entries). */
export interface ItemError {
  readonly index: number;
  readonly code: ErrorCode;
  readonly message: string;
}
