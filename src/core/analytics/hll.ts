// HyperLogLog sketches behind the `users` and `sessions` metrics: precision 14, MurmurHash3
// x86_128 over UTF-8, Ertl's improved estimator, and a compact sparse/dense byte format.
// An identity is hashed once into a packed point, then added to every rollup cell it touches.

/** Register index bits: 2^14 registers give a standard error of 1.04 / sqrt(16384) ≈ 0.81%. */
export const hllPrecision = 14;

const registersCount = 1 << hllPrecision;
/** Bits left after the index in the 64-bit hash; their leading zeros make the rank. */
const rankBitsTotal = 64 - hllPrecision;
/** Highest rank: every one of the 50 remaining bits is zero. */
const rankMax = rankBitsTotal + 1;
/** A point is `(index << 6) | rank`: 6 bits hold ranks up to 63, more than rankMax needs. */
const pointRankBits = 6;
const pointRankMask = (1 << pointRankBits) - 1;
/** Points are below 2^20, so they stay small integers (Smis) in V8. */
const pointLimit = registersCount << pointRankBits;

/** Serialized forms: [format tag, precision, body]. The tag versions the hash and the layout. */
const formatSparse = 1;
const formatDense = 2;
const headerBytes = 2;
/** Dense body: each register in 6 bits, four registers in three bytes. */
const denseBodyBytes = (registersCount * pointRankBits) / 8;
const denseBytes = headerBytes + denseBodyBytes;
/** A sparse pair is one varint of (index delta << 6 | rank): at most 21 bits, so 3 bytes. */
const varintBytesMax = 3;

/**
 * In memory a sparse sketch is an open-addressing table of points (0 = free slot), kept at most
 * half full. Past this many registers it becomes a 16 KiB register array: the table would then be
 * 8 KiB and growing, and merging into an array costs O(pairs) anyway.
 */
const sparseEntriesInMemoryMax = registersCount / 16;
/** 16 slots are 64 bytes, the most V8 allocates on its heap (larger typed arrays cost more). */
const sparseSlotsInitial = 16;
/** Spreads register indexes over table slots (Fibonacci hashing; the top bits mix best). */
const slotMultiplier = 0x9e3779b1;

/** UTF-8 of identities (≤ 128 UTF-16 units) fits a reused buffer; longer values get their own. */
const scratchUnitsMax = 4096;
/** One UTF-16 unit needs at most 3 UTF-8 bytes (a surrogate pair: 4 bytes for 2 units). */
const utf8BytesPerUnitMax = 3;
const scratch = new Uint8Array(scratchUnitsMax * utf8BytesPerUnitMax);

/** The hash seed is part of the storage format: changing it needs a new format tag. */
const hashSeed = 0;

const assertions: ReadonlyArray<readonly [boolean, string]> = [
  [rankMax <= pointRankMask, 'rankMax must fit the point rank bits'],
  [Number.isInteger(denseBodyBytes), 'the dense body must be whole bytes'],
  [((registersCount - 1) << pointRankBits | pointRankMask) < 1 << (7 * varintBytesMax), 'a pair must fit varintBytesMax'],
];
for (const [holds, message] of assertions) {
  if (!holds) throw new Error(`hll: ${message}`);
}

/** Malformed, truncated or foreign sketch bytes: stored data is corrupt or from another build. */
export class HllFormatError extends Error {
  constructor(message: string) {
    super(`hll: ${message}`);
    this.name = 'HllFormatError';
  }
}

// ---------------------------------------------------------------------------------------------
// Hashing: MurmurHash3 x86_128 (Appleby), the first 64 of its 128 output bits.

let hashHigh = 0;
let hashLow = 0;

function rotateLeft(value: number, bits: number): number {
  return (value << bits) | (value >>> (32 - bits));
}

function finalMix(value: number): number {
  let h = value ^ (value >>> 16);
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

function readWord(bytes: Uint8Array, at: number): number {
  return bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24);
}

