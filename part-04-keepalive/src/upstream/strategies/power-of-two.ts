// Power of two choices (nginx's "random two least_conn"): pick two backends at random by
// weight, send the connection to the one with fewer active connections per unit of weight.
import type { Candidate, Random, Strategy } from './types.ts';
import { weightedChoice } from './random.ts';

export class PowerOfTwo implements Strategy {
  constructor(private readonly random: Random) {}

  pick<T extends Candidate>(candidates: readonly T[]): T | undefined {
    const first = weightedChoice(candidates, this.random);
    if (first === undefined || candidates.length === 1) return first;
    const second = weightedChoice(candidates.filter((c) => c !== first), this.random)!;
    // Fewer active per weight wins; on a tie, the first draw (already weighted) keeps it.
    return second.active * first.weight < first.active * second.weight ? second : first;
  }
}
