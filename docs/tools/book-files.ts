// The book's prose: the landing page, the chapters, and docs/ (not the generated diffs).
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './part-diff.ts';

export function markdownFiles(): string[] {
  const files = [join(ROOT, 'README.md')];
  for (const name of readdirSync(ROOT)) {
    if (/^part-\d\d-/.test(name) && existsSync(join(ROOT, name, 'README.md'))) files.push(join(ROOT, name, 'README.md'));
  }
  for (const name of readdirSync(join(ROOT, 'docs'))) if (name.endsWith('.md')) files.push(join(ROOT, 'docs', name));
  return files;
}