/** Reads the tail (the last length % 16 bytes) as one little-endian word per 4-byte lane. */
function readPartialWord(bytes: Uint8Array, from: number, end: number): number {
  let word = 0;
  for (let at = Math.min(end, from + 4) - 1; at >= from; at--) word = (word << 8) | bytes[at]!;
  return word;
}

/** Hashes bytes[0, length) and leaves the first 64 bits in hashHigh and hashLow. */
function hash128(bytes: Uint8Array, length: number): void {
  const c1 = 0x239b961b;
  const c2 = 0xab0e9789;
  const c3 = 0x38b34ae5;
  const c4 = 0xa1e38b93;
  let h1 = hashSeed;
  let h2 = hashSeed;
  let h3 = hashSeed;
  let h4 = hashSeed;
  const blocksEnd = length - (length & 15);
  for (let at = 0; at < blocksEnd; at += 16) {
    h1 ^= Math.imul(rotateLeft(Math.imul(readWord(bytes, at), c1), 15), c2);
    h1 = (Math.imul(rotateLeft(h1, 19) + h2, 5) + 0x561ccd1b) | 0;
    h2 ^= Math.imul(rotateLeft(Math.imul(readWord(bytes, at + 4), c2), 16), c3);
    h2 = (Math.imul(rotateLeft(h2, 17) + h3, 5) + 0x0bcaa747) | 0;
    h3 ^= Math.imul(rotateLeft(Math.imul(readWord(bytes, at + 8), c3), 17), c4);
    h3 = (Math.imul(rotateLeft(h3, 15) + h4, 5) + 0x96cd1c35) | 0;
    h4 ^= Math.imul(rotateLeft(Math.imul(readWord(bytes, at + 12), c4), 18), c1);
    h4 = (Math.imul(rotateLeft(h4, 13) + h1, 5) + 0x32ac3b17) | 0;
  }
  const tail = length - blocksEnd;
  if (tail > 12) h4 ^= Math.imul(rotateLeft(Math.imul(readPartialWord(bytes, blocksEnd + 12, length), c4), 18), c1);
  if (tail > 8) h3 ^= Math.imul(rotateLeft(Math.imul(readPartialWord(bytes, blocksEnd + 8, length), c3), 17), c4);
  if (tail > 4) h2 ^= Math.imul(rotateLeft(Math.imul(readPartialWord(bytes, blocksEnd + 4, length), c2), 16), c3);
  if (tail > 0) h1 ^= Math.imul(rotateLeft(Math.imul(readPartialWord(bytes, blocksEnd, length), c1), 15), c2);
  h1 ^= length;
  h2 ^= length;
  h3 ^= length;
  h4 ^= length;
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  h1 = finalMix(h1);
  h2 = finalMix(h2);
  h3 = finalMix(h3);
  h4 = finalMix(h4);
  h1 = (h1 + h2 + h3 + h4) | 0;
  hashHigh = h1;
  hashLow = (h2 + h1) | 0;
}

/** Index = top 14 bits; rank = leading zeros of the other 50 bits + 1 (51 when all are zero). */
function pointFromHash(): number {
  const index = hashHigh >>> (32 - hllPrecision);
  const highRest = hashHigh & ((1 << (32 - hllPrecision)) - 1);
  let rank: number;
  if (highRest !== 0) rank = Math.clz32(highRest) - hllPrecision + 1;
  else if (hashLow !== 0) rank = 32 - hllPrecision + Math.clz32(hashLow) + 1;
  else rank = rankMax;
  return (index << pointRankBits) | rank;
}

