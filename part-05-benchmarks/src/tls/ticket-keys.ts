// Session ticket keys. A ticket is the session, encrypted with a key only the server knows; any
// process holding the key can resume it. Node makes a key per server, so each worker would refuse
// the others' tickets: the primary makes the key and hands it to every worker (in the environment
// at fork, then by message on each rotation). Rotating bounds what a stolen key decrypts.
import { randomBytes } from 'node:crypto';

/** Node's ticket key: 16 bytes of name, 16 of HMAC secret, 16 of AES key. */
export const TICKET_KEY_BYTES = 48;
const ENV = 'LB_TLS_TICKET_KEYS';

export function newTicketKeys(): Buffer {
  return randomBytes(TICKET_KEY_BYTES);
}

/** The rotation, in whichever process owns the key: `apply` gets each new key. Returns the first one. */
export class TicketKeyRotation {
  keys = newTicketKeys();
  private readonly timer: NodeJS.Timeout;

  constructor(everyMs: number, apply: (keys: Buffer) => void) {
    this.timer = setInterval(() => {
      this.keys = newTicketKeys();
      apply(this.keys);
    }, everyMs).unref();
  }

  /** What a worker forked now finds in its environment. */
  env(): Record<string, string> {
    return { [ENV]: this.keys.toString('base64') };
  }

  /** The message that carries a new key to a worker. */
  message(): { ticketKeys: string } {
    return { ticketKeys: this.keys.toString('base64') };
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** In a worker: the key the primary put in the environment (taken out of it, so no child inherits it). */
export function inheritedTicketKeys(): Buffer | undefined {
  const text = process.env[ENV];
  delete process.env[ENV];
  return text === undefined ? undefined : Buffer.from(text, 'base64');
}

/** In a worker: a rotation message from the primary, if that is what this is. */
export function ticketKeysIn(message: unknown): Buffer | undefined {
  const text = (message as { ticketKeys?: unknown } | null)?.ticketKeys;
  return typeof text === 'string' ? Buffer.from(text, 'base64') : undefined;
}
