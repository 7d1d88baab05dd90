// What every strategy is given and must do; apart, so the strategies need not import index.ts.

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