/** Writes value as UTF-8 into target; lone surrogates become U+FFFD, as TextEncoder does. */
function encodeUtf8(value: string, target: Uint8Array): number {
  let length = 0;
  for (let at = 0; at < value.length; at++) {
    let code = value.charCodeAt(at);
    if (code < 0x80) {
      target[length++] = code;
      continue;
    }
    if (code < 0x800) {
      target[length++] = 0xc0 | (code >>> 6);
      target[length++] = 0x80 | (code & 0x3f);
      continue;
    }
    if (code >= 0xd800 && code <= 0xdfff) {
      const next = at + 1 < value.length ? value.charCodeAt(at + 1) : 0;
      if (code <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        code = 0x10000 + ((code - 0xd800) << 10) + (next - 0xdc00);
        at++;
        target[length++] = 0xf0 | (code >>> 18);
        target[length++] = 0x80 | ((code >>> 12) & 0x3f);
        target[length++] = 0x80 | ((code >>> 6) & 0x3f);
        target[length++] = 0x80 | (code & 0x3f);
        continue;
      }
      code = 0xfffd;
    }
    target[length++] = 0xe0 | (code >>> 12);
    target[length++] = 0x80 | ((code >>> 6) & 0x3f);
    target[length++] = 0x80 | (code & 0x3f);
  }
  return length;
}

/** The packed point `(index << 6) | rank` of a string's UTF-8 bytes: hash once, add anywhere. */
export function hllPoint(value: string): number {
  const target = value.length <= scratchUnitsMax ? scratch : new Uint8Array(value.length * utf8BytesPerUnitMax);
  hash128(target, encodeUtf8(value, target));
  return pointFromHash();
}

/** The packed point of raw bytes; equals hllPoint(s) when bytes are the UTF-8 of s. */
export function hllPointOfBytes(bytes: Uint8Array): number {
  hash128(bytes, bytes.length);
  return pointFromHash();
}

// ---------------------------------------------------------------------------------------------
// Estimation: Ertl, "New cardinality estimation algorithms for HyperLogLog sketches" (2017),
// improved raw estimator. It needs only the histogram of register values and no bias tables, and
// is accurate from 0 to far past 2^32, so there is no switch-over point between two estimators.

/** α∞ = 1 / (2 ln 2), the limit of the HyperLogLog bias constant for many registers. */
const alphaInfinity = 1 / (2 * Math.LN2);

/** σ(x) = x + Σ_{k≥1} x^(2^k) 2^(k-1): stands in for the registers still at zero. */
function sigma(fraction: number): number {
  if (fraction === 1) return Number.POSITIVE_INFINITY;
  let x = fraction;
  let weight = 1;
  let sum = x;
  let previous: number;
  do {
    x *= x;
    previous = sum;
    sum += x * weight;
    weight += weight;
  } while (sum !== previous);
  return sum;
}

/** τ(x) = (1 - x - Σ_{k≥1} (1 - x^(2^-k))^2 2^-k) / 3: stands in for the saturated registers. */
function tau(fraction: number): number {
  if (fraction === 0 || fraction === 1) return 0;
  let x = fraction;
  let weight = 1;
  let sum = 1 - x;
  let previous: number;
  do {
    x = Math.sqrt(x);
    previous = sum;
    weight *= 0.5;
    sum -= (1 - x) * (1 - x) * weight;
  } while (sum !== previous);
  return sum / 3;
}

/** histogram[r] = number of registers holding r, for r in [0, rankMax]. */
function estimateFromHistogram(histogram: Int32Array): number {
  if (histogram[0] === registersCount) return 0;
  let denominator = registersCount * tau(1 - histogram[rankMax]! / registersCount);
  for (let rank = rankMax - 1; rank >= 1; rank--) denominator = 0.5 * (denominator + histogram[rank]!);
  denominator += registersCount * sigma(histogram[0]! / registersCount);
  const estimate = (alphaInfinity * registersCount * registersCount) / denominator;
  // Only a hand-made sketch with every register saturated reaches a zero denominator.
  return Number.isFinite(estimate) ? Math.min(Math.round(estimate), Number.MAX_SAFE_INTEGER) : Number.MAX_SAFE_INTEGER;
}

