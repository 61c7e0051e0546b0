// Visitor identity for the `users` metric without cookies or stored IPs: a keyed hash of
// (merchant, IP, user agent) under a salt that rotates every UTC day, so a visitor is the same
// within a day and unlinkable across days and across merchants (the Plausible/Matomo pattern).
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { time } from '../../limits.ts';

/** Shorter server secrets would make the daily salts guessable, and with them the visitors. */
export const saltSecretBytesMin = 16;
/** Visitor hash size: 128 bits keeps collisions negligible across any realistic day. */
const visitorHashBytes = 16;

export function utcDayIndex(epochMs: number): number {
  return Math.floor(epochMs / time.dayMs);
}

/** The salt for one UTC day: HMAC-SHA-256 of the day number under the server secret. */
export function dailySalt(secret: Uint8Array, dayIndex: number): Uint8Array {
  if (secret.byteLength < saltSecretBytesMin) {
    throw new Error(`dailySalt: the secret must be at least ${saltSecretBytesMin} bytes`);
  }
  if (!Number.isSafeInteger(dayIndex)) throw new Error(`dailySalt: day index must be an integer, got ${dayIndex}`);
  return new Uint8Array(createHmac('sha256', secret).update(`tally-visitor-salt:${dayIndex}`).digest());
}

/**
 * The salt for the UTC day of each moment asked about, derived once per day: the collector asks
 * per request, and the same Uint8Array each day also keeps visitorHash's key cache warm.
 */
export function dailySaltSource(secret: Uint8Array): (epochMs: number) => Uint8Array {
  let day = Number.NaN;
  let salt: Uint8Array = new Uint8Array(0);
  return (epochMs) => {
    const today = utcDayIndex(epochMs);
    if (today !== day) {
      salt = dailySalt(secret, today);
      day = today;
    }
    return salt;
  };
}

/**
 * Salts as HMAC keys, made once per salt: importing raw key bytes on every call costs several
 * times the hash itself. Weak, so yesterday's salt and its key are collected together.
 */
const keysBySalt = new WeakMap<Uint8Array, KeyObject>();

function keyOf(salt: Uint8Array): KeyObject {
  let key = keysBySalt.get(salt);
  if (key === undefined) {
    key = createSecretKey(salt);
    keysBySalt.set(salt, key);
  }
  return key;
}

/** `v:` + base64url of the truncated hash; the inputs are never stored. */
export function visitorHash(salt: Uint8Array, merchantId: string, ip: string | null, userAgent: string | null): string {
  // A JSON array keeps the fields apart: ("ab", "c") and ("a", "bc") hash differently.
  const digest = createHmac('sha256', keyOf(salt)).update(JSON.stringify([merchantId, ip ?? '', userAgent ?? ''])).digest();
  return `v:${digest.subarray(0, visitorHashBytes).toString('base64url')}`;
}

export interface IdentityInput {
  readonly userId: string | null;
  readonly anonymousId: string | null;
  readonly salt: Uint8Array;
  readonly merchantId: string;
  readonly ip: string | null;
  readonly userAgent: string | null;
}

/** `u:` user_id, else `a:` anonymous_id, else the daily visitor hash. */
export function visitorIdOf(input: IdentityInput): string {
  if (input.userId !== null) return `u:${input.userId}`;
  if (input.anonymousId !== null) return `a:${input.anonymousId}`;
  return visitorHash(input.salt, input.merchantId, input.ip, input.userAgent);
}
