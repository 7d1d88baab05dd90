// Our parser against Node's own (llhttp, behind a node:http server), on a few hundred generated
// requests, valid and mutated. Ours may refuse more; it must never accept what llhttp refuses,
// and where both accept, they must agree on where the message ends (the body they see).
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRequestHead } from '../src/http/parser.ts';
import { BodyDecoder, encodeChunk, LAST_CHUNK, requestFraming } from '../src/http/body.ts';
import { HttpError } from '../src/http/errors.ts';
import { connect, listen, readAll, seededRandom, shut } from './helpers.ts';
import { useFixture } from './fixture.ts';

type Verdict = { accepted: false } | { accepted: true; body: string };

// DIFF_SEED=N tries another generated set (seeds 1-12 were checked when this was written).
const random = seededRandom(Number(process.env.DIFF_SEED ?? 2026));
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

function validRequest(): string {
  const host = pick(['Host: example.test\r\n', 'host: a.b\r\n', 'HOST: x:8080\r\n', 'Host: [::1]:80\r\n', 'Host: 10.0.0.1\r\n']);
  const extra = pick(['', 'X-Id: 42\r\n', 'Accept: */*\r\nUser-Agent: t\r\n', 'Cookie: a=b; c=d\r\n', 'Connection: keep-alive, x-id\r\n']);
  const path = pick(['/', '/a/b?c=d', '/%20x', '/s?q=a|b&f={"a":1}', '/a\\b^c`', 'http://example.test/a?b', 'http://x:8080']);
  switch (pick(['get', 'options', 'length', 'chunked', 'chunked-ext'])) {
    case 'get':
      return `GET ${path} HTTP/1.1\r\n${host}${extra}\r\n`;
    case 'options':
      return `OPTIONS * HTTP/1.1\r\n${host}${extra}\r\n`;
    case 'length':
      return `POST ${path} HTTP/1.1\r\n${host}${extra}Content-Length: 5\r\n\r\nhello`;
    case 'chunked':
      return `PUT ${path} HTTP/1.1\r\n${host}Transfer-Encoding: chunked\r\n${extra}\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n`;
    default:
      return `POST ${path} HTTP/1.1\r\n${host}Transfer-Encoding: chunked\r\n\r\n4;name=val\r\nwxyz\r\n0\r\nTrailer-A: 1\r\n\r\n`;
  }
}

/** Bytes that must never slip through a field unnoticed: every C0 control, DEL, and 0x80-0xFF. */
const ODD_BYTES = [...Array.from({ length: 32 }, (_, i) => i), 0x7f, ...Array.from({ length: 128 }, (_, i) => 0x80 + i)].map((b) =>
  String.fromCharCode(b),
);

