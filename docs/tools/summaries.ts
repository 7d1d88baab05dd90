// One paragraph per part for the top of its generated diff page.
export const SUMMARIES: Record<string, string> = {
  'part-02-event-loop':
    'The accept queue and the one-at-a-time `await` loop go away. The server\'s `connection` handler opens a backend connection and hands both sockets to `tunnel()` in the new `src/pump.ts`, where part 1\'s copy loop becomes event handlers: `data` writes and pauses when `write()` returns false, `drain` resumes, `end` passes the FIN on, and an unclean `close` destroys the partner. The proxy counts live pairs and the peak bytes queued, and the tests swap "the second client waits" for 200 concurrent clients, a slow reader, half-close and graceful shutdown.',
};
