// TLS termination: the handshake happens here, then the decrypted stream is an ordinary client
// connection. Before the handshake, the first byte says what came: 0x16 opens a TLS handshake
// record; a letter is plain HTTP sent to an HTTPS port (400, nginx's 497); anything else is closed.
// The handshake, first byte included, must finish within clientHeaderTimeoutMs, as nginx bounds it
// with client_header_timeout.
import type net from 'node:net';
import tls from 'node:tls';
import { constants } from 'node:crypto';
import { VirtualHosts } from '../core/virtual-hosts.ts';
import { errorBody, errorResponse } from '../http/errors.ts';
import type { ClientContext } from '../core/client-connection.ts';
import type { ProxyConfig } from '../config.ts';
import type { Certificate } from './certificates.ts';
import { SessionCache } from './session-cache.ts';
import { failureReason, TlsCounters, type TlsStatus } from './tls-status.ts';
import { newTicketKeys } from './ticket-keys.ts';
import { sniChecked } from './misdirected.ts';

const TLS_HANDSHAKE_RECORD = 0x16;
const PLAIN_HTTP = 'plain HTTP sent to an HTTPS port';

/** One TLS listener's certificates, made into OpenSSL contexts: its default, and the virtual hosts'. */
export interface ListenerCertificates {
  default: tls.SecureContext;
  byHost: tls.SecureContext[];
  /** SNI name -> index into byHost (the same matching as Host: exact, then the longest wildcard). */
  names: VirtualHosts;
}

export class TlsTermination {
  readonly counters = new TlsCounters();
  /** Every TLS socket names this server: Node sends it the session cache's events. It never listens. */
  private readonly hub = tls.createServer();
  private readonly cache: SessionCache;
  /** By listener index; undefined for a plain listener. */
  private certificates: Array<ListenerCertificates | undefined> = [];

  constructor(
    private config: ProxyConfig,
    private ticketKeys = newTicketKeys(),
  ) {
    this.cache = new SessionCache(() => this.config.tls.sessionTimeoutMs);
    if (config.tls.sessionCache) this.cache.serve(this.hub); // for the process's life: see reload()
    this.build();
  }

  /**
   * New certificates and settings (SIGHUP), for new connections; open ones keep what they agreed
   * on. Returns what could not change without a restart, if anything did.
   */
  reload(config: ProxyConfig): string | undefined {
    const before = this.config.tls;
    this.config = { ...config, tls: { ...config.tls, sessionCache: before.sessionCache, ticketKeyRotationMs: before.ticketKeyRotationMs } };
    this.build();
    if (config.tls.sessionCache === before.sessionCache && config.tls.ticketKeyRotationMs === before.ticketKeyRotationMs) return undefined;
    return 'reload: tls.sessionCache and tls.ticketKeyRotationMs cannot change without a restart';
  }

  setTicketKeys(keys: Buffer): void {
    this.ticketKeys = keys;
    this.build();
  }

  isTls(listener: number): boolean {
    return this.config.listeners[listener]?.certificate !== undefined;
  }

  status(): TlsStatus {
    return this.counters.status(this.cache.size);
  }

