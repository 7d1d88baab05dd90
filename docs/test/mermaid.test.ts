// Mermaid diagrams render on GitHub only if they parse. Without a browser or Mermaid itself in
// the test, this checks the mistakes we have made: a ';' ends a statement (the rest of a label
// becomes stray states), and a state-diagram line that is not a statement Mermaid knows.
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../tools/part-diff.ts';
import { markdownFiles } from '../tools/book-files.ts';


const STATE = String.raw`(?:\[\*\]|[A-Za-z_][\w]*)`;
/** The statements our state diagrams use: transitions (with a label), descriptions, notes, nesting. */
const STATE_LINE = new RegExp(
  String.raw`^(?:stateDiagram-v2|direction (?:LR|RL|TB|BT)|${STATE} --> ${STATE}(?:\s*:\s*[^;]+)?|[A-Za-z_]\w*\s*:\s*[^;]+|state [^;]+\{|\}|note (?:left|right) of \w+\s*:.*|%%.*)$`,
);

function mermaidProblems(file: string, text: string): string[] {
  const problems: string[] = [];
  const where = relative(ROOT, file);
  for (const block of text.matchAll(/^```mermaid\n([\s\S]*?)^```$/gm)) {
    const startLine = text.slice(0, block.index).split('\n').length + 1;
    const lines = block[1]!.split('\n');
    const stateDiagram = lines[0]!.trim() === 'stateDiagram-v2';
    lines.forEach((raw, i) => {
      const line = raw.trim();
      if (line === '') return;
      const at = `${where}:${startLine + i}`;
      if (line.includes(';')) problems.push(`${at}: ';' ends a Mermaid statement: ${line}`);
      else if (stateDiagram && !STATE_LINE.test(line)) problems.push(`${at}: not a state-diagram statement: ${line}`);
    });
  }
  return problems;
}

describe('Mermaid diagrams', () => {
  it('have no statement Mermaid would cut or not understand', () => {
    const problems = markdownFiles().flatMap((file) => mermaidProblems(file, readFileSync(file, 'utf8')));
    expect(problems).toEqual([]);
  });

  it('catch the label that once broke part 2 and part 4', () => {
    const broken = "```mermaid\nstateDiagram-v2\n    Open --> Open: 'data' → write; write() false → pause\n```\n";
    const stray = '```mermaid\nstateDiagram-v2\n    a --> b\n    pause if full\n```\n';
    expect(mermaidProblems(join(ROOT, 'x.md'), broken)).toHaveLength(1);
    expect(mermaidProblems(join(ROOT, 'x.md'), stray)).toHaveLength(1);
  });
});
