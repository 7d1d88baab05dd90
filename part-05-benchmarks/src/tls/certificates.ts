// A certificate and its key, read from PEM files and checked before anything listens: a file
// that cannot be read, a PEM that does not parse, a key that is not the certificate's, or a
// certificate out of its dates stops the start (exit 2) or rejects a reload, with one line.
import { readFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import tls from 'node:tls';
import { ConfigError } from '../config-checks.ts';

export interface Certificate {
  certFile: string;
  keyFile: string;
  /** The PEM texts, as read (the certificate file may hold the chain after it). */
  cert: Buffer;
  key: Buffer;
  /** When it stops being valid (for the status page and the log). */
  validTo: Date;
}

/** Reads and checks one certificate and its key; `path` names the config field ("listeners[0].tls"). */
export function loadCertificate(certFile: unknown, keyFile: unknown, path: string, now = Date.now()): Certificate {
  const certPath = file(certFile, `${path}.cert`);
  const keyPath = file(keyFile, `${path}.key`);
  const cert = read(certPath, `${path}.cert`);
  const key = read(keyPath, `${path}.key`);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new ConfigError(`${path}.cert`, `${certPath} is not a PEM certificate (OpenSSL: ${short(err)})`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new ConfigError(`${path}.key`, `${keyPath} is not a PEM private key (OpenSSL: ${short(err)})`);
  }
  if (!x509.checkPrivateKey(privateKey)) throw new ConfigError(`${path}.key`, `${keyPath} is not the key of the certificate in ${certPath}`);
  // Refused, not warned about: every client would refuse it anyway, one handshake at a time.
  const validTo = new Date(x509.validTo);
  if (validTo.getTime() < now) throw new ConfigError(`${path}.cert`, `${certPath} expired on ${validTo.toISOString()} (renew it, then start again)`);
  const validFrom = new Date(x509.validFrom);
  if (validFrom.getTime() > now) throw new ConfigError(`${path}.cert`, `${certPath} is not valid before ${validFrom.toISOString()}`);
  try {
    tls.createSecureContext({ cert, key }); // what the listener will do: anything OpenSSL still dislikes is said now
  } catch (err) {
    throw new ConfigError(`${path}.cert`, `${certPath} and ${keyPath} cannot be used together (OpenSSL: ${short(err)})`);
  }
  return { certFile: certPath, keyFile: keyPath, cert, key, validTo };
}

function file(raw: unknown, path: string): string {
  if (typeof raw !== 'string' || raw === '') throw new ConfigError(path, `must be the path of a PEM file, got ${JSON.stringify(raw) ?? 'nothing'}`);
  return raw;
}

function read(path: string, field: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(field, `cannot read ${path}: ${(err as Error).message.replace(/, open .*$/, '')}`);
  }
}

/** OpenSSL's messages carry codes nobody reads: keep the words. */
function short(err: unknown): string {
  return (err as Error).message.replace(/^error:[0-9A-F]+:[^:]*:[^:]*:/, '');
}