// ---------------------------------------------------------------------------------------------
// Byte format.
//   sparse: [1, 14, varint(pair count), varint((index - previous index) << 6 | rank)...]
//           indexes strictly increasing, the first delta taken from 0; LEB128 varints.
//   dense:  [2, 14, 12,288 bytes]: register i in bits 6i..6i+5 of the body, little-endian.
// toBytes picks sparse exactly when it is no larger than dense, so equal registers give equal bytes.

/**
 * Decoding and encoding work in these module-level buffers instead of allocating: typed arrays
 * over 64 bytes live off the V8 heap and cost more to make than a small sketch costs to decode.
 * Safe because both are synchronous and each caller is done with them before the next call.
 */
const decodedIndexes = new Uint16Array(registersCount);
const decodedRanks = new Uint8Array(registersCount);
const decodedRegisters = new Uint8Array(registersCount);
const histogramScratch = new Int32Array(rankMax + 1);
/** mergeHllBytes keeps the first sketch's pairs here while the second decodes, and joins into merged*. */
const leftIndexes = new Uint16Array(registersCount);
const leftRanks = new Uint8Array(registersCount);
const mergedIndexes = new Uint16Array(registersCount);
const mergedRanks = new Uint8Array(registersCount);
/** toBytes sorts a sparse table's points here, then splits them into decodedIndexes/decodedRanks. */
const pointsScratch = new Uint32Array(sparseEntriesInMemoryMax + 1);

/** What decode filled: pairsCount entries of decodedIndexes/decodedRanks, or decodedRegisters. */
type Decoded = { readonly format: 'sparse'; readonly pairsCount: number } | { readonly format: 'dense' };

function varintLength(value: number): number {
  return value < 0x80 ? 1 : value < 0x4000 ? 2 : 3;
}

function writeVarint(target: Uint8Array, at: number, value: number): number {
  let rest = value;
  let position = at;
  while (rest >= 0x80) {
    target[position++] = (rest & 0x7f) | 0x80;
    rest >>>= 7;
  }
  target[position++] = rest;
  return position;
}

/** Reads minimal LEB128 varints of at most varintBytesMax bytes, front to back. */
class VarintReader {
  readonly #bytes: Uint8Array;
  at: number;

  constructor(bytes: Uint8Array, at: number) {
    this.#bytes = bytes;
    this.at = at;
  }

  /** `pair` numbers the pair in error messages; -1 for the pair count. */
  read(pair: number): number {
    const start = this.at;
    let value = 0;
    for (let used = 0; used < varintBytesMax; used++) {
      const position = start + used;
      if (position >= this.#bytes.length) throw new HllFormatError(`truncated: ${describeVarint(pair)} ends at byte ${position}`);
      const byte = this.#bytes[position]!;
      value |= (byte & 0x7f) << (7 * used);
      if ((byte & 0x80) === 0) {
        if (byte === 0 && used > 0) throw new HllFormatError(`${describeVarint(pair)} at byte ${start} is not a minimal varint`);
        this.at = position + 1;
        return value;
      }
    }
    throw new HllFormatError(`${describeVarint(pair)} at byte ${start} is longer than ${varintBytesMax} bytes`);
  }
}

function describeVarint(pair: number): string {
  return pair < 0 ? 'pair count' : `pair ${pair}`;
}

function decodeSparse(bytes: Uint8Array): Decoded {
  const reader = new VarintReader(bytes, headerBytes);
  const count = reader.read(-1);
  if (count > registersCount) throw new HllFormatError(`pair count ${count} exceeds ${registersCount} registers`);
  let index = 0;
  for (let pair = 0; pair < count; pair++) {
    const value = reader.read(pair);
    const delta = value >>> pointRankBits;
    const rank = value & pointRankMask;
    if (pair > 0 && delta === 0) throw new HllFormatError(`pair ${pair} repeats register ${index}`);
    index += delta;
    if (index >= registersCount) throw new HllFormatError(`pair ${pair} names register ${index} of ${registersCount}`);
    if (rank === 0 || rank > rankMax) throw new HllFormatError(`pair ${pair} has rank ${rank}, not 1..${rankMax}`);
    decodedIndexes[pair] = index;
    decodedRanks[pair] = rank;
  }
  if (reader.at !== bytes.length) {
    throw new HllFormatError(`${bytes.length - reader.at} bytes after the last of ${count} pairs`);
  }
  return { format: 'sparse', pairsCount: count };
}

function decodeDense(bytes: Uint8Array): Decoded {
  if (bytes.length !== denseBytes) {
    throw new HllFormatError(`dense sketch is ${bytes.length} bytes, expected ${denseBytes}`);
  }
  const registers = decodedRegisters;
  for (let group = 0, at = headerBytes; group < registersCount; group += 4, at += 3) {
    const word = bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16);
    registers[group] = word & 0x3f;
    registers[group + 1] = (word >>> 6) & 0x3f;
    registers[group + 2] = (word >>> 12) & 0x3f;
    registers[group + 3] = word >>> 18;
  }
  for (let index = 0; index < registersCount; index++) {
    if (registers[index]! > rankMax) throw new HllFormatError(`register ${index} holds ${registers[index]}, above ${rankMax}`);
  }
  return { format: 'dense' };
}

