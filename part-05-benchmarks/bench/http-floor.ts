// The HTTP floor: the least an HTTP/1.1 keep-alive proxy in Node.js must pay, as the byte pump is
// for TCP. NOT A PRODUCT. It parses and rebuilds heads (X-Forwarded-For and Via added, hop-by-hop
// fields dropped) and balances each request round-robin over pooled keep-alive backend sockets,
// with listeners attached once per socket. It leaves out everything else the book's proxy
// guarantees: no validation, no chunked bodies (Content-Length only), no timeouts, no health, no
// retries, no limits. A harness baseline only: what those guarantees cost is measured against it.
import net from 'node:net';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
const CRLFCRLF = Buffer.from('\r\n\r\n');
const backends = process.argv.slice(2).map((address) => ({ host: address.split(':')[0]!, port: Number(address.split(':')[1]) }));
const idle: BackendSocket[][] = backends.map(() => []);
let next = 0;

/** A head's start line, fields (lower-cased names) and body length. */
function parseHead(text: string): { line: string; fields: Array<[string, string]>; length: number; close: boolean } {
  const lines = text.split('\r\n');
  const fields: Array<[string, string]> = [];
  let length = 0;
  let close = false;
  for (let i = 1; i < lines.length; i++) {
    const colon = lines[i]!.indexOf(':');
    const name = lines[i]!.slice(0, colon).toLowerCase();
    const value = lines[i]!.slice(colon + 1).trim();
    if (name === 'content-length') length = Number(value);
    if (name === 'connection' && value.toLowerCase() === 'close') close = true;
    if (!HOP_BY_HOP.has(name)) fields.push([name, value]);
  }
  return { line: lines[0]!, fields, length, close };
}

function serialize(line: string, fields: Array<[string, string]>): string {
  let text = `${line}\r\n`;
  for (const [name, value] of fields) text += `${name}: ${value}\r\n`;
  return `${text}via: 1.1 http-floor\r\n\r\n`;
}

/** A backend socket and whoever uses it now; its listeners are attached once, when it opens. */
class BackendSocket {
  owner: Client | undefined;
  readonly socket: net.Socket;

  constructor(readonly index: number) {
    this.socket = net.connect(backends[index]!);
    this.socket.setNoDelay(true); // as every proxy here: no Nagle delay on a small write
    this.socket.on('data', (data: Buffer) => this.owner?.backendData(data));
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      const pool = idle[index]!;
      if (pool.includes(this)) pool.splice(pool.indexOf(this), 1);
      this.owner?.backendClosed();
    });
  }
}

/** One client connection, and the backend socket of the request in flight. */
class Client {
  private buffer: Buffer = Buffer.alloc(0);
  private backend: BackendSocket | undefined;
  private response: Buffer = Buffer.alloc(0);
  /** Response body bytes still to relay; -1 while the head has not arrived. */
  private remaining = -1;
  private closeAfter = false;

  constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.clientData(chunk));
    socket.on('error', () => {});
    socket.on('close', () => this.backend?.socket.destroy());
  }

  private clientData(chunk: Buffer): void {
    this.buffer = this.buffer.length > 0 ? Buffer.concat([this.buffer, chunk]) : chunk;
    if (!this.backend) this.nextRequest();
  }

  private nextRequest(): void {
    const end = this.buffer.indexOf(CRLFCRLF);
    if (end === -1) return;
    const head = parseHead(this.buffer.toString('latin1', 0, end));
    if (this.buffer.length < end + 4 + head.length) return; // the body is not all here yet
    const body = this.buffer.subarray(end + 4, end + 4 + head.length);
    this.buffer = this.buffer.subarray(end + 4 + head.length);
    this.closeAfter = head.close;
    head.fields.push(['x-forwarded-for', this.socket.remoteAddress ?? '']);
    const index = next++ % backends.length;
    this.backend = idle[index]!.pop() ?? new BackendSocket(index);
    this.backend.owner = this;
    const out = serialize(head.line.replace(/HTTP\/1\.0$/, 'HTTP/1.1'), head.fields);
    this.backend.socket.write(body.length > 0 ? Buffer.concat([Buffer.from(out, 'latin1'), body]) : out); // one write
  }

  backendData(data: Buffer): void {
    if (this.remaining === -1) {
      this.response = this.response.length > 0 ? Buffer.concat([this.response, data]) : data;
      const end = this.response.indexOf(CRLFCRLF);
      if (end === -1) return;
      const head = parseHead(this.response.toString('latin1', 0, end));
      if (this.closeAfter) head.fields.push(['connection', 'close']);
      const body = this.response.subarray(end + 4);
      // Head and the first body bytes in one write.
      this.socket.write(Buffer.concat([Buffer.from(serialize(head.line, head.fields), 'latin1'), body]));
      this.response = Buffer.alloc(0);
      this.remaining = head.length - body.length;
    } else {
      if (data.length > 0) this.socket.write(data);
      this.remaining -= data.length;
    }
    if (this.remaining > 0 || !this.backend) return;
    // The response is complete: the backend socket goes back to its pool.
    this.backend.owner = undefined;
    idle[this.backend.index]!.push(this.backend);
    this.backend = undefined;
    this.remaining = -1;
    if (this.closeAfter) return void this.socket.end();
    this.nextRequest();
  }

  /** The backend went away mid-exchange: a 502 if nothing was relayed yet, else cut the client. */
  backendClosed(): void {
    this.backend = undefined;
    if (this.remaining === -1) this.socket.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    else this.socket.destroy();
  }
}

const server = net.createServer((socket) => new Client(socket));
server.listen(0, '127.0.0.1', () => {
  console.log(`listening on 127.0.0.1:${(server.address() as net.AddressInfo).port}`);
});
