// Load-balancing strategies: one interface, chosen by name.
import { RoundRobin } from './round-robin.ts';
import { WeightedRandom } from './random.ts';
import { LeastConnections } from './least-connections.ts';
import { PowerOfTwo } from './power-of-two.ts';

/** What a strategy needs to know about a backend. */
export interface Candidate {
  weight: number;
  /** Requests in flight to it right now. */
  active: number;
}

export interface Strategy {
  /** Chooses one of the candidates (all healthy, none tried yet for this client). */
  pick<T extends Candidate>(candidates: readonly T[]): T | undefined;
}

/** A source of numbers in [0, 1); injectable so tests are deterministic. */
export type Random = () => number;

export const STRATEGY_NAMES = ['round-robin', 'random', 'least-connections', 'power-of-two'] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

export function createStrategy(name: StrategyName, random: Random = Math.random): Strategy {
  switch (name) {
    case 'round-robin':
      return new RoundRobin();
    case 'random':
      return new WeightedRandom(random);
    case 'least-connections':
      return new LeastConnections();
    case 'power-of-two':
      return new PowerOfTwo(random);
  }
}