function decode(bytes: Uint8Array): Decoded {
  if (!(bytes instanceof Uint8Array)) throw new HllFormatError('expected a Uint8Array');
  if (bytes.length < headerBytes) throw new HllFormatError(`truncated: ${bytes.length} bytes, the header needs ${headerBytes}`);
  if (bytes[1] !== hllPrecision) throw new HllFormatError(`precision ${bytes[1]} is not the supported ${hllPrecision}`);
  if (bytes[0] === formatSparse) return decodeSparse(bytes);
  if (bytes[0] === formatDense) return decodeDense(bytes);
  throw new HllFormatError(`unknown format tag ${bytes[0]}`);
}

function encodeSparse(indexes: Uint16Array, ranks: Uint8Array, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  bytes[0] = formatSparse;
  bytes[1] = hllPrecision;
  let at = writeVarint(bytes, headerBytes, indexes.length);
  let previous = 0;
  for (let pair = 0; pair < indexes.length; pair++) {
    at = writeVarint(bytes, at, ((indexes[pair]! - previous) << pointRankBits) | ranks[pair]!);
    previous = indexes[pair]!;
  }
  return bytes;
}

function sparseLength(indexes: Uint16Array, ranks: Uint8Array): number {
  let length = headerBytes + varintLength(indexes.length);
  let previous = 0;
  for (let pair = 0; pair < indexes.length; pair++) {
    length += varintLength(((indexes[pair]! - previous) << pointRankBits) | ranks[pair]!);
    previous = indexes[pair]!;
  }
  return length;
}

function encodeDense(registers: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(denseBytes);
  bytes[0] = formatDense;
  bytes[1] = hllPrecision;
  for (let group = 0, at = headerBytes; group < registersCount; group += 4, at += 3) {
    const word =
      registers[group]! | (registers[group + 1]! << 6) | (registers[group + 2]! << 12) | (registers[group + 3]! << 18);
    bytes[at] = word & 0xff;
    bytes[at + 1] = (word >>> 8) & 0xff;
    bytes[at + 2] = word >>> 16;
  }
  return bytes;
}

/** The canonical bytes of ascending (index, rank) pairs: sparse unless dense is smaller. */
function encodePairs(indexes: Uint16Array, ranks: Uint8Array): Uint8Array {
  const length = sparseLength(indexes, ranks);
  if (length <= denseBytes) return encodeSparse(indexes, ranks, length);
  const registers = new Uint8Array(registersCount);
  for (let pair = 0; pair < indexes.length; pair++) registers[indexes[pair]!] = ranks[pair]!;
  return encodeDense(registers);
}

