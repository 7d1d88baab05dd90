// Active health checks: a TCP connect probe to every backend every intervalMs.
// `fall` failures in a row take a backend out, `rise` successes bring it back (HAProxy's check).
import net from 'node:net';
import type { HealthCheckConfig } from '../config.ts';
import type { Backend } from './peers.ts';

export function startHealthChecks(
  backends: Backend[],
  config: HealthCheckConfig,
  log: (line: string) => void,
): () => void {
  const inFlight = new Map<Backend, net.Socket>();
  const streaks = new Map<Backend, number>(); // >0: successes in a row, <0: failures in a row

  const record = (backend: Backend, ok: boolean, reason: string) => {
    const before = streaks.get(backend) ?? 0;
    const streak = ok ? Math.max(before, 0) + 1 : Math.min(before, 0) - 1;
    streaks.set(backend, streak);
    if (!ok && !backend.failedChecks && -streak >= config.fall) {
      backend.failedChecks = true;
      log(`backend ${backend.name} marked down by health check: ${-streak} failed probes (last: ${reason})`);
    } else if (ok && backend.failedChecks && streak >= config.rise) {
      backend.failedChecks = false;
      log(`backend ${backend.name} marked up by health check: ${streak} good probes`);
    }
  };

  const probe = (backend: Backend) => {
    if (inFlight.has(backend)) return; // the last probe has not finished: do not pile up
    const socket = net.connect({ host: backend.address.host, port: backend.address.port });
    inFlight.set(backend, socket);
    socket.setTimeout(config.timeoutMs, () => socket.destroy(new Error(`no answer in ${config.timeoutMs} ms`)));
    socket.once('connect', () => {
      record(backend, true, 'connected');
      socket.destroy();
    });
    socket.once('error', (err) => record(backend, false, err.message));
    socket.once('close', () => inFlight.delete(backend));
  };

  const timer = setInterval(() => {
    for (const backend of backends) probe(backend);
  }, config.intervalMs);

  return () => {
    clearInterval(timer);
    for (const socket of inFlight.values()) socket.destroy();
  };
}
