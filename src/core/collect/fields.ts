// Shared pieces of event validation: the field-level failure value and the record checks that
// the event, revenue and context readers all use.
import type { ErrorCode } from '../errors.ts';
import { quoteName } from './quote-name.ts';

/** A field-level failure; validateEvent adds the item index to make it an ItemError. */
export class FieldError {
  readonly code: ErrorCode;
  readonly message: string;
  constructor(code: ErrorCode, message: string) {
    this.code = code;
    this.message = message;
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The first field of `record` not in `known`, as an unknown_field error; `path` prefixes its name. */
export function unknownField(record: Record<string, unknown>, known: ReadonlySet<string>, path: string): FieldError | null {
  for (const key of Object.keys(record)) {
    if (!known.has(key)) return new FieldError('unknown_field', `Unknown field ${quoteName(path + key)}.`);
  }
  return null;
}
