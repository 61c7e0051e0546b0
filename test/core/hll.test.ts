// HyperLogLog sketches: the pinned hash and point layout, estimate error bounds, union semantics,
// and the sparse/dense byte format with its validation.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  Hll,
  HllFormatError,
  estimateHllBytes,
  estimateUnion,
  hllPoint,
  hllPointOfBytes,
  hllPrecision,
  mergeHllBytes,
} from '../../src/core/analytics/hll.ts';

// Format facts the tests pin (a change here is a storage format change).
const registersCount = 16_384;
const rankMax = 51;
const denseBytes = 2 + 12_288;
const sparseTag = 1;
const denseTag = 2;

function pointOf(index: number, rank: number): number {
  return (index << 6) | rank;
}

/** A sketch of `count` distinct values `${label}:${i}` for i in [from, from + count). */
function sketchOf(label: string, from: number, count: number): Hll {
  const sketch = Hll.empty();
  for (let i = from; i < from + count; i++) sketch.add(`${label}:${i}`);
  return sketch;
}

function assertWithin(estimate: number, actual: number, tolerance: number, what: string): void {
  assert.ok(
    Math.abs(estimate - actual) <= tolerance,
    `${what}: estimate ${estimate} for ${actual} distinct values is off by more than ${tolerance}`,
  );
}

function allRegistersAt(rank: number): Uint8Array {
  const sketch = Hll.empty();
  for (let index = 0; index < registersCount; index++) sketch.addPoint(pointOf(index, rank));
  return sketch.toBytes();
}

describe('hllPoint', () => {
  test('precision is 14', () => {
    assert.equal(hllPrecision, 14);
  });

  test('is pinned to MurmurHash3 x86_128 (seed 0) of the UTF-8 bytes, since stored sketches depend on it', () => {
    // Expected points derived from a reference MurmurHash3 implementation: index = top 14 bits of
    // h1, rank = leading zeros of the next 50 bits (rest of h1, then h2) + 1.
    assert.equal(hllPoint('a'), pointOf(10725, 3));
    assert.equal(hllPoint('hello'), pointOf(2761, 4));
    assert.equal(hllPoint('user-123'), pointOf(7640, 2));
    assert.equal(hllPoint('The quick brown fox jumps over the lazy dog'), pointOf(3013, 2));
    assert.equal(hllPoint('héllo wörld €😀'), pointOf(13725, 5));
    assert.equal(hllPoint('anon:0197b4c2-7e1f-7a3b-9c1d-2f4e6a8b0c1d'), pointOf(9367, 1));
  });

  test('caps the rank at 51 when all 50 rank bits are zero (the empty string hashes to zero)', () => {
    assert.equal(hllPoint(''), pointOf(0, rankMax));
    assert.equal(hllPointOfBytes(new Uint8Array(0)), pointOf(0, rankMax));
  });

  test('packs a 14-bit index and a rank in 1..51 into 20 bits', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (value) => {
        const point = hllPoint(value);
        assert.ok(Number.isInteger(point) && point >= 0 && point < 1 << 20);
        const rank = point & 63;
        assert.ok(rank >= 1 && rank <= rankMax, `rank ${rank}`);
      }),
    );
  });

  test('hashes the UTF-8 encoding: equals hllPointOfBytes of TextEncoder output, lone surrogates included', () => {
    const encoder = new TextEncoder();
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 100 }), (value) => {
        assert.equal(hllPoint(value), hllPointOfBytes(encoder.encode(value)));
      }),
    );
    assert.equal(hllPoint('\ud800'), hllPoint('\ufffd'));
    assert.equal(hllPoint('x\udc00y'), hllPoint('x\ufffdy'));
  });

  test('hashes values longer than the reused buffer the same way', () => {
    const encoder = new TextEncoder();
    for (const value of ['é'.repeat(4096), 'é'.repeat(4097), '😀'.repeat(5000), 'a'.repeat(100_000)]) {
      assert.equal(hllPoint(value), hllPointOfBytes(encoder.encode(value)));
    }
    assert.equal(hllPoint('short'), hllPointOfBytes(encoder.encode('short')), 'a long value leaves no residue');
  });

  test('ranks follow the geometric law: about half are 1, a quarter 2, an eighth 3', () => {
    const valuesCount = 100_000;
    const byRank = new Array<number>(rankMax + 1).fill(0);
    const byIndexHalf = [0, 0];
    for (let i = 0; i < valuesCount; i++) {
      const point = hllPoint(`rank-check:${i}`);
      byRank[point & 63]!++;
      byIndexHalf[point >>> 19]!++;
    }
    // 5 standard deviations of a binomial at these sizes is under 1% of valuesCount.
    assertWithin(byRank[1]!, valuesCount / 2, valuesCount * 0.01, 'rank 1');
    assertWithin(byRank[2]!, valuesCount / 4, valuesCount * 0.01, 'rank 2');
    assertWithin(byRank[3]!, valuesCount / 8, valuesCount * 0.01, 'rank 3');
    assertWithin(byIndexHalf[0]!, valuesCount / 2, valuesCount * 0.01, 'lower half of the registers');
  });
});