/** The canonical bytes of a full register array, by the same rule as encodePairs. */
function encodeRegisters(registers: Uint8Array): Uint8Array {
  let length = headerBytes;
  let pairsCount = 0;
  let previous = 0;
  for (let index = 0; index < registersCount; index++) {
    if (registers[index] === 0) continue;
    length += varintLength(((index - previous) << pointRankBits) | registers[index]!);
    previous = index;
    pairsCount++;
  }
  length += varintLength(pairsCount);
  if (length > denseBytes) return encodeDense(registers);
  const indexes = decodedIndexes.subarray(0, pairsCount);
  const ranks = decodedRanks.subarray(0, pairsCount);
  for (let index = 0, pair = 0; index < registersCount; index++) {
    if (registers[index] === 0) continue;
    indexes[pair] = index;
    ranks[pair++] = registers[index]!;
  }
  return encodeSparse(indexes, ranks, length);
}

function estimateRegisters(registers: Uint8Array): number {
  const histogram = histogramScratch.fill(0);
  for (let index = 0; index < registersCount; index++) histogram[registers[index]!]!++;
  return estimateFromHistogram(histogram);
}

// ---------------------------------------------------------------------------------------------
// The sketch.

export class Hll {
  /** Sparse form: points in an open-addressing table; null once the sketch is dense. */
  #table: Uint32Array | null = new Uint32Array(sparseSlotsInitial);
  #entries = 0;
  /** Dense form: one byte per register; null while sparse. */
  #dense: Uint8Array | null = null;

  private constructor() {}

  static empty(): Hll {
    return new Hll();
  }

  /** Parses bytes from toBytes; throws HllFormatError on anything else. */
  static fromBytes(bytes: Uint8Array): Hll {
    const sketch = new Hll();
    sketch.mergeBytes(bytes);
    return sketch;
  }

  /** Adds a point from hllPoint; a few array operations, no hashing. */
  addPoint(point: number): void {
    const rank = point & pointRankMask;
    if ((point | 0) !== point || point < 0 || point >= pointLimit || rank === 0 || rank > rankMax) {
      throw new RangeError(`hll: ${point} is not a point from hllPoint`);
    }
    this.#raise(point >>> pointRankBits, rank);
  }

  add(value: string): void {
    this.addPoint(hllPoint(value));
  }

  /** Union: each register becomes the larger of the two. `other` is left unchanged. */
  merge(other: Hll): void {
    if (other === this) return;
    const otherTable = other.#table;
    if (otherTable !== null) {
      this.#reserve(other.#entries);
      for (let slot = 0; slot < otherTable.length; slot++) {
        const point = otherTable[slot]!;
        if (point !== 0) this.#raise(point >>> pointRankBits, point & pointRankMask);
      }
      return;
    }
    const otherDense = other.#dense!;
    const dense = this.#densify();
    for (let index = 0; index < registersCount; index++) {
      if (otherDense[index]! > dense[index]!) dense[index] = otherDense[index]!;
    }
  }

  /** merge(Hll.fromBytes(bytes)) without the intermediate sketch; throws HllFormatError. */
  mergeBytes(bytes: Uint8Array): void {
    // Decoding validates everything before the first register changes: bad bytes change nothing.
    const decoded = decode(bytes);
    if (decoded.format === 'sparse') {
      this.#reserve(decoded.pairsCount);
      for (let pair = 0; pair < decoded.pairsCount; pair++) this.#raise(decodedIndexes[pair]!, decodedRanks[pair]!);
      return;
    }
    if (this.#table !== null && this.#entries === 0) {
      this.#table = null;
      this.#dense = decodedRegisters.slice();
      return;
    }
    const dense = this.#densify();
    for (let index = 0; index < registersCount; index++) {
      if (decodedRegisters[index]! > dense[index]!) dense[index] = decodedRegisters[index]!;
    }
  }

