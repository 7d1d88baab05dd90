// The one JSON line every load generator prints for the harness: requests, rate, latency
// percentiles, errors, and the generator's own CPU time since `cpuBefore`.
export function printResult(latencies: number[], errors: number, seconds: number, cpuBefore: NodeJS.CpuUsage): void {
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  const cpu = process.cpuUsage(cpuBefore);
  console.log(
    JSON.stringify({
      requests: latencies.length,
      rps: latencies.length / seconds,
      p50: at(0.5),
      p99: at(0.99),
      errors,
      generatorCpuMs: (cpu.user + cpu.system) / 1000,
    }),
  );
}