describe('Hll.addPoint', () => {
  test('rejects anything that is not a point: negative, fractional, NaN, rank 0, rank 52, index 16384', () => {
    const sketch = Hll.empty();
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, pointOf(7, 0), pointOf(7, 52), pointOf(7, 63), pointOf(registersCount, 1), 2 ** 32 + 1]) {
      assert.throws(() => sketch.addPoint(bad), RangeError, `point ${bad}`);
    }
    assert.ok(sketch.isEmpty(), 'a rejected point changes nothing');
  });

  test('accepts the extreme points: register 0 and 16383, ranks 1 and 51', () => {
    const sketch = Hll.empty();
    for (const point of [pointOf(0, 1), pointOf(0, rankMax), pointOf(registersCount - 1, 1), pointOf(registersCount - 1, rankMax)]) {
      sketch.addPoint(point);
    }
    assert.deepEqual(Hll.fromBytes(sketch.toBytes()).toBytes(), sketch.toBytes());
    assert.equal(sketch.estimate(), 2);
  });

  test('adding the same value twice changes nothing, in a sparse and in a dense sketch', () => {
    for (const count of [10, 20_000]) {
      const sketch = sketchOf('twice', 0, count);
      const before = sketch.toBytes();
      sketch.add('twice:3');
      sketch.add('twice:3');
      assert.deepEqual(sketch.toBytes(), before, `${count} values`);
    }
  });

  test('a register keeps the highest rank it was given', () => {
    const sketch = Hll.empty();
    sketch.addPoint(pointOf(5, 3));
    sketch.addPoint(pointOf(5, 2));
    assert.deepEqual(sketch.toBytes(), Uint8Array.of(sparseTag, 14, 1, 0xc3, 0x02));
    sketch.addPoint(pointOf(5, 9));
    const expected = Hll.empty();
    expected.addPoint(pointOf(5, 9));
    assert.deepEqual(sketch.toBytes(), expected.toBytes());
  });
});

describe('Hll.estimate', () => {
  test('an empty sketch estimates 0 and is empty; one value makes it non-empty', () => {
    const sketch = Hll.empty();
    assert.equal(sketch.estimate(), 0);
    assert.ok(sketch.isEmpty());
    sketch.add('someone');
    assert.ok(!sketch.isEmpty());
  });

  test('small cardinalities are near exact: 1 and 10 exactly, 100 and 1,000 within max(1, 2%)', () => {
    for (const seed of [1, 2, 3]) {
      for (const count of [1, 10]) assert.equal(sketchOf(`small-${seed}`, 0, count).estimate(), count);
      for (const count of [100, 300, 1000]) {
        assertWithin(sketchOf(`small-${seed}`, 0, count).estimate(), count, Math.max(1, count * 0.02), `seed ${seed}`);
      }
    }
  });

  test('100,000 distinct values estimate within 2% on five seeds', () => {
    for (const seed of [11, 12, 13, 14, 15]) {
      assertWithin(sketchOf(`big-${seed}`, 0, 100_000).estimate(), 100_000, 2000, `seed ${seed}`);
    }
  });

  test('the mid range where classic HyperLogLog switches estimators stays within 2%', () => {
    for (const count of [5000, 12_000, 20_000, 40_000, 60_000]) {
      assertWithin(sketchOf('mid', 0, count).estimate(), count, count * 0.02, `${count} values`);
    }
  });

  test('1,000,000 distinct values estimate within 2%', () => {
    assertWithin(sketchOf('million', 0, 1_000_000).estimate(), 1_000_000, 20_000, 'one million');
  });

  test('a sketch with every register saturated still estimates a finite integer', () => {
    const estimate = Hll.fromBytes(allRegistersAt(rankMax)).estimate();
    assert.ok(Number.isSafeInteger(estimate) && estimate > 0);
    assert.equal(estimateHllBytes(allRegistersAt(rankMax)), estimate);
  });
});

