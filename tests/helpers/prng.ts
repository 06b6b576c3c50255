/**
 * The seeded PRNG of the tests and benchmarks (mulberry32), so every generated case,
 * dump and data set can be replayed from its seed. One algorithm everywhere: the same
 * seed gives the same sequence whichever form is used.
 *
 * @module
 */

/**
 * mulberry32: a small, fast, seeded PRNG returning uint32s.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mulberry32 } from "./prng.ts";
 *
 * const next = mulberry32(1);
 * assert(next() === mulberry32(1)() && Number.isInteger(next()));
 * ```
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/**
 * The {@linkcode mulberry32} sequence of `seed` as floats in [0, 1).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { prng } from "./prng.ts";
 *
 * const next = prng(1);
 * const x = next();
 * assert(x === prng(1)() && x >= 0 && x < 1);
 * ```
 */
export function prng(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 4294967296;
}

/**
 * The {@linkcode mulberry32} sequence of `seed` with helpers for picking cases.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Rng } from "./prng.ts";
 *
 * assert(new Rng(7).int(10) === new Rng(7).int(10));
 * ```
 */
export class Rng {
  #next: () => number;

  /** Starts the sequence of `seed`. */
  constructor(seed: number) {
    this.#next = mulberry32(seed);
  }

  /** A uint32. */
  u32(): number {
    return this.#next();
  }

  /** A float in [0, 1). */
  next(): number {
    return this.#next() / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** `n` pseudo-random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const r = this.u32();
      out[i] = r;
      if (i + 1 < n) out[i + 1] = r >>> 8;
      if (i + 2 < n) out[i + 2] = r >>> 16;
      if (i + 3 < n) out[i + 3] = r >>> 24;
    }
    return out;
  }
}