/** A small random change: the kind of thing fuzzers and smugglers try. */
function mutate(text: string): string {
  const at = Math.floor(random() * text.length);
  const fields = { start: text.indexOf('\r\n') + 2, end: Math.max(text.indexOf('\r\n\r\n'), text.indexOf('\r\n') + 2) };
  switch (pick(['insert', 'delete', 'replace', 'lf', 'space-colon', 'dup-cl', 'te', 'fold', 'case', 'field-byte', 'value-edge', 'connection', 'host', 'status'])) {
    case 'status':
      // Responses only: a status of the wrong length, or below 100 (never a real 1xx).
      return text.replace(/^(HTTP\/1\.[01]) \d{3}/, `$1 ${pick(['000', '099', '007', '1000', '20', '199'])}`);
    case 'connection':
      // A Connection option naming what frames or routes the message.
      return text.replace('\r\n\r\n', `\r\nConnection: ${pick(['Content-Length', 'transfer-encoding', 'close, Host', 'keep-alive'])}\r\n\r\n`);
    case 'host':
      return text.replace(/^host: [^\r]*/im, `Host: ${pick(['u@a', 'a/b', '', 'a, b', 'a:1:2', 'a:x', '[::1', '[zz]:80', 'a b', 'a%zz', 'a:99999', '[v1.x]'])}`);
    case 'field-byte': {
      // Anywhere in the field lines: inside a name, a value, or next to the colon.
      const inside = fields.start + Math.floor(random() * (fields.end - fields.start));
      return text.slice(0, inside) + pick(ODD_BYTES) + text.slice(inside);
    }
    case 'value-edge':
      // At the start or end of a value, where a trim() that knows more than SP and HTAB would hide it.
      return random() < 0.5 ? text.replace(/: /, `: ${pick(ODD_BYTES)}`) : text.replace(/(\r\n[A-Za-z-]+: [^\r\n]*)\r\n/, `$1${pick(ODD_BYTES)}\r\n`);
    case 'insert':
      return text.slice(0, at) + pick(['\x00', '\r', '\n', ' ', '\t', ':', ',', '\x7f', 'é', '0']) + text.slice(at);
    case 'delete':
      return text.slice(0, at) + text.slice(at + 1);
    case 'replace':
      return text.slice(0, at) + pick(['\r\n', ';', '"', 'A', '\x01']) + text.slice(at + 1);
    case 'lf':
      return text.replace('\r\n', '\n');
    case 'space-colon':
      return text.replace(/^([A-Za-z-]+):/m, '$1 :');
    case 'dup-cl':
      return text.replace('\r\n\r\n', `\r\nContent-Length: ${pick(['5', '6', '0'])}\r\n\r\n`);
    case 'te':
      return text.replace('\r\n\r\n', `\r\nTransfer-Encoding: ${pick(['chunked', 'gzip', 'chunked, chunked', ' chunked'])}\r\n\r\n`);
    case 'fold':
      return text.replace('\r\n', '\r\n X-Folded: y\r\n');
    default:
      return text.replace('HTTP/1.1', pick(['HTTP/1.0', 'http/1.1', 'HTTP/1.10', 'HTTP/2.0']));
  }
}

/** Our verdict: accept only a complete first message, and report its body. */
function ours(text: string): Verdict {
  const bytes = Buffer.from(text, 'latin1');
  try {
    const parsed = parseRequestHead(bytes);
    if (!parsed) return { accepted: false };
    const decoder = new BodyDecoder(requestFraming(parsed.head), 400);
    const body: Buffer[] = [];
    const rest = decoder.push(bytes.subarray(parsed.length), (data) => body.push(data));
    if (rest === undefined) return { accepted: false };
    return { accepted: true, body: Buffer.concat(body).toString('latin1') };
  } catch (err) {
    if (err instanceof HttpError) return { accepted: false };
    throw err;
  }
}

/** A method llhttp does not know, or a chunk-size line with SP or HTAB in it. */
function tolerated(text: string): boolean {
  const method = text.slice(0, text.indexOf(' '));
  const body = text.slice(text.indexOf('\r\n\r\n') + 4);
  return !http.METHODS.includes(method) || /^[0-9a-fA-F]+[^\r\n]*[ \t]/m.test(body);
}

/** The request as the proxy sends it on: a method llhttp knows in place of one it does not, the body re-framed. */
function asForwarded(text: string): string {
  const bytes = Buffer.from(text, 'latin1');
  const { head, length } = parseRequestHead(bytes)!;
  const framing = requestFraming(head);
  const body: Buffer[] = [];
  new BodyDecoder(framing, 400).push(bytes.subarray(length), (data) => body.push(data));
  const method = http.METHODS.includes(head.method) ? head.method : 'GET';
  const fields = head.headers.map(([name, value]) => `${name}: ${value}\r\n`).join('');
  const payload = framing.kind === 'chunked' ? Buffer.concat([...body.flatMap(encodeChunk), LAST_CHUNK]) : Buffer.concat(body);
  return `${method} ${head.target} HTTP/1.1\r\n${fields}\r\n${payload.toString('latin1')}`;
}

let server: http.Server;
let port: number;
let current: ((verdict: Verdict) => void) | undefined;