/** A sketch made from a seed and a count, so generated sketches can be large and cheap. */
const sketchSpec = fc.record({ label: fc.integer({ min: 0, max: 1000 }), count: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 400, max: 9000 })) });
type SketchSpec = { label: number; count: number };
function build(spec: SketchSpec): Hll {
  return sketchOf(`spec-${spec.label}`, 0, spec.count);
}
function mergeAll(sketches: readonly Hll[], order: readonly number[]): Uint8Array {
  const union = Hll.empty();
  for (const position of order) union.merge(sketches[position]!);
  return union.toBytes();
}

describe('Hll.merge', () => {
  test('the merge of two overlapping sets estimates their union within 2%', () => {
    const left = sketchOf('union', 0, 60_000);
    const right = sketchOf('union', 40_000, 60_000);
    left.merge(right);
    assertWithin(left.estimate(), 100_000, 2000, 'union of 0..60k and 40k..100k');
    const smallLeft = sketchOf('union-small', 0, 300);
    smallLeft.merge(sketchOf('union-small', 200, 300));
    assertWithin(smallLeft.estimate(), 500, 10, 'union of 0..300 and 200..500');
  });

  test('merging equals adding every value to one sketch, for every mix of sparse and dense, as objects or bytes', () => {
    for (const [leftCount, rightCount] of [[30, 50], [30, 20_000], [20_000, 30], [20_000, 20_000], [600, 600]] as const) {
      const expected = sketchOf('direct', 0, leftCount + rightCount).toBytes();
      const right = sketchOf('direct', leftCount, rightCount);
      const left = sketchOf('direct', 0, leftCount);
      const leftBytes = left.toBytes();
      left.merge(right);
      assert.deepEqual(left.toBytes(), expected, `merge ${leftCount} + ${rightCount}`);
      const viaBytes = sketchOf('direct', 0, leftCount);
      viaBytes.mergeBytes(right.toBytes());
      assert.deepEqual(viaBytes.toBytes(), expected, `mergeBytes ${leftCount} + ${rightCount}`);
      assert.deepEqual(mergeHllBytes(leftBytes, right.toBytes()), expected, `mergeHllBytes ${leftCount} + ${rightCount}`);
    }
  });

  test('is commutative and associative: any order of merging the same sketches gives identical bytes', () => {
    fc.assert(
      fc.property(
        fc.array(sketchSpec, { minLength: 1, maxLength: 5 }).chain((specs) =>
          fc.tuple(fc.constant(specs), fc.shuffledSubarray(specs.map((_, position) => position), { minLength: specs.length, maxLength: specs.length })),
        ),
        ([specs, order]) => {
          const sketches = specs.map(build);
          const inOrder = mergeAll(sketches, specs.map((_, position) => position));
          assert.deepEqual(mergeAll(sketches, order), inOrder);
          // Associativity: fold the tail into one sketch first, then merge it into the head.
          const tail = Hll.empty();
          for (const sketch of sketches.slice(1)) tail.merge(sketch);
          const head = Hll.fromBytes(sketches[0]!.toBytes());
          head.merge(tail);
          assert.deepEqual(head.toBytes(), inOrder);
        },
      ),
      { numRuns: 25 },
    );
  });

  test('is idempotent: merging a sketch into itself or a copy of itself changes nothing', () => {
    fc.assert(
      fc.property(sketchSpec, (spec) => {
        const sketch = build(spec);
        const before = sketch.toBytes();
        sketch.merge(sketch);
        assert.deepEqual(sketch.toBytes(), before);
        sketch.merge(Hll.fromBytes(before));
        assert.deepEqual(sketch.toBytes(), before);
      }),
      { numRuns: 25 },
    );
  });

  test('leaves the other sketch unchanged, whether it is sparse or dense', () => {
    const small = sketchOf('other', 0, 10);
    const large = sketchOf('other', 100, 20_000);
    const smallBytes = small.toBytes();
    const largeBytes = large.toBytes();
    small.merge(large);
    assert.deepEqual(large.toBytes(), largeBytes, 'dense other');
    assert.notDeepEqual(small.toBytes(), smallBytes, 'the receiver did change');
    const otherSmall = sketchOf('other', 0, 10);
    large.merge(otherSmall);
    assert.deepEqual(otherSmall.toBytes(), smallBytes, 'sparse other');
  });

  test('mergeBytes with malformed bytes throws and leaves the sketch unchanged', () => {
    const sketch = sketchOf('atomic', 0, 40);
    const before = sketch.toBytes();
    // Two valid pairs (registers 1 and 3), then a third whose rank is 0.
    assert.throws(() => sketch.mergeBytes(Uint8Array.of(sparseTag, 14, 3, 0x45, 0x82, 0x01, 0x40)), /pair 2 has rank 0/);
    assert.deepEqual(sketch.toBytes(), before);
  });

  test('sketches read from bytes share no state with each other or with the bytes', () => {
    const firstBytes = sketchOf('shared', 0, 20_000).toBytes();
    const secondBytes = sketchOf('shared', 50_000, 20_000).toBytes();
    const first = Hll.fromBytes(firstBytes);
    const second = Hll.fromBytes(secondBytes);
    second.add('one more');
    assert.deepEqual(first.toBytes(), firstBytes);
    const small = Hll.fromBytes(Uint8Array.of(sparseTag, 14, 1, 0x43));
    Hll.fromBytes(Uint8Array.of(sparseTag, 14, 1, 0x85, 0x01));
    assert.deepEqual(small.toBytes(), Uint8Array.of(sparseTag, 14, 1, 0x43));
  });

  test('mergeHllBytes and estimateHllBytes agree with the object methods', () => {
    fc.assert(
      fc.property(sketchSpec, sketchSpec, (leftSpec, rightSpec) => {
        const left = build(leftSpec);
        const right = build({ label: rightSpec.label + 5000, count: rightSpec.count });
        const merged = mergeHllBytes(left.toBytes(), right.toBytes());
        left.merge(right);
        assert.deepEqual(merged, left.toBytes());
        assert.equal(estimateHllBytes(merged), left.estimate());
      }),
      { numRuns: 25 },
    );
  });
});

