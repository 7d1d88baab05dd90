// Chapters cut into sections, each a sitting with its own diff. A section owns units: a file or
// folder, or a declaration inside a file, written as `npm run diff -- 4 5 --units` prints them
// ("src/core/exchange.ts › class Exchange › finish()"); a file that moved is named by its new path.
// A changed unit goes to the section whose entry names it most closely: a member beats its class,
// a class beats its file, a file beats its folder. So a section can take a whole file and another
// one method of it. Two equally close entries in two sections, a unit no entry names, an entry
// that names no changed unit, and a section over LIMIT without an `overLimit` reason are errors:
// `npm run diff -- 4 5 --sections` lists them, and docs/test/diffs.test.ts fails on them.
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

// Shorthands for the long test titles.
const X = 'src/core/exchange.ts › class Exchange';
const HTTP = 'test/http.test.ts';
const KEEP = `${HTTP} › describe('keep-alive and the backend pool')`;
const ERRORS = `${HTTP} › describe('errors')`;
const ROUTING = `${HTTP} › describe('routing, headers, upgrade')`;
const RFC = 'test/rfc-rules.test.ts';
const FAULTS = 'test/faults.test.ts';
const CLI = 'test/cli.test.ts';

export const SECTIONS: Record<string, Section[]> = {
  'part-04-keepalive': [
    {
      id: '1a-parser',
      title: '4.1 Framing and the strict parser: the head parser, and what it refuses',
      units: [
        'src/http/parser.ts', 'src/http/target.ts', 'src/http/errors.ts', 'test/reject.test.ts',
        `${RFC} › describe('the request target (RFC 9112 3.2)')`,
        `${RFC} › describe('Host and the authority of an absolute-form target (RFC 9112 3.2, RFC 3986 3.2.2)')`,
        `${RFC} › describe('list items are trimmed of SP and HTAB only (RFC 9110 5.6.3)')`,
        `${RFC} › describe('status codes run from 100 (RFC 9110 15)')`,
        `${RFC} › describe('a Connection option never removes what frames or routes the message (RFC 9110 7.6.1)')`,
        `${RFC} › describe('smaller rules') › it.each('a bare LF %s gets 400, blaming no header by name')`,
        `${RFC} › describe('smaller rules') › it.each('an error answer to HEAD has no body (RFC 9110 9.3.2): %s')`,
      ],
    },
    {
      id: '1b-framing',
      title: '4.1 Framing and the strict parser: where a body ends',
      units: ['src/http/body.ts', RFC],
    },
    {
      id: '1c-llhttp',
      title: '4.1 Framing and the strict parser: checked against llhttp',
      units: ['test/differential.test.ts'],
    },
    {
      id: '2a-connection',
      title: '4.2 One request at a time: the client connection (keep-alive, phases, pipelining)',
      units: [
        'src/core/client-connection.ts', 'src/proxy.ts', 'src/core/idle-timer.ts', 'test/fixture.ts', 'test/helpers.ts',
        // Whether the client's connection may carry another request: decided when an exchange starts, and handed down.
        'src/http/persistence.ts › function clientAsksToPersist()',
        `${KEEP} › it('balances every request of one keep-alive client connection on its own')`,
        `${KEEP} › it('reads a request whose head and body arrive one byte at a time')`,
        `${KEEP} › it('answers pipelined requests in order')`,
        `${ROUTING} › it('closes after the response for Connection: close and for HTTP/1.0')`,
        `${ROUTING} › it('closes a client connection after keepAliveRequests requests')`,
        `${ROUTING} › it('closes an idle client connection after keepAliveTimeoutMs')`,
        `${FAULTS} › describe('shutdown and tunnels') › it('says Connection: close on a response in flight when shutdown begins')`,
      ],
    },
    {
      id: '2b-exchange',
      title: '4.2 One request at a time: the exchange, its phases and the request body (backpressure both ways)',
      units: [
        'src/core/exchange.ts', 'src/core/exchange-phase.ts', 'src/core/exchange-context.ts', 'src/core/request-body.ts', HTTP, 'test/proxy.test.ts',
        // Abort propagation, as in part 2: the client goes, so does its backend connection.
        `${ERRORS} › it('a client that aborts mid-response takes its backend connection down')`,
      ],
    },
    {
      id: '2c-response',
      title: '4.2 One request at a time: the response, re-framed for the client',
      units: [
        'src/core/response-relay.ts', `${X} › onBackendData()`, `${X} › onBackendEnd()`,
        // How the body is framed each way, and whether the backend connection may be reused: asked once per response head.
        'src/http/persistence.ts',
        // What backpressure keeps small: the most bytes ever queued on one socket, which the relay reports.
        'src/counters.ts',
        `${KEEP} › it('frames HEAD, 204 and 304 responses without a body, then serves the next request on the connection')`,
        `${KEEP} › it('carries chunked bodies both ways, re-framed')`,
        `${KEEP} › it('re-chunks a close-delimited response for an HTTP/1.1 client, and keeps the client connection')`,
        `${KEEP} › it('streams a 64 MiB download to a slow reader and a 32 MiB upload to a slow backend with bounded memory')`,
        `${HTTP} › function dechunk()`,
        `${FAULTS} › describe('response framing never desyncs')`,
        "test/proxy.test.ts › describe('one backend, as before') › it('keeps memory bounded while a slow client reads a 64 MiB response')",
      ],
    },
    {
      id: '3-failures',
      title: '4.3 Failures, whose fault they are, and safe retries',
      units: [
        `${X} › backendFailed()`, `${X} › clientFault()`, `${X} › respondError()`,
        `${X} › releaseBackend()`, `${X} › finish()`, `${X} › abort()`, `${X} › clientEnded()`,
        // Which phase an exchange ended in, for its Outcome.
        'src/core/exchange-phase.ts › const WHERE', 'src/core/exchange-phase.ts › function endedIn()', 'src/core/exchange-phase.ts › function outcomeIn()',
        'src/core/retry-policy.ts', 'src/core/outcome.ts', 'src/upstream/peers.ts', 'src/upstream/health-check.ts',
        'test/health.test.ts', FAULTS, ERRORS,
      ],
    },
    {
      id: '4-pool',
      title: '4.4 The backend connection pool and the stale-socket race',
      units: [
        'src/upstream/connection-pool.ts', `${X} › staleRetried`,
        `${KEEP} › it('reuses backend connections: 50 requests need at most one connection per backend')`,
        `${KEEP} › it('keeps no more idle backend connections than backendKeepAlive.maxIdle')`,
        `${KEEP} › it('closes idle backend connections after backendKeepAlive.idleTimeoutMs')`,
        `${KEEP} › it('closes an idle backend connection to make room when the descriptor budget is reached')`,
        `${KEEP} › it('retries once on a fresh connection when a reused one turns out closed (the stale-socket race)')`,
        // What decides that a failure was the stale-socket race: no byte of a response head came back.
        'src/core/response-relay.ts › class ResponseRelay › get partialHead()',
      ],
    },
    {
      id: '5a-routing',
      title: '4.5 Headers, virtual hosts, upgrades: what a proxy changes, routing by Host, WebSockets',
      units: [
        'src/http/headers.ts', 'src/core/virtual-hosts.ts', 'src/core/pump.ts', 'src/core/upgrade.ts', `${X} › switchProtocols()`, ROUTING,
        'src/core/client-connection.ts › imports › ./virtual-hosts.ts',
        `${RFC} › describe('upgrades')`, `${FAULTS} › describe('shutdown and tunnels') › it('closes an upgraded tunnel that stays silent both ways for tunnelIdleTimeoutMs')`,
        // The describe's own lines: its other test (shutdown) is in 2a.
        `${FAULTS} › describe('shutdown and tunnels')`,
      ],
    },
    {
      id: '5b-settings',
      title: '4.5 Headers, virtual hosts, upgrades: the settings',
      units: [
        'src/config.ts', 'src/cli.ts', 'src/demo.ts', 'src/upstream/strategies', 'test/balancing.test.ts', 'test/cli.test.ts', 'test/demo.test.ts',
        'package.json',
      ],
    },
  ],
  'part-05-benchmarks': [
    {
      id: '1a-harness',
      title: '5.1 Measuring: the harness, its processes and its load generators',
      units: [
        'bench/run.ts', 'bench/processes.ts', 'bench/builds.ts', 'bench/backend.ts', 'bench/autocannon-runner.ts', 'bench/generator-result.ts',
        'bench/close-generator.ts', 'bench/counting-generator.ts', 'test/bench.test.ts', 'package.json',
        'bench/targets.ts › function nginxConf()',
      ],
    },
    {
      id: '1b-targets',
      title: '5.1 Measuring: the harness, what it measures and how it reports',
      units: ['bench'],
    },
    {
      id: '1c-fd-exhaustion',
      title: '5.1 Measuring: running out of file descriptors, part by part, and 1,000 connections under a limit',
      units: [
        'bench/fd-exhaustion.ts',
        // --fd-limit: every proxy under one open-file limit, and what wrk's errors were.
        'bench/processes.ts › let proxyFileLimit', 'bench/processes.ts › function limitProxyFiles()', 'bench/processes.ts › function proxyArgv()',
        'bench/processes.ts › function startProxy()', 'bench/report.ts › imports › ../src/fd-budget.ts', 'bench/report.ts › interface Measurement › errorsByKind',
        'bench/report.ts › interface Row › errorKinds', 'bench/report.ts › function kinds()', 'bench/run.ts › const fdLimit',
        'bench/run.ts › if (fdLimit !== undefined && !(Number.isInteger…', 'bench/run.ts › if (fdLimit !== undefined) limitProxyFiles(fdLi…',
        "bench/run.ts › console.log(`open-file limit (ulimit -n): ${fdLimit === und…)",
        "test/bench.test.ts › describe('benchmark harness') › it('refuses an --fd-limit that is not a whole number of at least 64 (exit 2, one line), before starting anything')",
      ],
    },
    {
      id: '1d-ledger',
      title: '5.1 Measuring: what each guarantee costs (the ledger), and the runs the book keeps',
      units: [
        'bench/ledger.ts', 'bench/ledger', 'bench/kept-runs.ts', 'test/ledger.test.ts',
        'bench/builds.ts › function copyPart()', 'bench/builds.ts › function applyPatch()', 'bench/builds.ts › function patched()',
        'bench/run.ts › imports › ./kept-runs.ts', 'bench/run.ts › imports › ./ledger.ts', 'bench/run.ts › let ledger', 'bench/run.ts › if (values.ledger) {',
        'bench/run.ts › const badName', 'bench/run.ts › if (badName) refuse(`error: ${badName}`);',
      ],
    },
    {
      id: '2a-handlers',
      title: '5.2 Tuning, step 1: handler objects, listeners attached once',
      units: [
        'src/core/exchange.ts', 'src/core/exchange-phase.ts', 'src/core/client-connection.ts', 'src/upstream/connection-pool.ts',
        'src/core/request-body.ts', 'src/core/response-relay.ts', 'src/http/body.ts',
        // The step taken back out of today's code again, for --tuning's untuned row.
        'bench/tuning/1-handlers.patch',
      ],
      overLimit:
        'bench/tuning/1-handlers.patch (about 570 lines) is most of this sitting\'s own diff again, reversed: the step taken ' +
        'back out of today\'s code for `npm run bench -- --tuning`. The code is about 350 lines; skim the patch.',
    },
    {
      id: '2b-deadlines',
      title: '5.2 Tuning, step 2: timeouts as deadlines',
      units: [
        'src/core/deadlines.ts', 'src/core/idle-timer.ts', `${X} › expired()`, 'src/core/client-connection.ts › class ClientConnection › expired()',
        'src/core/client-connection.ts › class ClientConnection › enter()', 'src/core/client-connection.ts › class ClientConnection › clearTimer()',
        'src/upstream/connection-pool.ts › class BackendConnection › waitAtMost()', 'src/upstream/connection-pool.ts › class BackendConnection › expired()',
        // The clocks become deadlines: the fields that hold them, and the imports.
        `${X} › clientClock`, `${X} › backendClock`, 'src/core/exchange.ts › imports › ./idle-timer.ts', 'src/core/exchange.ts › imports › ./deadlines.ts',
        'src/core/client-connection.ts › class ClientConnection › timer', 'src/core/client-connection.ts › class ClientConnection › deadline',
        'src/core/client-connection.ts › imports › ./deadlines.ts',
        'src/upstream/connection-pool.ts › class BackendConnection › deadline', 'src/upstream/connection-pool.ts › imports › ../core/deadlines.ts',
        // The step taken back out of today's code again, for --tuning's rows before it.
        'bench/tuning/2-deadlines.patch',
      ],
    },
    {
      id: '2c-heads',
      title: '5.2 Tuning, step 3: heads read once, objects of one shape',
      units: [
        'src/http/parser.ts', 'test/differential.test.ts', 'bench/tuning/3-heads.patch',
        // How the three steps are measured in one run of today's code: --tuning takes them back in copies.
        'bench/tuning.ts', 'test/tuning.test.ts', 'bench/run.ts › imports › ./tuning.ts',
        'bench/run.ts › if (values.tuning && (values.publish || values.…', 'bench/run.ts › const tuning',
      ],
    },
    {
      id: '2d-heads-as-text',
      title: '5.2 Tuning, step 4: heads written as text',
      // backendRequestHead() is rewritten whole here; its scheme parameter (TLS's X-Forwarded-Proto) shows in this diff too.
      units: ['src/http/headers.ts', 'bench/tuning/4-heads-as-text.patch'],
    },
    {
      id: '3a-workers',
      title: '5.3 Worker processes and reload: the workers',
      units: [
        'src/main.ts', 'src/cli.ts', 'src/config.ts › interface ProxyConfig › workers', 'src/config.ts › const MAX_WORKERS',
        // The harness measures both of Node's ways to share the port.
        'bench/run.ts › if (values.workers !== undefined) {',
        'src/config.ts › function workerCount()',
        "test/cli.test.ts › describe('command line') › it('--workers 2 forks two workers that share one port, and SIGTERM stops them all')",
        "test/cli.test.ts › describe('command line') › it('--workers 2: Ctrl-C (SIGINT to every process of the group) says \"shutting down\" once and exits 0')",
        "test/cli.test.ts › describe('command line') › it.each('a busy port stops the whole process with one error line and exit 2 (--workers %i)')",
        "test/cli.test.ts › describe('command line') › it('a worker that dies after it listened is replaced, later each time it keeps dying')",
      ],
    },
    {
      id: '3b-reload',
      title: '5.3 Worker processes and reload: reload on SIGHUP',
      units: [
        'src/proxy.ts', 'src/generations.ts', 'src/config.ts', 'src/config-checks.ts', 'test/reload.test.ts', 'test/cli.test.ts',
        'src/upstream/connection-pool.ts › class ConnectionPool › retire()', 'src/upstream/connection-pool.ts › class ConnectionPool › retired',
        'src/upstream/connection-pool.ts › class ConnectionPool › release()',
        // The counters belong to no generation: a new generation's pool counts into the same ones.
        'src/upstream/connection-pool.ts › class ConnectionPool › opened', 'src/upstream/connection-pool.ts › class ConnectionPool › constructor()',
        'src/upstream/connection-pool.ts › imports › ../counters.ts',
      ],
    },
    {
      id: '4a-status',
      title: '5.4 Watch it work: the admin listener and what each number means',
      units: [
        'src/observe/admin.ts', 'src/observe/status.ts', 'src/observe/metrics.ts', 'src/upstream/peers.ts', 'src/upstream/health-check.ts', 'test/status.test.ts',
        'src/config.ts › function adminAddress()', 'src/cli.ts › function withObservability()',
        // The proxy's side of the status: what it counts, each backend's metrics (kept across reloads), and status() that reports it.
        'src/counters.ts', 'src/proxy.ts › imports › ./observe/metrics.ts', 'src/proxy.ts › imports › ./observe/status.ts', 'src/proxy.ts › interface Proxy › status()',
        'src/proxy.ts › function startProxy() › status()',
        'src/generations.ts › imports › ./observe/metrics.ts', 'src/generations.ts › class Generations › backendMetrics',
        'src/generations.ts › class Generations › metricsFor()', 'src/config.ts › interface ProxyConfig › admin',
        'src/config.ts › interface BackendConfig › name', 'src/config.ts › function backend()',
      ],
    },
    {
      id: '4b-page',
      title: '5.4 Watch it work: the status page',
      units: ['src/observe/status-page.html', 'test/status-page.browser.test.ts'],
    },
    {
      id: '4c-log',
      title: '5.4 Watch it work: counting, Prometheus and the access log',
      units: [
        'src/core/request-record.ts', 'src/observe/prometheus.ts', 'src/observe/access-log.ts', 'src/core/outcome.ts', 'src/burst-log.ts', 'src/http/errors.ts', 'test/logs.test.ts',
        "test/status.test.ts › describe('access log')",
        // Where an exchange and a refused request are counted and logged.
        `${X} › record`, `${X} › tried`, `${X} › backendFailed()`, `${X} › respondError()`, `${X} › releaseBackend()`, `${X} › finish()`,
        'src/core/client-connection.ts › class ClientConnection › reject()', 'src/core/client-connection.ts › class ClientConnection › leftMidHead()',
        'src/core/exchange-context.ts › interface ExchangeContext › accessLog', 'src/config.ts › function accessLogTarget()',
        'src/config.ts › interface ProxyConfig › accessLog',
        'src/core/exchange.ts › imports › ./request-record.ts', 'src/core/client-connection.ts › imports › ./request-record.ts',
        'src/core/exchange-context.ts › imports › ../observe/access-log.ts', 'src/proxy.ts › imports › ./observe/access-log.ts',
        'src/generations.ts › imports › ./observe/access-log.ts', 'src/generations.ts › interface Shared › accessLog',
        // Every backend down: one line for the burst.
        'src/upstream/peers.ts › imports › ../burst-log.ts', 'src/upstream/peers.ts › class Peers › allDown', 'src/upstream/peers.ts › class Peers › constructor()',
        'src/upstream/peers.ts › class Peers › get quiet()', 'src/upstream/peers.ts › class Peers › reviveAll()', 'src/upstream/peers.ts › class Peers › report()',
        `${CLI} › describe('command line') › it('refuses to start with an access log it cannot open, from the flag or the file: one line, exit 2')`,
      ],
    },
    {
      id: '4d-workers',
      title: '5.4 Watch it work: the whole proxy, not one worker',
      units: [
        'src/main.ts › class WorkerStatuses', 'src/main.ts › function announceAdmin()',
        'src/main.ts › imports › ./observe/admin.ts', 'src/main.ts › imports › ./observe/status.ts', 'src/main.ts › imports › ./observe/metrics.ts',
        'src/observe/status.ts › function mergeStatuses()', 'src/observe/status.ts › function mergeBackend()', 'src/observe/status.ts › function addCounters()',
        'src/observe/status.ts › function addBackendCounters()', 'src/observe/status.ts › function addCountersOf()', 'src/observe/status.ts › class RetiredCounters',
        'src/observe/metrics.ts › function processStatus()', 'src/observe/metrics.ts › function descriptors()',
        `${CLI} › function withAdmin()`,
        `${CLI} › describe('command line') › it('--admin serves the status of the whole proxy, all workers added up, and says where after the listening line')`,
        `${CLI} › describe('command line') › it('/metrics has the process_* series of the Prometheus client, read from the process itself')`,
        `${CLI} › describe('command line') › it('counters never go down when a worker dies: the primary keeps what it had counted')`,
        "test/status.test.ts › describe('status') › it('adds up every worker\'s numbers and shows the worst health state with its reason')",
      ],
    },
    {
      id: '4e-lab',
      title: '5.4 Watch it work: the lab',
      units: [
        'test/helpers.ts › function runScript()', 'test/helpers.ts › function run()', 'test/helpers.ts › imports › node:child_process', 'test/helpers.ts › function collected()','src/demo.ts', 'test/demo.test.ts'],
    },
    {
      id: '5a-tls',
      title: '5.5 TLS termination: listeners, the first byte, SNI and certificates',
      units: [
        'src/tls/termination.ts', 'src/tls/tls-config.ts', 'src/tls/certificates.ts', 'src/tls/misdirected.ts', 'test/tls.test.ts',
        'src/core/exchange-context.ts › interface ExchangeContext › scheme',
        'src/config.ts › imports › ./tls/tls-config.ts', 'src/proxy.ts › imports › ./tls/termination.ts', 'src/proxy.ts › imports › ./tls/tls-config.ts',
        'src/proxy.ts › interface Proxy › addresses', 'src/proxy.ts › function sameListener()',
      ],
    },
    {
      id: '5b-tls-resumption',
      title: '5.5 TLS termination: resumption, workers, reload, and bad certificates',
      units: [
        'src/tls/session-cache.ts', 'src/tls/ticket-keys.ts', 'src/tls/openssl.ts', 'test/tls-cli.test.ts', 'test/tls-helpers.ts',
        'src/main.ts › imports › ./tls/ticket-keys.ts', 'src/main.ts › imports › ./tls/tls-config.ts', 'src/proxy.ts › interface ProxyOptions › ticketKeys',
        'src/proxy.ts › interface Proxy › setTicketKeys()',
      ],
    },
    {
      id: '5c-tls-cost',
      title: '5.5 TLS termination: watching it, the demo, and what a handshake costs',
      units: [
        'src/tls/tls-status.ts', 'src/tls/demo-certificate.ts', 'bench/tls.ts', 'bench/tls-targets.ts', 'test/tls-bench.test.ts', 'test/tls.browser.test.ts',
        'test/tls-demo.test.ts', 'src/demo.ts › imports › ./tls/demo-certificate.ts', 'src/demo.ts › const tls', 'src/demo.ts › function tlsFlags()',
        'src/observe/access-log.ts › interface AccessRecord › tls', 'src/observe/access-log.ts › type AccessLogWriter',
        'src/observe/prometheus.ts › imports › ../tls/tls-status.ts', 'src/observe/status.ts › imports › ../tls/tls-status.ts',
        'src/observe/status.ts › interface ProxyStatus › tls',
        'src/proxy.ts › const PLAIN_HTTP_SENT', 'src/proxy.ts › imports › ./core/request-record.ts', 'src/proxy.ts › imports › ./core/outcome.ts',
        "test/tls.test.ts › describe.skipIf('TLS termination') › it('answers plain HTTP on the TLS port with a 400 and closes, counted and logged as a refused request')",
      ],
    },
  ],
};
