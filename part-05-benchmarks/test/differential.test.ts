// Our parser against Node's own (llhttp, behind a node:http server), on a few hundred generated
// requests, valid and mutated. Ours may refuse more; it must never accept what llhttp refuses,
// and where both accept, they must agree on where the message ends (the body they see).
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRequestHead } from '../src/http/parser.ts';
import { BodyDecoder, requestFraming } from '../src/http/body.ts';
import { HttpError } from '../src/http/errors.ts';
import { listen, seededRandom, shut } from './helpers.ts';

type Verdict = { accepted: false } | { accepted: true; body: string };

// DIFF_SEED=N tries another generated set (seeds 1-12 were checked when this was written).
const random = seededRandom(Number(process.env.DIFF_SEED ?? 2026));
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

function validRequest(): string {
  const host = pick(['Host: example.test\r\n', 'host: a.b\r\n', 'HOST: x:8080\r\n']);
  const extra = pick(['', 'X-Id: 42\r\n', 'Accept: */*\r\nUser-Agent: t\r\n', 'Cookie: a=b; c=d\r\n']);
  const path = pick(['/', '/a/b?c=d', '/%20x', '*']);
  switch (pick(['get', 'length', 'chunked', 'chunked-ext'])) {
    case 'get':
      return `GET ${path} HTTP/1.1\r\n${host}${extra}\r\n`;
    case 'length':
      return `POST ${path} HTTP/1.1\r\n${host}${extra}Content-Length: 5\r\n\r\nhello`;
    case 'chunked':
      return `PUT ${path} HTTP/1.1\r\n${host}Transfer-Encoding: chunked\r\n${extra}\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n`;
    default:
      return `POST ${path} HTTP/1.1\r\n${host}Transfer-Encoding: chunked\r\n\r\n4;name=val\r\nwxyz\r\n0\r\nTrailer-A: 1\r\n\r\n`;
  }
}

/** A small random change: the kind of thing fuzzers and smugglers try. */
function mutate(text: string): string {
  const at = Math.floor(random() * text.length);
  switch (pick(['insert', 'delete', 'replace', 'lf', 'space-colon', 'dup-cl', 'te', 'fold', 'case'])) {
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

describe('part 4: differential test against llhttp', () => {
  it('never accepts what llhttp rejects, and agrees on where messages end (400 generated requests)', async () => {
    const cases = Array.from({ length: 400 }, (_, i) => (i % 4 === 0 ? validRequest() : mutate(validRequest())));
    const tally = { bothAccept: 0, bothReject: 0, onlyNodeAccepts: 0 };
    for (const text of cases) {
      const [mine, theirs] = [ours(text), await node(text)];
      if (mine.accepted) {
        expect(theirs, `we accepted what llhttp rejects: ${JSON.stringify(text)}`).toEqual(mine);
        tally.bothAccept++;
      } else if (theirs.accepted) tally.onlyNodeAccepts++;
      else tally.bothReject++;
    }
    // The generator must exercise both sides, or the comparison proves nothing.
    expect(tally.bothAccept).toBeGreaterThan(100);
    expect(tally.bothReject).toBeGreaterThan(50);
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