describe('serialization', () => {
  test('an empty sketch is 3 bytes: sparse tag, precision, zero pairs', () => {
    const bytes = Hll.empty().toBytes();
    assert.deepEqual(bytes, Uint8Array.of(sparseTag, 14, 0));
    assert.ok(Hll.fromBytes(bytes).isEmpty());
    assert.equal(estimateHllBytes(bytes), 0);
  });

  test('sparse pairs are varints of (index delta << 6 | rank) in index order', () => {
    const sketch = Hll.empty();
    sketch.addPoint(pointOf(7, 1));
    sketch.addPoint(pointOf(5, 3));
    // (5 << 6 | 3) = 323 = 0xc3 0x02; ((7 - 5) << 6 | 1) = 129 = 0x81 0x01.
    assert.deepEqual(sketch.toBytes(), Uint8Array.of(sparseTag, 14, 2, 0xc3, 0x02, 0x81, 0x01));
  });

  test('sparse sketches round-trip to identical bytes and estimates', () => {
    fc.assert(
      fc.property(fc.array(fc.string(), { maxLength: 300 }), (values) => {
        const sketch = Hll.empty();
        for (const value of values) sketch.add(value);
        const bytes = sketch.toBytes();
        assert.equal(bytes[0], sparseTag);
        const copy = Hll.fromBytes(bytes);
        assert.deepEqual(copy.toBytes(), bytes);
        assert.equal(copy.estimate(), sketch.estimate());
      }),
    );
  });

  test('dense sketches are 12,290 bytes and round-trip to identical bytes and estimates', () => {
    const sketch = sketchOf('dense', 0, 50_000);
    const bytes = sketch.toBytes();
    assert.equal(bytes[0], denseTag);
    assert.equal(bytes.length, denseBytes);
    const copy = Hll.fromBytes(bytes);
    assert.deepEqual(copy.toBytes(), bytes);
    assert.equal(copy.estimate(), sketch.estimate());
    assert.equal(estimateHllBytes(bytes), sketch.estimate());
  });

  test('every register value 0..51 survives the 6-bit dense packing at every position in a group of four', () => {
    const sketch = Hll.empty();
    for (let index = 0; index < registersCount; index++) sketch.addPoint(pointOf(index, 1 + ((index * 7) % rankMax)));
    const bytes = sketch.toBytes();
    assert.equal(bytes[0], denseTag);
    assert.deepEqual(Hll.fromBytes(bytes).toBytes(), bytes);
    assert.deepEqual(Hll.fromBytes(allRegistersAt(rankMax)).toBytes(), allRegistersAt(rankMax));
  });

  test('switches from sparse to dense exactly when sparse would be larger, and both sides round-trip', () => {
    const sketch = Hll.empty();
    let lastSparse: Uint8Array | null = null;
    let firstDense: Uint8Array | null = null;
    for (let i = 0; firstDense === null; i++) {
      sketch.add(`switch:${i}`);
      if (i % 10 !== 0) continue;
      const bytes = sketch.toBytes();
      assert.ok(bytes.length <= denseBytes, `never larger than dense (${bytes.length} bytes at ${i + 1} values)`);
      if (bytes[0] === sparseTag) lastSparse = bytes;
      else firstDense = bytes;
    }
    assert.ok(lastSparse !== null && lastSparse.length > denseBytes - 40, `last sparse is ${lastSparse?.length} bytes`);
    assert.equal(firstDense.length, denseBytes);
    // The dense bytes carry registers whose sparse form is larger than dense, or they would be sparse.
    assert.deepEqual(Hll.fromBytes(lastSparse).toBytes(), lastSparse);
    assert.deepEqual(Hll.fromBytes(firstDense).toBytes(), firstDense);
  });

  test('a dense encoding of few registers reads back and re-serializes as sparse', () => {
    const dense = new Uint8Array(denseBytes);
    dense[0] = denseTag;
    dense[1] = 14;
    dense[2] = 3; // register 0 holds rank 3
    const sketch = Hll.fromBytes(dense);
    assert.equal(sketch.estimate(), 1);
    assert.deepEqual(sketch.toBytes(), Uint8Array.of(sparseTag, 14, 1, 3));
  });
});

