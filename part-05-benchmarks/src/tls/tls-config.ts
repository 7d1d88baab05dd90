// Listeners and TLS in the configuration. One listener is `listen` (with `tls: {cert, key}` it is
// a TLS one); several are `listeners: [{listen, tls?}]`, plain and TLS side by side as nginx's :80
// and :443. A virtual host may name its own certificate (`virtualHosts[i].tls`), chosen by SNI.
// The top-level `tls` also holds the settings nginx spreads over its ssl_* directives.
import type { Address } from '../address.ts';
import { address, ConfigError, object, onlyKeys, positiveInteger, show, type Json } from '../config-checks.ts';
import { loadCertificate, type Certificate } from './certificates.ts';

export interface ListenerConfig {
  address: Address;
  /** The listener's default certificate (nginx's default_server); absent on a plain listener. */
  certificate?: Certificate;
}

/** A virtual host's own certificate, served when the client's SNI names one of its serverNames. */
export interface HostCertificate {
  serverNames: string[];
  certificate: Certificate;
}

export interface TlsSettings {
  /** Oldest protocol accepted (nginx's ssl_protocols): TLS 1.2 unless told TLSv1.3. */
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  /** Resumption by tickets (nginx's ssl_session_tickets): the key is the primary's, shared by workers. */
  sessionTickets: boolean;
  /** Resumption by session id, from a cache in each worker (nginx's ssl_session_cache, but not shared). */
  sessionCache: boolean;
  /** How long a session may be resumed (nginx's ssl_session_timeout). */
  sessionTimeoutMs: number;
  /** A new ticket key this often; tickets made with the old one then need a full handshake. */
  ticketKeyRotationMs: number;
  /** Access log lines end with $ssl_protocol $ssl_cipher. */
  logProtocol: boolean;
  hosts: HostCertificate[];
}

export interface ListenerFields {
  /** The first listener's address (what --listen overrides). */
  listen: Address;
  /** Every listener, in config order; the first one is at `listen`. */
  listeners: ListenerConfig[];
  tls: TlsSettings;
}

export const TLS_DEFAULTS = {
  minVersion: 'TLSv1.2' as const,
  sessionTickets: true,
  sessionCache: true,
  sessionTimeoutMs: 300_000, // nginx's ssl_session_timeout and HAProxy's tune.ssl.lifetime: 5 minutes
  ticketKeyRotationMs: 3_600_000,
  logProtocol: false,
};
const SETTINGS = Object.keys(TLS_DEFAULTS);

/** `listen`, `listeners`, the top-level `tls` and each virtual host's `tls`, from a config document. */
export function listenerFields(doc: Json): ListenerFields {
  const top = doc.tls === undefined ? {} : object(doc.tls, 'tls');
  onlyKeys(top, 'tls', ['cert', 'key', ...SETTINGS]);
  const listeners: ListenerConfig[] = [];
  if (doc.listeners !== undefined) {
    if (doc.listen !== undefined) throw new ConfigError('listen', 'give "listen" or "listeners", not both');
    if (top.cert !== undefined || top.key !== undefined) throw new ConfigError('tls', 'with "listeners", each listener names its own cert and key');
    if (!Array.isArray(doc.listeners) || doc.listeners.length === 0) throw new ConfigError('listeners', `must be a non-empty list, got ${show(doc.listeners)}`);
    doc.listeners.forEach((raw, i) => {
      const entry = object(raw, `listeners[${i}]`);
      onlyKeys(entry, `listeners[${i}]`, ['listen', 'tls']);
      listeners.push(listener(entry.listen, entry.tls, `listeners[${i}]`));
    });
  } else {
    listeners.push(listener(doc.listen, top.cert === undefined && top.key === undefined ? undefined : top, ''));
  }
  return { listen: listeners[0]!.address, listeners, tls: settings(top, hostCertificates(doc.virtualHosts)) };
}

function listener(listen: unknown, tls: unknown, path: string): ListenerConfig {
  const at = (key: string) => (path ? `${path}.${key}` : key);
  const config: ListenerConfig = { address: address(listen, at('listen')) };
  if (tls !== undefined) {
    const entry = object(tls, at('tls'));
    if (path) onlyKeys(entry, at('tls'), ['cert', 'key']);
    config.certificate = loadCertificate(entry.cert, entry.key, at('tls'));
  }
  return config;
}

function hostCertificates(raw: unknown): HostCertificate[] {
  if (!Array.isArray(raw)) return []; // validateConfig says what is wrong with it
  const hosts: HostCertificate[] = [];
  raw.forEach((entry: Json, i) => {
    if (entry?.tls === undefined || !Array.isArray(entry.serverNames)) return; // validateConfig says what is wrong
    const tls = object(entry.tls, `virtualHosts[${i}].tls`);
    onlyKeys(tls, `virtualHosts[${i}].tls`, ['cert', 'key']);
    const serverNames = (entry.serverNames as string[]).map((name) => name.toLowerCase());
    hosts.push({ serverNames, certificate: loadCertificate(tls.cert, tls.key, `virtualHosts[${i}].tls`) });
  });
  return hosts;
}

function settings(top: Json, hosts: HostCertificate[]): TlsSettings {
  const flag = (key: 'sessionTickets' | 'sessionCache' | 'logProtocol') => {
    const value = top[key] ?? TLS_DEFAULTS[key];
    if (typeof value !== 'boolean') throw new ConfigError(`tls.${key}`, `must be true or false, got ${show(value)}`);
    return value;
  };
  const minVersion = top.minVersion ?? TLS_DEFAULTS.minVersion;
  if (minVersion !== 'TLSv1.2' && minVersion !== 'TLSv1.3') throw new ConfigError('tls.minVersion', `must be "TLSv1.2" or "TLSv1.3", got ${show(minVersion)}`);
  return {
    minVersion,
    sessionTickets: flag('sessionTickets'),
    sessionCache: flag('sessionCache'),
    sessionTimeoutMs: positiveInteger(top.sessionTimeoutMs ?? TLS_DEFAULTS.sessionTimeoutMs, 'tls.sessionTimeoutMs'),
    ticketKeyRotationMs: positiveInteger(top.ticketKeyRotationMs ?? TLS_DEFAULTS.ticketKeyRotationMs, 'tls.ticketKeyRotationMs'),
    logProtocol: flag('logProtocol'),
    hosts,
  };
}

/** Whether any listener speaks TLS (and so whether ticket keys are needed). */
export function hasTls(config: ListenerFields): boolean {
  return config.listeners.some((l) => l.certificate !== undefined);
}
