// Weighted random: each backend is chosen with probability weight / total weight.
import type { Candidate, Random, Strategy } from './types.ts';

export class WeightedRandom implements Strategy {
  constructor(private readonly random: Random) {}

  pick<T extends Candidate>(candidates: readonly T[]): T | undefined {
    return weightedChoice(candidates, this.random);
  }
}

export function weightedChoice<T extends Candidate>(candidates: readonly T[], random: Random): T | undefined {
  const total = candidates.reduce((sum, c) => sum + c.weight, 0);
  let point = random() * total;
  for (const candidate of candidates) {
    point -= candidate.weight;
    if (point < 0) return candidate;
  }
  return candidates[candidates.length - 1];
}
