// Chapters cut into sections, each a sitting with its own diff. Every file a part changes
// belongs to exactly one section (docs/test/diffs.test.ts checks it).
export interface Section {
  /** Used in the file name: docs/diffs/part-04-1-framing.md */
  id: string;
  title: string;
  /** Files or folders, relative to the part folder. */
  paths: string[];
}

export const SECTIONS: Record<string, Section[]> = {
  'part-04-keepalive': [
    {
      id: '1-framing',
      title: '4.1 Framing and the strict parser',
      paths: [
        'src/http/parser.ts', 'src/http/target.ts', 'src/http/body.ts', 'src/http/errors.ts', 'test/reject.test.ts', 'test/rfc-rules.test.ts',
        'test/differential.test.ts',
      ],
    },
    {
      id: '2-one-request',
      title: '4.2 One request at a time: the client connection and the exchange',
      paths: [
        'src/proxy.ts', 'src/client-connection.ts', 'src/exchange.ts', 'src/exchange-context.ts', 'src/request-body.ts',
        'src/response-relay.ts', 'src/idle-timer.ts', 'test/fixture.ts', 'test/helpers.ts', 'test/http.test.ts', 'test/proxy.test.ts',
      ],
    },
    {
      id: '3-failures',
      title: '4.3 Failures, whose fault they are, and safe retries',
      paths: ['src/backend-link.ts', 'src/retry-policy.ts', 'src/outcome.ts', 'src/pool.ts', 'test/health.test.ts', 'test/faults.test.ts'],
    },
    {
      id: '4-pool',
      title: '4.4 The backend connection pool and the stale-socket race',
      paths: ['src/connection-pool.ts'],
    },
    {
      id: '5-routing',
      title: '4.5 Headers, virtual hosts, upgrades, and the settings',
      paths: [
        'src/http/headers.ts', 'src/virtual-hosts.ts', 'src/pump.ts', 'src/config.ts', 'src/cli.ts', 'src/demo.ts', 'src/strategies',
        'test/balancing.test.ts', 'test/cli.test.ts', 'test/demo.test.ts', 'example.json', 'package.json',
      ],
    },
  ],
  'part-05-benchmarks': [
    {
      id: '1-harness',
      title: '5.1 Measuring: the harness',
      paths: ['bench', 'test/bench.test.ts', 'package.json'],
    },
    {
      id: '2-tuning',
      title: '5.2 Tuning: handler objects, deadlines, heads read once',
      paths: [
        'src/backend-link.ts', 'src/connection-pool.ts', 'src/client-connection.ts', 'src/exchange.ts', 'src/exchange-context.ts',
        'src/request-body.ts', 'src/response-relay.ts', 'src/deadlines.ts', 'src/idle-timer.ts', 'src/http/body.ts', 'src/http/parser.ts',
        'test/differential.test.ts',
      ],
    },
    {
      id: '3-workers-reload',
      title: '5.3 Worker processes and reload',
      paths: ['src/main.ts', 'src/proxy.ts', 'src/config.ts', 'src/config-checks.ts', 'src/cli.ts', 'test/reload.test.ts', 'test/cli.test.ts'],
    },
    {
      id: '4-watch',
      title: '5.4 Watch it work: status page, metrics, access log, lab',
      paths: [
        'src/admin.ts', 'src/status.ts', 'src/metrics.ts', 'src/request-record.ts', 'src/prometheus.ts', 'src/access-log.ts', 'src/status-page.html',
        'src/demo.ts', 'src/pool.ts', 'src/health-check.ts', 'src/http/errors.ts', 'test/status.test.ts', 'test/status-page.browser.test.ts',
        'test/logs.test.ts', 'src/burst-log.ts', 'src/outcome.ts', 'test/demo.test.ts',
      ],
    },
    {
      id: '5-tls',
      title: '5.5 TLS termination and what it costs',
      paths: [
        'src/tls', 'src/http/headers.ts', 'test/tls.test.ts', 'test/tls-cli.test.ts', 'test/tls.browser.test.ts', 'test/tls-helpers.ts',
        'test/tls-bench.test.ts', 'test/tls-demo.test.ts',
      ],
    },
  ],
};
