// Load-balancing strategies: one interface, chosen by name.
import { RoundRobin } from './round-robin.ts';
import { WeightedRandom } from './random.ts';
import { LeastConnections } from './least-connections.ts';
import { PowerOfTwo } from './power-of-two.ts';

export type { Candidate, Random, Strategy } from './types.ts';
import type { Random, Strategy } from './types.ts';

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
