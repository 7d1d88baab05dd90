// The load generator in its own process: runs autocannon and prints one JSON line with the
// result and this process's own CPU time (to see when the generator is the bottleneck).
import autocannon from 'autocannon';

const [url, connections, seconds, close, workers] = process.argv.slice(2);
const cpuBefore = process.cpuUsage(); // startup (tsx, imports) is not the generator's load
const result = await autocannon({
  url: url!,
  connections: Number(connections),
  duration: Number(seconds),
  headers: close === 'close' ? { connection: 'close' } : {},
  ...(Number(workers) > 0 && { workers: Number(workers) }),
});
const cpu = process.cpuUsage(cpuBefore);
console.log(
  JSON.stringify({
    requests: result.requests.total,
    rps: result.requests.total / (result.duration || Number(seconds)),
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
    generatorCpuMs: (cpu.user + cpu.system) / 1000,
  }),
);
