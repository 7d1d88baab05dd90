// Smooth weighted round-robin, as nginx does it: weights 5,1,1 give a a b a c a a.
import type { Candidate, Strategy } from './types.ts';

export class RoundRobin implements Strategy {
  // Each backend's running score ("current_weight" in nginx's source).
  private readonly current = new WeakMap<Candidate, number>();

  pick<T extends Candidate>(candidates: readonly T[]): T | undefined {
    let total = 0;
    let best: T | undefined;
    for (const candidate of candidates) {
      // Every candidate gains its weight; the richest is chosen and pays back the total.
      const score = (this.current.get(candidate) ?? 0) + candidate.weight;
      this.current.set(candidate, score);
      total += candidate.weight;
      if (best === undefined || score > this.current.get(best)!) best = candidate;
    }
    if (best !== undefined) this.current.set(best, this.current.get(best)! - total);
    return best;
  }
}
