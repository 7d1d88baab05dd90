// Chapters cut into sections, each a sitting with its own diff. A section owns units: a file or
// folder, or a declaration inside a file, written as `npm run diff -- 4 5 --units` prints them.
export interface Section {
  /** Used in the file name (docs/diffs/part-04-2a-connection.md); before the first "-", its number. */
  id: string;
  title: string;
  units: string[];
  /** Why this section may be over LIMIT changed lines. */
  overLimit?: string;
}

/** About what a reader can take in one sitting: changed lines (+ and -), context not counted. */
export const LIMIT = 600;

export const SECTIONS: Record<string, Section[]> = {
  'part-04-keepalive': [
    { id: '1-all', title: 'all', units: ['src', 'test', 'package.json', 'example.json'] },
  ],
};