  estimate(): number {
    const table = this.#table;
    if (table === null) return estimateRegisters(this.#dense!);
    const histogram = histogramScratch.fill(0);
    histogram[0] = registersCount - this.#entries;
    for (let slot = 0; slot < table.length; slot++) {
      if (table[slot] !== 0) histogram[table[slot]! & pointRankMask]!++;
    }
    return estimateFromHistogram(histogram);
  }

  toBytes(): Uint8Array {
    const table = this.#table;
    if (table === null) return encodeRegisters(this.#dense!);
    // A point sorts by its index, since the index is its high bits.
    const points = pointsScratch.subarray(0, this.#entries);
    for (let slot = 0, pair = 0; slot < table.length; slot++) if (table[slot] !== 0) points[pair++] = table[slot]!;
    points.sort();
    const indexes = decodedIndexes.subarray(0, points.length);
    const ranks = decodedRanks.subarray(0, points.length);
    for (let pair = 0; pair < points.length; pair++) {
      indexes[pair] = points[pair]! >>> pointRankBits;
      ranks[pair] = points[pair]! & pointRankMask;
    }
    return encodePairs(indexes, ranks);
  }

  isEmpty(): boolean {
    if (this.#table !== null) return this.#entries === 0;
    const dense = this.#dense!;
    for (let index = 0; index < registersCount; index++) if (dense[index] !== 0) return false;
    return true;
  }

  #raise(index: number, rank: number): void {
    const table = this.#table;
    if (table === null) {
      const dense = this.#dense!;
      if (rank > dense[index]!) dense[index] = rank;
      return;
    }
    const mask = table.length - 1;
    let slot = (Math.imul(index, slotMultiplier) >>> 16) & mask;
    for (;;) {
      const point = table[slot]!;
      if (point === 0) {
        table[slot] = (index << pointRankBits) | rank;
        this.#entries++;
        if (this.#entries * 2 > table.length) this.#grow();
        return;
      }
      if (point >>> pointRankBits === index) {
        if (rank > (point & pointRankMask)) table[slot] = (index << pointRankBits) | rank;
        return;
      }
      slot = (slot + 1) & mask;
    }
  }

  /** Doubles the table, or goes dense past sparseEntriesInMemoryMax registers. */
  #grow(): void {
    if (this.#entries > sparseEntriesInMemoryMax) this.#densify();
    else this.#rehash(this.#table!.length * 2);
  }

  /** Sizes the table once for `added` more registers, instead of doubling it step by step. */
  #reserve(added: number): void {
    const table = this.#table;
    if (table === null) return;
    const entriesMost = this.#entries + added;
    if (entriesMost > sparseEntriesInMemoryMax) {
      this.#densify();
      return;
    }
    let slots = table.length;
    while (entriesMost * 2 > slots) slots *= 2;
    if (slots > table.length) this.#rehash(slots);
  }

  #rehash(slots: number): void {
    const old = this.#table!;
    const table = new Uint32Array(slots);
    const mask = table.length - 1;
    for (let oldSlot = 0; oldSlot < old.length; oldSlot++) {
      const point = old[oldSlot]!;
      if (point === 0) continue;
      let slot = (Math.imul(point >>> pointRankBits, slotMultiplier) >>> 16) & mask;
      while (table[slot] !== 0) slot = (slot + 1) & mask;
      table[slot] = point;
    }
    this.#table = table;
  }

  #densify(): Uint8Array {
    const table = this.#table;
    if (table === null) return this.#dense!;
    const dense = new Uint8Array(registersCount);
    for (let slot = 0; slot < table.length; slot++) {
      if (table[slot] !== 0) dense[table[slot]! >>> pointRankBits] = table[slot]! & pointRankMask;
    }
    this.#table = null;
    this.#entries = 0;
    this.#dense = dense;
    return dense;
  }
}

/** Scratch for estimateUnion: registers of the union, and which of them it set (sparse path). */
const unionRegisters = new Uint8Array(registersCount);
const unionTouched = new Uint16Array(registersCount);

/**
 * The estimate of the union of serialized sketches, without building a sketch: queries union one
 * sketch per bucket for every row, and allocating 16 KiB per union is what drove their tail
 * latency. A union of sparse sketches costs only their pairs; one dense part costs one pass.
 * Equal to merging every part into one Hll and calling estimate(). Throws HllFormatError.
 */
export function estimateUnion(parts: readonly Uint8Array[]): number {
  let touched = 0;
  let dense = false;
  try {
    for (const bytes of parts) {
      const decoded = decode(bytes);
      if (decoded.format === 'sparse') {
        for (let pair = 0; pair < decoded.pairsCount; pair++) {
          const index = decodedIndexes[pair]!;
          const current = unionRegisters[index]!;
          if (current === 0) unionTouched[touched++] = index;
          if (decodedRanks[pair]! > current) unionRegisters[index] = decodedRanks[pair]!;
        }
        continue;
      }
      dense = true;
      for (let index = 0; index < registersCount; index++) {
        if (decodedRegisters[index]! > unionRegisters[index]!) unionRegisters[index] = decodedRegisters[index]!;
      }
    }
    if (dense) return estimateRegisters(unionRegisters);
    const histogram = histogramScratch.fill(0);
    histogram[0] = registersCount - touched;
    for (let i = 0; i < touched; i++) histogram[unionRegisters[unionTouched[i]!]!]!++;
    return estimateFromHistogram(histogram);
  } finally {
    // Leave the scratch all zeros for the next call, also after a malformed part.
    if (dense) unionRegisters.fill(0);
    else for (let i = 0; i < touched; i++) unionRegisters[unionTouched[i]!] = 0;
  }
}

/** The union of two serialized sketches, serialized; neither input is modified. */
export function mergeHllBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  // Stores call this per cell per batch, and most cells are sparse: merge-join the pairs directly.
  const left = decode(a);
  if (left.format === 'sparse') {
    const leftCount = left.pairsCount;
    leftIndexes.set(decodedIndexes.subarray(0, leftCount));
    leftRanks.set(decodedRanks.subarray(0, leftCount));
    const right = decode(b);
    if (right.format === 'sparse') return mergeSparsePairs(leftCount, right.pairsCount);
  }
  const union = Hll.fromBytes(a);
  union.mergeBytes(b);
  return union.toBytes();
}

