import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../tools/part-diff.ts';
import { markdownFiles } from '../tools/book-files.ts';

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const [, heading] of withoutCode(readFileSync(file, 'utf8')).matchAll(/^#{1,6}\s+(.+)$/gm)) {
    const base = slug(heading!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    result.add(n === 0 ? base : `${base}-${n}`);
  }
  return result;
}

function withoutCode(text: string): string {
  return text.replace(/^(```+|~~~+)[\s\S]*?^\1/gm, '');
}

describe('docs: links', () => {
  it('every relative link and anchor in the chapters and docs/ resolves', () => {
    const broken: string[] = [];
    for (const file of markdownFiles()) {
      const text = withoutCode(readFileSync(file, 'utf8')).replace(/`[^`\n]*`/g, '');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/i.test(target!)) continue; // http:, https:, mailto:
        const [path, anchor] = target!.split('#') as [string, string | undefined];
        const destination = path === '' ? file : resolve(dirname(file), path);
        const where = `${relative(ROOT, file)} -> ${target}`;
        if (!existsSync(destination)) {
          broken.push(`${where} (no such file)`);
          continue;
        }
        if (anchor && destination.endsWith('.md') && statSync(destination).isFile() && !anchors(destination).has(anchor)) {
          broken.push(`${where} (no such heading)`);
        }
      }
    }
    expect(broken).toEqual([]);
  });
});