describe('Hll.fromBytes on malformed input', () => {
  const sparse = sketchOf('malformed', 0, 50).toBytes();
  const dense = sketchOf('malformed', 0, 50_000).toBytes();
  const cases: ReadonlyArray<readonly [string, Uint8Array, RegExp]> = [
    ['no bytes', new Uint8Array(0), /truncated/],
    ['only a tag', Uint8Array.of(sparseTag), /truncated/],
    ['an unknown tag', Uint8Array.of(9, 14, 0), /unknown format tag 9/],
    ['tag 0', Uint8Array.of(0, 14, 0), /unknown format tag 0/],
    ['precision 12', Uint8Array.of(sparseTag, 12, 0), /precision 12/],
    ['precision 15 on a dense sketch', Uint8Array.from([denseTag, 15, ...dense.subarray(2)]), /precision 15/],
    ['a missing pair count', Uint8Array.of(sparseTag, 14), /truncated/],
    ['fewer pairs than counted', Uint8Array.of(sparseTag, 14, 2, 0xc3, 0x02), /truncated/],
    ['a pair cut mid-varint', Uint8Array.of(sparseTag, 14, 1, 0xc3), /truncated/],
    ['bytes after the last pair', Uint8Array.of(sparseTag, 14, 1, 0x43, 0x00), /after the last/],
    ['a repeated register', Uint8Array.of(sparseTag, 14, 2, 0x43, 0x01), /repeats register 1/],
    ['register 16384', Uint8Array.of(sparseTag, 14, 1, 0x81, 0x80, 0x40), /register 16384/],
    ['rank 0', Uint8Array.of(sparseTag, 14, 1, 0x40), /rank 0/],
    ['rank 52', Uint8Array.of(sparseTag, 14, 1, 0x34), /rank 52/],
    ['a varint longer than 3 bytes', Uint8Array.of(sparseTag, 14, 1, 0x81, 0x80, 0x80, 0x00), /longer than 3/],
    ['a non-minimal varint', Uint8Array.of(sparseTag, 14, 1, 0x81, 0x00), /not a minimal varint/],
    ['a pair count above 16384', Uint8Array.of(sparseTag, 14, 0x81, 0x80, 0x01), /exceeds 16384/],
    ['a dense sketch one byte short', dense.subarray(0, denseBytes - 1), /12289 bytes, expected 12290/],
    ['a dense sketch one byte long', Uint8Array.from([...dense, 0]), /12291 bytes, expected 12290/],
    ['a dense register above 51', Uint8Array.from([denseTag, 14, 52, ...dense.subarray(3)]), /register 0 holds 52/],
    ['a dense register of 63 in the last position', Uint8Array.from([...dense.subarray(0, denseBytes - 1), 0xfc]), /register 16383 holds 63/],
  ];
  for (const [what, bytes, message] of cases) {
    test(`throws HllFormatError on ${what}, and so do the byte functions`, () => {
      assert.throws(() => Hll.fromBytes(bytes), (error: unknown) => error instanceof HllFormatError && message.test(error.message));
      assert.throws(() => estimateHllBytes(bytes), HllFormatError);
      assert.throws(() => mergeHllBytes(bytes, sparse), HllFormatError);
      assert.throws(() => mergeHllBytes(sparse, bytes), HllFormatError);
    });
  }

  test('every proper prefix of a valid sparse or dense encoding throws', () => {
    for (const bytes of [sparse, dense]) {
      const lengths = bytes === sparse ? bytes.length : 40;
      for (let length = 0; length < lengths; length++) {
        assert.throws(() => Hll.fromBytes(bytes.subarray(0, length)), HllFormatError, `prefix of ${length} bytes`);
      }
      assert.throws(() => Hll.fromBytes(bytes.subarray(0, bytes.length - 1)), HllFormatError);
    }
  });

  test('arbitrary bytes either throw HllFormatError or read back as a sketch that re-serializes cleanly', () => {
    const anyBytes = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.uint8Array({ maxLength: 64 }).map((body) => Uint8Array.from([sparseTag, 14, ...body])),
    );
    fc.assert(
      fc.property(anyBytes, (bytes) => {
        let sketch: Hll;
        try {
          sketch = Hll.fromBytes(bytes);
        } catch (error) {
          assert.ok(error instanceof HllFormatError, String(error));
          return;
        }
        const again = sketch.toBytes();
        assert.deepEqual(Hll.fromBytes(again).toBytes(), again);
      }),
      { numRuns: 500 },
    );
  });

  test('a value that is not a Uint8Array throws HllFormatError', () => {
    assert.throws(() => Hll.fromBytes([1, 14, 0] as unknown as Uint8Array), HllFormatError);
  });
});