  /**
   * A new connection on TLS listener `listener`; `serve` gets it once its handshake is done.
   * `plainHttp` hears of plain HTTP answered with its 400: the request line, and the body bytes sent.
   */
  accept(raw: net.Socket, listener: number, serve: (socket: tls.TLSSocket) => void, plainHttp: (requestLine: string, bodyBytes: number) => void): void {
    const certificates = this.certificates[listener]!;
    let settled = false; // a handshake fails once, for its first reason
    const fail = (reason: string) => {
      if (!settled) this.counters.failed(reason);
      settled = true;
    };
    const timer = setTimeout(() => {
      fail('timeout');
      raw.destroy();
    }, this.config.clientHeaderTimeoutMs);
    raw.once('close', () => clearTimeout(timer));
    const ignore = () => {};
    raw.on('error', ignore);
    const leftEarly = () => raw.destroy(); // connected, sent nothing, left: nothing to count
    raw.once('end', leftEarly);
    raw.once('data', (first: Buffer) => {
      raw.pause(); // nobody else reads yet: without this the bytes after `first` would be lost
      raw.off('end', leftEarly);
      if (first[0] !== TLS_HANDSHAKE_RECORD) return this.notTls(raw, first, fail, plainHttp);
      raw.unshift(first); // the TLS socket reads it again, from the start
      const socket = new tls.TLSSocket(raw, {
        isServer: true,
        server: this.hub,
        secureContext: certificates.default,
        SNICallback: (name, done) => done(null, certificates.byHost[Number(certificates.names.route(name))] ?? certificates.default),
        ALPNProtocols: ['http/1.1'],
      });
      const onError = (err: NodeJS.ErrnoException) => fail(failureReason(err));
      const onEnd = () => socket.destroy(); // half-open is for requests: a handshake cut short is over
      socket.on('error', onError);
      socket.once('end', onEnd);
      socket.once('close', () => fail('client_closed')); // left mid-handshake (after a success, settled already)
      socket.once('secure', () => {
        clearTimeout(timer);
        settled = true; // from here on, errors are the connection's, not the handshake's
        socket.off('error', onError);
        socket.off('end', onEnd);
        this.counters.succeeded(socket.getProtocol() ?? '-', socket.getCipher()?.name ?? '-', socket.isSessionReused());
        serve(socket);
      });
    });
  }

  /**
   * What a client connection on a TLS socket works with: X-Forwarded-Proto https, Host checked
   * against the SNI (421), and, when asked for, the protocol and cipher on its access log lines.
   */
  contextFor(socket: tls.TLSSocket, base: ClientContext, listener: number): ClientContext {
    const certificates = this.certificates[listener]!;
    const protocol = `${socket.getProtocol() ?? '-'} ${socket.getCipher()?.name ?? '-'}`;
    const log = base.accessLog;
    return {
      ...base,
      scheme: 'https',
      hosts: sniChecked(base.hosts, socket.servername, certificates.names),
      accessLog: log && this.config.tls.logProtocol ? { write: (record) => log.write({ ...record, tls: protocol }) } : log,
    };
  }

  /** Plain HTTP gets its 400 and the connection ends; other bytes are not worth an answer. */
  private notTls(raw: net.Socket, first: Buffer, fail: (reason: string) => void, plainHttp: (requestLine: string, bodyBytes: number) => void): void {
    if (first[0]! >= 0x41 && first[0]! <= 0x5a) {
      fail('plain_http');
      raw.end(errorResponse(400, PLAIN_HTTP, false));
      // The access log says what was asked, as nginx logs its 400 (497) with the request line.
      const lineEnd = first.indexOf('\r\n');
      plainHttp(lineEnd > 0 && lineEnd <= 8192 ? first.toString('latin1', 0, lineEnd) : '-', errorBody(400, PLAIN_HTTP).length);
      raw.resume(); // read and drop the rest until the client closes (or the timer cuts it)
      raw.once('end', () => raw.destroy());
    } else {
      fail('not_tls');
      raw.destroy();
    }
  }

  private build(): void {
    const { tls: settings, listeners } = this.config;
    const context = (certificate: Certificate) =>
      tls.createSecureContext({
        cert: certificate.cert,
        key: certificate.key,
        minVersion: settings.minVersion,
        secureOptions: settings.sessionTickets ? 0 : constants.SSL_OP_NO_TICKET,
        sessionIdContext: 'lb-from-scratch', // the same in every worker, so that a ticket from one is good in all
        sessionTimeout: Math.ceil(settings.sessionTimeoutMs / 1000),
        ticketKeys: this.ticketKeys,
      });
    const byHost = settings.hosts.map((host) => context(host.certificate));
    const names = new VirtualHosts(settings.hosts.map((host, i) => ({ serverNames: host.serverNames, upstream: String(i) })), undefined);
    this.certificates = listeners.map((l) => (l.certificate ? { default: context(l.certificate), byHost, names } : undefined));
  }
}

export { PLAIN_HTTP };
