// /metrics: the status document in Prometheus' text exposition format (version 0.0.4).
import { LATENCY_BUCKETS } from './metrics.ts';
import type { ProcessStatus, ProxyStatus } from './status.ts';
import { tlsMetrics } from '../tls/tls-status.ts';

const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'];
const STATES = ['up', 'down', 'probation', 'checking'];

export function prometheusText(status: ProxyStatus): string {
  const out: string[] = [];
  const metric = (name: string, type: 'counter' | 'gauge' | 'histogram', help: string, samples: Array<[string, number]>) => {
    if (samples.length === 0) return;
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) out.push(`${name}${labels} ${value}`);
  };
  const c = status.connections;
  metric('lb_uptime_seconds', 'gauge', 'Seconds since the proxy started.', [['', status.uptimeSeconds]]);
  metric('lb_workers', 'gauge', 'Worker processes.', [['', status.workers]]);
  metric('lb_config_generation', 'gauge', 'Configurations loaded (1 + reloads).', [['', status.generation]]);
  metric('lb_connections_accepted_total', 'counter', 'Client connections accepted.', [['', c.accepted]]);
  metric('lb_connections_handled_total', 'counter', 'Client connections handled (not closed at the door).', [['', c.handled]]);
  metric('lb_connections', 'gauge', 'Open client connections by what they are doing (nginx stub_status).', [
    ['{state="reading"}', c.reading],
    ['{state="writing"}', c.writing],
    ['{state="waiting"}', c.waiting],
  ]);
  metric('lb_requests_total', 'counter', 'Requests read from clients.', [['', status.requests.total]]);
  metric('lb_responses_total', 'counter', 'Responses sent to clients, by status class.', CLASSES.map((k, i) => [`{class="${k}"}`, status.requests.responses[i]!]));
  metric('lb_access_log_dropped_total', 'counter', 'Access log lines dropped because the log could not keep up.', [['', status.accessLogDropped]]);
  tlsMetrics(status.tls, metric);

  const rows = status.upstreams.flatMap((u) => u.backends.map((b) => {
    const name = b.name === undefined ? '' : `,name="${escape(b.name)}"`;
    return { b, labels: `upstream="${escape(u.name)}",backend="${escape(b.address)}"${name}` };
  }));
  metric('lb_backend_up', 'gauge', '1 when the backend takes new requests.', rows.map(({ b, labels }) => [`{${labels}}`, b.state === 'down' || b.state === 'checking' ? 0 : 1]));
  metric('lb_backend_state', 'gauge', 'The backend state, one series per state (1 for the current one).', rows.flatMap(({ b, labels }) =>
    STATES.map((s): [string, number] => [`{${labels},state="${s}"}`, b.state === s ? 1 : 0])));
  metric('lb_backend_active_requests', 'gauge', 'Requests being served by the backend now.', rows.map(({ b, labels }) => [`{${labels}}`, b.active]));
  metric('lb_backend_idle_connections', 'gauge', 'Idle keep-alive connections to the backend.', rows.map(({ b, labels }) => [`{${labels}}`, b.idleConnections]));
  metric('lb_backend_requests_total', 'counter', 'Requests sent to the backend (retries count again).', rows.map(({ b, labels }) => [`{${labels}}`, b.requests]));
  metric('lb_backend_failures_total', 'counter', 'Attempts that failed on the backend side.', rows.map(({ b, labels }) => [`{${labels}}`, b.failures]));
  metric('lb_backend_responses_total', 'counter', 'Backend responses by status class.', rows.flatMap(({ b, labels }) =>
    CLASSES.map((k, i): [string, number] => [`{${labels},class="${k}"}`, b.responses[i]!])));
  metric('lb_backend_response_seconds', 'histogram', 'Time from sending the request to the last byte of the response.', rows.flatMap(({ b, labels }) => {
    let cumulative = 0;
    const samples: Array<[string, number]> = LATENCY_BUCKETS.map((le, i) => {
      cumulative += b.histogram.buckets[i]!;
      return [`_bucket{${labels},le="${le}"}`, cumulative];
    });
    samples.push([`_bucket{${labels},le="+Inf"}`, b.histogram.count], [`_sum{${labels}}`, b.histogram.sum], [`_count{${labels}}`, b.histogram.count]);
    return samples;
  }));

  // One series per process, labelled by worker when there are several (as the Prometheus client names them).
  const processes = (figure: (p: ProcessStatus) => number | null) =>
    (status.processes ?? []).flatMap((p): Array<[string, number]> => {
      const value = figure(p);
      return value === null ? [] : [[p.worker === undefined ? '' : `{worker="${escape(p.worker)}"}`, value]];
    });
  metric('process_cpu_seconds_total', 'counter', 'Total user and system CPU time spent in seconds.', processes((p) => p.cpuSeconds));
  metric('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.', processes((p) => p.residentBytes));
  metric('process_open_fds', 'gauge', 'Number of open file descriptors.', processes((p) => p.openFds));
  metric('process_max_fds', 'gauge', 'Maximum number of open file descriptors.', processes((p) => p.maxFds));
  metric('process_start_time_seconds', 'gauge', 'Start time of the process since unix epoch in seconds.', processes((p) => p.startTimeSeconds));
  return `${out.join('\n')}\n`;
}

/** Label values escape backslash, double quote and newline. */
function escape(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
