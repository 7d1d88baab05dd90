// `npm run slow-reader`: a fast backend, a slow client, and two proxies between them.
// Prints each proxy's peak resident memory (VmHWM from /proc), the cost of ignoring backpressure.
import net from 'node:net';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { mib: { type: 'string', default: '256' } } });
const totalBytes = Number(values.mib) * 1024 * 1024;
const chunk = Buffer.alloc(1024 * 1024, 'x');

// The backend writes as fast as the proxy takes it (it honours backpressure itself).
const backend = net.createServer((socket) => {
  socket.on('error', () => {});
  let sent = 0;
  const writeMore = () => {
    while (sent < totalBytes) {
      sent += chunk.length;
      if (!socket.write(chunk)) return void socket.once('drain', writeMore);
    }
    socket.end();
  };
  writeMore();
});
backend.listen(0, '127.0.0.1');
await once(backend, 'listening');
const backendPort = (backend.address() as net.AddressInfo).port;

const proxies = {
  'naive (ignores write() === false)': fileURLToPath(new URL('./naive-proxy.ts', import.meta.url)),
  'part 2 (pauses, resumes on drain)': fileURLToPath(new URL('../src/main.ts', import.meta.url)),
};

console.log(`A client reads ${values.mib} MiB slowly (one chunk per millisecond) through each proxy.\n`);
for (const [name, file] of Object.entries(proxies)) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', file, '--listen', '127.0.0.1:0', '--backend', `127.0.0.1:${backendPort}`],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(line.toString())![1]);
  const before = peakRssMiB(child.pid!);

  const started = Date.now();
  const client = net.connect(port, '127.0.0.1');
  let received = 0;
  client.on('data', (data: Buffer) => {
    received += data.length;
    client.pause();
    setTimeout(() => client.resume(), 1);
  });
  await once(client, 'close');
  const seconds = (Date.now() - started) / 1000;

  const peak = peakRssMiB(child.pid!);
  child.kill('SIGKILL');
  await once(child, 'exit');
  console.log(
    `${name.padEnd(36)} peak RSS ${peak.toFixed(0).padStart(5)} MiB` +
      ` (idle ${before.toFixed(0)} MiB), ${(received / 1048576).toFixed(0)} MiB in ${seconds.toFixed(1)} s`,
  );
}
backend.close();

/** Peak resident set size of a process since it started, from /proc (Linux). */
function peakRssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]);
  return kib / 1024;
}
