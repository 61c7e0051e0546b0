// A tiny seeded pseudo-random generator (mulberry32) for the memory adapters' fault injection:
// the same seed replays the same faults, so a failing test can be rerun exactly.

export type Random = () => number;

/** Returns a function yielding floats in [0, 1), fully determined by `seed`. */
export function seededRandom(seed: number): Random {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = state;
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [low, high). */
export function randomInteger(random: Random, low: number, high: number): number {
  return low + Math.floor(random() * (high - low));
}
