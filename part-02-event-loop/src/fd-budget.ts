// How many client connections this process can afford. Every connection is a file descriptor,
// and each client needs a second one for its backend: accept no more clients than leave room for
// that (nginx's worker_connections, which counts both sides). Linux only; elsewhere, no limit.
import { readdirSync, readFileSync } from 'node:fs';

/** Descriptors kept free for everything else: log files, DNS, health checks, a reload. */
const SPARE = 16;

/** The soft limit on open files (ulimit -n), if /proc says. */
export function openFileLimit(): number | undefined {
  try {
    const line = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return line ? Number(line[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Descriptors this process holds right now (stdio, the event loop's own, pipes). */
function openFiles(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return 0;
  }
}

/** The most clients to hold at once, so that each can still open its backend connection. */
export function clientLimit(limit = openFileLimit()): number | undefined {
  if (limit === undefined) return undefined;
  return Math.max(1, Math.floor((limit - openFiles() - SPARE) / 2));
}