/** Unions leftIndexes/leftRanks with decodedIndexes/decodedRanks, both ascending by index. */
function mergeSparsePairs(leftCount: number, rightCount: number): Uint8Array {
  let left = 0;
  let right = 0;
  let merged = 0;
  while (left < leftCount || right < rightCount) {
    const leftIndex = left < leftCount ? leftIndexes[left]! : registersCount;
    const rightIndex = right < rightCount ? decodedIndexes[right]! : registersCount;
    if (leftIndex < rightIndex) {
      mergedIndexes[merged] = leftIndex;
      mergedRanks[merged++] = leftRanks[left++]!;
    } else if (rightIndex < leftIndex) {
      mergedIndexes[merged] = rightIndex;
      mergedRanks[merged++] = decodedRanks[right++]!;
    } else {
      mergedIndexes[merged] = leftIndex;
      mergedRanks[merged++] = Math.max(leftRanks[left++]!, decodedRanks[right++]!);
    }
  }
  return encodePairs(mergedIndexes.subarray(0, merged), mergedRanks.subarray(0, merged));
}

/** The estimate of a serialized sketch, read straight from its registers. */
export function estimateHllBytes(bytes: Uint8Array): number {
  const decoded = decode(bytes);
  if (decoded.format === 'dense') return estimateRegisters(decodedRegisters);
  const histogram = histogramScratch.fill(0);
  histogram[0] = registersCount - decoded.pairsCount;
  for (let pair = 0; pair < decoded.pairsCount; pair++) histogram[decodedRanks[pair]!]!++;
  return estimateFromHistogram(histogram);
}
