// One connection per request, for when wrk is not installed: autocannon cannot do this.
// Prints the same JSON line as autocannon-runner.ts.
import net from 'node:net';
import { printResult } from './generator-result.ts';

const [port, concurrency, seconds] = process.argv.slice(2).map(Number) as [number, number, number];
const request = Buffer.from('GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n');
const latencies: number[] = [];
let errors = 0;
const stopAt = Date.now() + seconds * 1000;

async function loop(): Promise<void> {
  while (Date.now() < stopAt) {
    const started = process.hrtime.bigint();
    const ok = await new Promise<boolean>((resolve) => {
      // No FIN after the request: like a browser (and wrk), wait for the server to close.
      const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
      let head = '';
      socket.on('data', (chunk: Buffer) => {
        if (head.length < 12) head += chunk.toString('latin1', 0, 12);
      });
      socket.on('error', () => resolve(false));
      socket.on('close', () => resolve(head.startsWith('HTTP/1.1 200')));
    });
    if (ok) latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
    else errors++;
  }
}

const cpuBefore = process.cpuUsage(); // startup (tsx, imports) is not the generator's load
await Promise.all(Array.from({ length: concurrency }, loop));
printResult(latencies, errors, seconds, cpuBefore);