beforeAll(async () => {
  let request: http.IncomingMessage | undefined;
  let body: Buffer[] = [];
  const settle = (verdict: Verdict) => {
    current?.(verdict);
    current = undefined;
    request = undefined;
    body = [];
  };
  server = http.createServer((req, res) => {
    request = req;
    req.on('data', (chunk: Buffer) => body.push(chunk));
    req.on('end', () => {
      settle({ accepted: true, body: Buffer.concat(body).toString('latin1') });
      res.end();
    });
  });
  server.on('clientError', (_err, socket) => {
    // Bytes after a complete first message can fail to parse in the same pass, before the
    // request's 'end' is emitted: the first message was still accepted whole.
    if (request?.complete) {
      request.pause();
      for (let chunk: Buffer | null; (chunk = request.read() as Buffer | null) !== null; ) body.push(chunk);
      settle({ accepted: true, body: Buffer.concat(body).toString('latin1') });
    } else settle({ accepted: false });
    socket.destroy();
  });
  ({ port } = await listen(server));
});

afterAll(() => shut(server));

/** llhttp's verdict: send the bytes and a FIN, see whether a whole request came out. */
async function node(text: string): Promise<Verdict> {
  const verdict = new Promise<Verdict>((resolve) => (current = resolve));
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.resume();
  socket.end(Buffer.from(text, 'latin1'));
  await once(socket, 'close');
  // No request and no error before the close: llhttp was still waiting for more.
  if (current) {
    current({ accepted: false });
    current = undefined;
  }
  return verdict;
}

describe('differential test against llhttp', () => {
  it('never accepts what llhttp rejects, and agrees on where messages end (600 generated requests)', async () => {
    const cases = Array.from({ length: 600 }, (_, i) => (i % 4 === 0 ? validRequest() : mutate(validRequest())));
    const tally = { bothAccept: 0, bothReject: 0, onlyNodeAccepts: 0, asForwarded: 0 };
    for (const text of cases) {
      const mine = ours(text);
      let theirs = await node(text);
      if (mine.accepted && !theirs.accepted && tolerated(text)) {
        // What we accept on purpose and llhttp does not (a method it does not know, whitespace in a
        // chunk line): llhttp must read the request as we forward it as the same message.
        theirs = await node(asForwarded(text));
        tally.asForwarded++;
      }
      if (mine.accepted) {
        expect(theirs, `we accepted what llhttp rejects: ${JSON.stringify(text)}`).toEqual(mine);
        tally.bothAccept++;
      } else if (theirs.accepted) tally.onlyNodeAccepts++;
      else tally.bothReject++;
    }
    // The generator must exercise both sides, or the comparison proves nothing.
    expect(tally.bothAccept).toBeGreaterThan(100);
    expect(tally.bothReject).toBeGreaterThan(100);
    console.log(`differential: ${JSON.stringify(tally)}`);
  });

  it('parses a head that arrives one byte at a time exactly as one that arrives whole', () => {
    for (let n = 0; n < 20; n++) {
      const text = validRequest();
      const bytes = Buffer.from(text, 'latin1');
      const whole = parseRequestHead(bytes);
      // Every proper prefix that ends inside the head must ask for more, never fail or guess.
      for (let i = 1; i < whole!.length; i++) expect(parseRequestHead(bytes.subarray(0, i))).toBeUndefined();
      expect(parseRequestHead(bytes.subarray(0, whole!.length))).toEqual(whole);
    }
  });
});

// Responses: the proxy's framing against llhttp's, from the raw bytes a backend sends. Where the
// proxy passes a response on, llhttp reading the backend directly must see the same status and
// body; and whatever happened, the next response on the client connection must be its own.
function validResponse(): string {
  switch (pick(['length', 'chunked', 'close', 'close-empty', 'no-content', 'not-modified', 'http10'])) {
    case 'not-modified':
      // Bodiless whatever its Content-Length says; a second, different one makes it invalid.
      return 'HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n';
    case 'length':
      return 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Id: 1\r\n\r\nhello';
    case 'chunked':
      return 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n';
    case 'close':
      return 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end';
    case 'close-empty':
      return 'HTTP/1.1 200 OK\r\nServer: x\r\n\r\n';
    case 'no-content':
      return 'HTTP/1.1 204 No Content\r\nX-Id: 2\r\n\r\n';
    default:
      return 'HTTP/1.0 200 OK\r\nServer: old\r\n\r\nold style';
  }
}