describe('estimateUnion', () => {
  const sketchOf = (values: readonly number[]): Uint8Array => {
    const sketch = Hll.empty();
    for (const value of values) sketch.add(`v${value}`);
    return sketch.toBytes();
  };

  test('equals merging every part into one sketch, for any mix of sparse and dense parts', () => {
    fc.assert(fc.property(
      fc.array(fc.oneof(
        fc.array(fc.integer({ min: 0, max: 5000 }), { maxLength: 60 }),
        fc.integer({ min: 0, max: 3 }).map((offset) => Array.from({ length: 9000 }, (_, i) => i * 4 + offset)),
      ), { minLength: 1, maxLength: 6 }),
      (groups) => {
        const parts = groups.map(sketchOf);
        const merged = Hll.empty();
        for (const part of parts) merged.mergeBytes(part);
        assert.equal(estimateUnion(parts), merged.estimate());
      },
    ), { numRuns: 40 });
  });

  test('a malformed part throws and leaves no trace in the next union', () => {
    const good = sketchOf([1, 2, 3]);
    assert.throws(() => estimateUnion([sketchOf(Array.from({ length: 500 }, (_, i) => i)), new Uint8Array([9, 14, 0])]), HllFormatError);
    assert.equal(estimateUnion([good]), Hll.fromBytes(good).estimate());
    assert.equal(estimateUnion([]), 0);
  });
});
