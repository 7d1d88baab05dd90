// The chapters name code: `parseRequestHead()`, `Peers.available()`, `src/http/body.ts`. Each such
// name must exist in the part the chapter is about (docs/nginx.md: in some part), found with
// TypeScript's own parser, so that a rename cannot leave the prose behind.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../tools/part-diff.ts';

// System calls, Node's and the C library's functions, nginx's and PromQL's, that the chapters discuss.
const NOT_OURS = new Set([
  'accept', 'listen', 'connect', 'read', 'write', 'writev', 'close', 'end', 'destroy', 'pause', 'resume', 'cork', 'uncork', 'pipe',
  'epoll_wait', 'sendfile', 'splice', 'free', 'on', 'iterator', 'setTimeout', '__name', 'performance.now', 'net.connect',
  'rate', 'increase', // PromQL
]);
// Node objects a chapter calls methods on (`socket.write()`): their methods are Node's.
const NODE_RECEIVERS = new Set(['socket', 'server', 'client', 'from', 'to', 'net', 'http', 'process', 'this.client', 'cluster']);

const PARTS = readdirSync(ROOT).filter((name) => /^part-\d\d-/.test(name));

interface Declared {
  names: Set<string>;
  /** Class (or interface) -> its members. */
  members: Map<string, Set<string>>;
  files: string[];
}

function sourceFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : [path];
  });
}

/** Every name declared in a part's code: functions, classes and their members, variables, types, object keys. */
function declared(part: string): Declared {
  const result: Declared = { names: new Set(), members: new Map(), files: [] };
  for (const folder of ['src', 'test', 'bench']) {
    for (const file of sourceFiles(join(ROOT, part, folder))) {
      result.files.push(file.slice(join(ROOT, part).length + 1));
      if (!file.endsWith('.ts')) continue;
      const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest);
      const visit = (node: ts.Node, owner: Set<string> | undefined): void => {
        let inner = owner;
        if ((ts.isClassDeclaration(node) || ts.isInterfaceDeclaration(node)) && node.name) {
          inner = result.members.get(node.name.text) ?? new Set();
          result.members.set(node.name.text, inner);
        }
        const name = (node as { name?: ts.Node }).name;
        if (name && (ts.isIdentifier(name) || ts.isPrivateIdentifier(name))) {
          result.names.add(name.text);
          if (owner && ts.isClassElement(node)) owner.add(name.text);
          if (owner && ts.isTypeElement(node)) owner.add(name.text);
        }
        ts.forEachChild(node, (child) => visit(child, ts.isClassLike(node) || ts.isInterfaceDeclaration(node) ? inner : undefined));
      };
      visit(source, undefined);
    }
  }
  return result;
}

/** `name()` and `a.b()` spans, and file names (`x.ts`, `src/y.ts`), outside code blocks. */
function namedInProse(file: string): { calls: string[]; files: string[] } {
  const text = readFileSync(file, 'utf8').replace(/^(```+|~~~+)[\s\S]*?^\1/gm, '');
  const calls: string[] = [];
  const files: string[] = [];
  for (const [, span] of text.matchAll(/`([^`\n]+)`/g)) {
    const call = /^([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)\(.*\)$/.exec(span!);
    if (call) calls.push(call[1]!);
    const path = /^([\w.-][\w./-]*\.(?:ts|html))$/.exec(span!);
    if (path) files.push(path[1]!);
  }
  return { calls, files };
}

/** What is wrong with one chapter's names: calls checked against `parts`, file names against `fileParts`. */
function problems(file: string, parts: Declared[], fileParts: Declared[] = parts): string[] {
  const found: string[] = [];
  const { calls, files } = namedInProse(file);
  for (const call of calls) {
    const segments = call.split('.');
    const method = segments.at(-1)!;
    const receiver = segments.slice(0, -1).join('.');
    if (NOT_OURS.has(call) || NOT_OURS.has(method) && (receiver === '' || NODE_RECEIVERS.has(receiver))) continue;
    // Class.member: the class must declare it. Anything else: the name must be declared somewhere.
    const owner = segments.length === 2 && /^[A-Z]/.test(receiver) ? receiver : undefined;
    const ok = owner
      ? parts.some((p) => p.members.get(owner)?.has(method))
      : parts.some((p) => p.names.has(method));
    if (!ok) found.push(`\`${call}()\``);
  }
  for (const path of files) {
    const ok = fileParts.some((p) => (path.includes('/') ? p.files.some((f) => f === path || path.endsWith(`/${f}`) && existsSync(join(ROOT, path))) : p.files.some((f) => basename(f) === path)));
    if (!ok) found.push(`\`${path}\``);
  }
  return found;
}

describe('docs: names', () => {
  const byPart = new Map(PARTS.map((part) => [part, declared(part)]));

  // A chapter may name what its part removed (the previous part's code), and the harness's files
  // (part 5's bench/, which measures every part).
  it.each(PARTS)('every function, method and file that the %s chapter names exists in its code', (part) => {
    const index = PARTS.indexOf(part);
    const own = [byPart.get(part)!, ...(index > 0 ? [byPart.get(PARTS[index - 1]!)!] : [])];
    expect(problems(join(ROOT, part, 'README.md'), own, [...own, byPart.get(PARTS.at(-1)!)!])).toEqual([]);
  });

  it('every name in docs/nginx.md exists in some part', () => {
    expect(problems(join(ROOT, 'docs', 'nginx.md'), [...byPart.values()])).toEqual([]);
  });
});
