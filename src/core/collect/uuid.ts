// UUIDv7 (RFC 9562 §5.7) for server-assigned event ids: 48-bit Unix ms, version 7, 12-bit
// rand_a, variant 10, 62-bit rand_b. Ids sort by time, so the store's (merchant, id) index stays
// append-friendly. Clock and randomness come in as parameters (core does no I/O).

/** Random bytes one id consumes: 2 for rand_a (12 bits used) and 8 for rand_b (62 bits used). */
export const uuidRandomBytes = 10;
const timestampMsMax = 2 ** 48 - 1;
const counterMax = 0xfff;
/** A new millisecond seeds rand_a below this, leaving half of its range for same-ms increments. */
const counterSeedMax = 0x7ff;

const hexByByte: readonly string[] = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));

/** One UUIDv7 from a timestamp and at least 10 random bytes. */
export function uuidv7(nowMs: number, random: Uint8Array): string {
  assertRandom(random);
  const randA = (((random[0] ?? 0) << 8) | (random[1] ?? 0)) & counterMax;
  return formatUuidV7(nowMs, randA, random.subarray(2, uuidRandomBytes));
}

/** Ids' worth of random bytes fetched at once: one call per id would dominate the cost. */
const randomPoolIds = 64;

/**
 * A generator whose ids strictly increase within this process, even for many ids in one
 * millisecond or a clock that steps back: rand_a is a counter (RFC 9562 §6.2, method 1) and its
 * overflow borrows the next millisecond, as §6.2 allows.
 */
export function createUuidV7Generator(clock: () => number, randomBytes: (count: number) => Uint8Array): () => string {
  let lastMs = -1;
  let counter = 0;
  let pool: Uint8Array = new Uint8Array(0);
  let poolOffset = 0;
  const nextRandom = (): Uint8Array => {
    if (poolOffset + uuidRandomBytes > pool.byteLength) {
      pool = randomBytes(uuidRandomBytes * randomPoolIds);
      assertRandom(pool);
      poolOffset = 0;
    }
    poolOffset += uuidRandomBytes;
    return pool.subarray(poolOffset - uuidRandomBytes, poolOffset);
  };
  return () => {
    const random = nextRandom();
    const nowMs = Math.floor(clock());
    if (nowMs > lastMs) {
      lastMs = nowMs;
      counter = (((random[0] ?? 0) << 8) | (random[1] ?? 0)) & counterSeedMax;
    } else if (counter < counterMax) {
      counter += 1;
    } else {
      lastMs += 1;
      counter = (((random[0] ?? 0) << 8) | (random[1] ?? 0)) & counterSeedMax;
    }
    return formatUuidV7(lastMs, counter, random.subarray(2, uuidRandomBytes));
  };
}

function formatUuidV7(timestampMs: number, randA: number, randB: Uint8Array): string {
  if (!Number.isSafeInteger(timestampMs) || timestampMs < 0 || timestampMs > timestampMsMax) {
    throw new Error(`uuidv7: timestamp must be an integer in [0, 2^48), got ${timestampMs}`);
  }
  const time = timestampMs.toString(16).padStart(12, '0');
  const hex = (index: number): string => hexByByte[randB[index] ?? 0] ?? '00';
  // The variant's two high bits (10) replace the top of rand_b's first byte.
  const variantByte = hexByByte[((randB[0] ?? 0) & 0x3f) | 0x80] ?? '80';
  return (
    `${time.slice(0, 8)}-${time.slice(8, 12)}-7${randA.toString(16).padStart(3, '0')}-` +
    `${variantByte}${hex(1)}-${hex(2)}${hex(3)}${hex(4)}${hex(5)}${hex(6)}${hex(7)}`
  );
}

function assertRandom(random: Uint8Array): void {
  if (random.byteLength < uuidRandomBytes) {
    throw new Error(`uuidv7: needs ${uuidRandomBytes} random bytes, got ${random.byteLength}`);
  }
}