// llhttp itself, as node:http uses it, reading a byte stream of responses to GET requests.
// process.binding is the only way in, and deprecated (DEP0111): its warning is held back here.
const warningsWere = process.noDeprecation;
process.noDeprecation = true;
const { HTTPParser } = (process as unknown as { binding(name: string): { HTTPParser: LlhttpParserClass } }).binding('http_parser');
process.noDeprecation = warningsWere;

interface LlhttpParserClass {
  new (): LlhttpParser;
  RESPONSE: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
}
interface LlhttpParser {
  initialize(kind: number, resource: object): void;
  execute(data: Buffer): number | Error;
  finish(): undefined | Error;
  [callback: number]: (...args: never[]) => unknown;
}

type Message = { status: number; keepAlive: boolean; body: string };

/** The complete responses llhttp reads from bytes that end with a close, and whether it then objected. */
function llhttpResponses(bytes: Buffer): { messages: Message[]; error: boolean } {
  const parser = new HTTPParser();
  parser.initialize(HTTPParser.RESPONSE, {});
  const messages: Message[] = [];
  let head = { status: 0, keepAlive: false };
  let body: Buffer[] = [];
  parser[HTTPParser.kOnHeadersComplete] = (...args: unknown[]) => {
    head = { status: args[5] as number, keepAlive: args[8] as boolean };
    body = [];
    return 0;
  };
  parser[HTTPParser.kOnBody] = (chunk: Buffer) => void body.push(Buffer.from(chunk));
  parser[HTTPParser.kOnMessageComplete] = () => {
    // An interim response (1xx but 101) comes before the response it announces: not a message of its own here.
    if (head.status < 100 || head.status > 199 || head.status === 101) messages.push({ ...head, body: Buffer.concat(body).toString('latin1') });
  };
  const error = parser.execute(bytes) instanceof Error || parser.finish() instanceof Error;
  return { messages, error };
}

describe('differential test of response framing against llhttp', () => {
  const fx = useFixture();

  it('passes on only what llhttp reads the same way, and never desyncs the client (200 generated responses)', async () => {
    let current = '';
    // The head and the rest leave in two writes, so the proxy often reads the head alone.
    const backend = net.createServer((socket) => {
      socket.on('error', () => {});
      socket.once('data', (chunk: Buffer) => {
        if (chunk.toString('latin1').startsWith('GET /next ')) return socket.end('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext');
        const bytes = Buffer.from(current, 'latin1');
        const split = Math.max(bytes.indexOf('\r\n\r\n') + 4, 4);
        socket.write(bytes.subarray(0, split), () => socket.end(bytes.subarray(split)));
      });
    });
    const { port } = await fx.proxy({ backends: [{ address: await fx.backend(backend) }] });
    const tally = { passed: 0, refused: 0 };
    for (let i = 0; i < 200; i++) {
      current = i % 3 === 0 ? validResponse() : mutate(validResponse());
      const direct = llhttpResponses(Buffer.from(current, 'latin1')).messages[0];
      // Two requests on one client connection; the proxy's whole answer, read by llhttp.
      const client = await connect(port);
      client.write('GET /case HTTP/1.1\r\nHost: a.test\r\n\r\nGET /next HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n');
      const proxied = llhttpResponses(await readAll(client));
      client.destroy();
      const [first, second] = proxied.messages;
      const what = JSON.stringify(current);
      if (first && first.status !== 502) {
        expect({ status: direct?.status, body: direct?.body }, `the proxy passed on what llhttp reads otherwise: ${what}`).toEqual({
          status: first.status,
          body: first.body,
        });
        tally.passed++;
      } else tally.refused++;
      // Whatever the first response was, if it let the connection live, the next one is whole and its own.
      if (first?.keepAlive) {
        expect({ error: proxied.error, second }, `desync after ${what}`).toEqual({ error: false, second: { status: 200, keepAlive: false, body: 'next' } });
      }
    }
    expect(tally.passed).toBeGreaterThan(80);
    expect(tally.refused).toBeGreaterThan(20);
    console.log(`response differential: ${JSON.stringify(tally)}`);
  });
});
