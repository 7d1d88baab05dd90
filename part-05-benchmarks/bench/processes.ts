// Child processes for the harness: start, wait for "listening on", measure CPU, stop.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, readdirSync } from 'node:fs';

export interface Started {
  /** The process under test (none for "direct"). */
  child?: ChildProcess;
  port: number;
  stop(): Promise<void>;
}

/** Runs a command until it prints "listening on HOST:PORT" (or `ready` matches). */
const children = new Set<ChildProcess>();
// Whatever happens to the harness, it must not leave servers running behind it.
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

export async function start(command: string, args: string[], ready = /listening on [\d.]+:(\d+)/, env?: NodeJS.ProcessEnv): Promise<Started> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env && { ...process.env, ...env } });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
    const look = (chunk: Buffer) => {
      output += chunk;
      const match = ready.exec(output);
      if (match) resolve(Number(match[1] ?? 0));
    };
    child.stdout!.on('data', look);
    child.stderr!.on('data', look);
    child.once('exit', (code) => reject(new Error(`${command} ${args.join(' ')} exited (${code}): ${output}`)));
  });
  child.stdout!.resume();
  child.stderr!.resume();
  return {
    child,
    port,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await once(child, 'exit');
    },
  };
}

/** `--fd-limit N`: the open-file limit (soft and hard) every proxy starts under; the generator and backends keep the harness's. */
let proxyFileLimit: number | undefined;
export function limitProxyFiles(limit: number): void {
  proxyFileLimit = limit;
}

/** The command line that starts a proxy: under prlimit when --fd-limit is given (prlimit execs it, so its pid and CPU time stay the proxy's). */
export function proxyArgv(command: string, args: string[]): [string, string[]] {
  return proxyFileLimit === undefined ? [command, args] : ['prlimit', [`--nofile=${proxyFileLimit}:${proxyFileLimit}`, '--', command, ...args]];
}

/** start() for a proxy: under --fd-limit when it is given. */
export function startProxy(command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<Started> {
  return start(...proxyArgv(command, args), undefined, env);
}

const TICK_US = 1_000_000 / Number(execFileSync('getconf', ['CLK_TCK']).toString().trim() || 100);

/** User + system CPU time, in microseconds, of a process and all its descendants (Linux /proc). */
export function cpuMicros(pid: number): number {
  const { user, system } = cpuTimes(pid);
  return user + system;
}

/** User and system CPU time apart, in microseconds: JavaScript's work against the kernel's. */
export function cpuTimes(pid: number): { user: number; system: number } {
  const total = { user: 0, system: 0 };
  for (const id of [pid, ...descendants(pid)]) {
    try {
      const fields = readFileSync(`/proc/${id}/stat`, 'utf8').split(') ')[1]!.split(' ');
      total.user += Number(fields[11]) * TICK_US; // utime
      total.system += Number(fields[12]) * TICK_US; // stime
    } catch {
      // the process ended meanwhile
    }
  }
  return total;
}

function descendants(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
      if (ppid === pid) children.push(Number(entry), ...descendants(Number(entry)));
    } catch {
      // gone
    }
  }
  return children;
}

/** The path of a program on PATH, or undefined. */
export function which(program: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${program}`]).toString().trim() || undefined;
  } catch {
    return undefined;
  }
}
