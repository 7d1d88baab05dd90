// Keep-alive load that counts every request that fails, for the `killed` scenario. autocannon
// reconnects quietly when a connection closes with a request in flight, so a request lost that
// way is never counted; here each request either gets a 2xx or is an error.
// Prints the same JSON line as autocannon-runner.ts.
import http from 'node:http';
import { printResult } from './generator-result.ts';

const [port, connections, seconds] = process.argv.slice(2).map(Number) as [number, number, number];
const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
const latencies: number[] = [];
let errors = 0;
const stopAt = Date.now() + seconds * 1000;

function once(): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode! >= 200 && res.statusCode! < 300));
      res.on('error', () => resolve(false));
    });
    req.on('error', () => resolve(false));
  });
}

async function loop(): Promise<void> {
  while (Date.now() < stopAt) {
    const started = process.hrtime.bigint();
    if (await once()) latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
    else errors++;
  }
}

const cpuBefore = process.cpuUsage();
await Promise.all(Array.from({ length: connections }, loop));
agent.destroy();
printResult(latencies, errors, seconds, cpuBefore);
