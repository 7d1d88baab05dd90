import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { useFixture } from './fixture.ts';
import { raw, request } from './helpers.ts';

const fx = useFixture();

/** A backend that records every request it sees, so tests can prove a bad one never arrived. */
async function recordingProxy(): Promise<{ port: number; seen: string[] }> {
  const seen: string[] = [];
  const address = await fx.backend(
    http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      req.resume();
      req.on('end', () => res.end('ok'));
    }),
  );
  const { port } = await fx.proxy({ backends: [{ address }] });
  return { port, seen };
}

const H = 'Host: example.test\r\n';

describe('malformed requests are refused, never guessed', () => {
  it.each([
    ['Content-Length with Transfer-Encoding', `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
    ['two different Content-Lengths', `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd`, 400],
    ['a Content-Length list', `POST / HTTP/1.1\r\n${H}Content-Length: 3, 3\r\n\r\nabc`, 400],
    ['a Content-Length that is not all digits', `POST / HTTP/1.1\r\n${H}Content-Length: +3\r\n\r\nabc`, 400],
    ['a hexadecimal Content-Length', `POST / HTTP/1.1\r\n${H}Content-Length: 0x3\r\n\r\nabc`, 400],
    ['Transfer-Encoding in HTTP/1.0', `POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
    ['a coding list not ending in chunked', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n`, 400],
    ['an unknown transfer coding', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: rot13\r\n\r\n`, 501],
    ['a known coding before chunked that we do not decode', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`, 501],
    ['CONNECT', `CONNECT /x HTTP/1.1\r\n${H}\r\n`, 501],
    ['a bare CR inside a header line', `GET / HTTP/1.1\r\n${H}X-A: 1\rX-B: 2\r\n\r\n`, 400],
    ['HTTP/1.1 without Host', 'GET / HTTP/1.1\r\n\r\n', 400],
    ['two Host headers', `GET / HTTP/1.1\r\n${H}Host: other.test\r\n\r\n`, 400],
    ['whitespace before the colon', `GET / HTTP/1.1\r\nHost : example.test\r\n\r\n`, 400],
    ['obs-fold (a continuation line)', `GET / HTTP/1.1\r\n${H}X-Long: a\r\n  b\r\n\r\n`, 400],
    ['a NUL in a header value', `GET / HTTP/1.1\r\n${H}X-Evil: a\x00b\r\n\r\n`, 400],
    ['a control character in a header value', `GET / HTTP/1.1\r\n${H}X-Evil: a\x07b\r\n\r\n`, 400],
    ['a space in a header name', `GET / HTTP/1.1\r\n${H}X Evil: a\r\n\r\n`, 400],
    ['a bare LF inside a header line', `GET / HTTP/1.1\r\n${H}X-A: 1\nX-B: 2\r\n\r\n`, 400],
    ['an invalid chunk size', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n`, 400],
    ['chunk data longer than its size', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n`, 400],
    ['a request line with two spaces', `GET  / HTTP/1.1\r\n${H}\r\n`, 400],
    ['a lowercase version', `GET / http/1.1\r\n${H}\r\n`, 400],
    ['a method with a bad character', `GE(T / HTTP/1.1\r\n${H}\r\n`, 400],
    ['HTTP/2.0 in a request line', `GET / HTTP/2.0\r\n${H}\r\n`, 505],
    ['a request line over 8 KiB', `GET /${'a'.repeat(8200)} HTTP/1.1\r\n${H}\r\n`, 414],
    ['a header section over 16 KiB', `GET / HTTP/1.1\r\n${H}X-Big: ${'b'.repeat(17000)}\r\n\r\n`, 431],
    ['more than 100 header fields', `GET / HTTP/1.1\r\n${H}${'X-N: 1\r\n'.repeat(101)}\r\n`, 431],
  ])('%s: %s -> %i and close', async (_name, bytes, status) => {
    const { port, seen } = await recordingProxy();

    const reply = await raw(port, bytes);

    expect(reply).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    expect(reply).toMatch(/\r\nconnection: close\r\n/);
    // The bad request never reached the backend (a chunked body with a bad size may get its
    // head through first: the error is found mid-body, and that connection is then dropped).
    if (!/chunk/.test(_name)) expect(seen).toEqual([]);
    // ...and the proxy goes on serving everybody else.
    expect((await request(port, { path: '/after' })).body.toString()).toBe('ok');
  });

  it('refuses a smuggled request hidden by Content-Length + Transfer-Encoding; the backend never sees it', async () => {
    const { port, seen } = await recordingProxy();
    // A front end that trusted Content-Length would forward 'G' as a body; one that trusted
    // Transfer-Encoding would see the body end at "0" and then a second request, "GET /admin".
    const smuggle =
      `POST /search HTTP/1.1\r\n${H}Content-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n` +
      `0\r\n\r\nGET /admin HTTP/1.1\r\nHost: example.test\r\n\r\n`;

    const reply = await raw(port, smuggle);

    expect(reply).toMatch(/^HTTP\/1\.1 400 /);
    expect(reply.match(/HTTP\/1\.1/g)).toHaveLength(1); // one answer, then close
    expect(seen).toEqual([]);
  });

  it('answers 408 and closes when a request head does not finish in time (slowloris)', async () => {
    const address = await fx.backend();
    const { port } = await fx.proxy({ backends: [{ address }], clientHeaderTimeoutMs: 200 });

    const reply = await raw(port, `GET / HTTP/1.1\r\n${H}X-Slow: 1\r\n`); // never finished

    expect(reply).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
  });
});
