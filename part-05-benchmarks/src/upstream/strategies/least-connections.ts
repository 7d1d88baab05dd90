// Least connections, weighted as nginx's least_conn: the lowest active/weight wins,
// and ties are broken by smooth weighted round-robin among the tied backends.
import type { Candidate, Strategy } from './types.ts';
import { RoundRobin } from './round-robin.ts';

export class LeastConnections implements Strategy {
  private readonly tieBreaker = new RoundRobin();

  pick<T extends Candidate>(candidates: readonly T[]): T | undefined {
    let tied: T[] = [];
    for (const candidate of candidates) {
      const first = tied[0];
      // Compare active/weight without dividing: a.active * b.weight vs b.active * a.weight.
      const order = first === undefined ? -1 : candidate.active * first.weight - first.active * candidate.weight;
      if (order < 0) tied = [candidate];
      else if (order === 0) tied.push(candidate);
    }
    return tied.length > 1 ? this.tieBreaker.pick(tied) : tied[0];
  }
}
