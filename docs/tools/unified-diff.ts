// Unified diffs as data: git's output (or this tool's) parsed into files, hunks and numbered
// lines, and written back as text.

/** One changed line of a hunk, with its line number in the old file, the new file, or both. */
export interface DiffLine {
  kind: ' ' | '+' | '-';
  text: string;
  /** Old-file line number (context and removed lines). */
  old?: number;
  /** New-file line number (context and added lines). */
  new?: number;
  /** git's "\ No newline at end of file" follows this line. */
  noNewline?: boolean;
}

export interface Hunk {
  oldStart: number;
  newStart: number;
  /** What git prints after the second @@ (the enclosing function, or a unit's name). */
  context: string;
  lines: DiffLine[];
}

/** One file of a diff: added (oldPath undefined), deleted (newPath undefined), changed or renamed. */
export interface FileDiff {
  oldPath?: string;
  newPath?: string;
  /** The file's name in the newer part, or in the older one when it was deleted. */
  file: string;
  /** diff --git, mode, similarity/rename, ---/+++ lines (no index line), each ending in \n. */
  header: string;
  hunks: Hunk[];
}

const HUNK = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$/;

/**
 * Parses a unified diff: git's own output between the snapshot folders a/ and b/ (whose
 * headers say "b/x b/x" for an added file and "rename from a/x"), or this tool's output.
 * Hunks are read by their line counts, so a removed line that starts with "--" stays a line.
 */
export function parseDiff(diff: string): FileDiff[] {
  const files: FileDiff[] = [];
  for (const piece of diff.split(/^(?=diff --git )/m)) {
    const lines = piece.split('\n');
    const top = /^diff --git (\S+) (\S+)$/.exec(lines[0] ?? '');
    if (!top) continue;
    const strip = (path: string) => path.replace(/^[ab]\//, '');
    let oldPath: string | undefined = strip(top[1]!);
    let newPath: string | undefined = strip(top[2]!);
    const extra: string[] = [];
    let i = 1;
    let similarity: string | undefined;
    for (; i < lines.length && !lines[i]!.startsWith('@@') && !lines[i]!.startsWith('diff --git '); i++) {
      const line = lines[i]!;
      if (line.startsWith('new file mode')) (oldPath = undefined), extra.push(line);
      else if (line.startsWith('deleted file mode')) (newPath = undefined), extra.push(line);
      else if (line.startsWith('rename from ')) oldPath = strip(line.slice('rename from '.length));
      else if (line.startsWith('rename to ')) newPath = strip(line.slice('rename to '.length));
      else if (line.startsWith('similarity index ')) similarity = line;
      else if (line.startsWith('--- ')) oldPath = line === '--- /dev/null' ? undefined : strip(line.slice(4));
      else if (line.startsWith('+++ ')) newPath = line === '+++ /dev/null' ? undefined : strip(line.slice(4));
      else if (/^(old|new) mode /.test(line)) extra.push(line);
      // index lines and anything else are dropped
    }
    const hunks: Hunk[] = [];
    while (i < lines.length) {
      const head = HUNK.exec(lines[i]!);
      if (!head) {
        i++;
        continue;
      }
      i++;
      let oldLeft = head[2] === undefined ? 1 : Number(head[2]);
      let newLeft = head[4] === undefined ? 1 : Number(head[4]);
      let oldNo = Number(head[1]);
      let newNo = Number(head[3]);
      // "-0,0" and "+0,0" name the line before the first one.
      if (oldLeft === 0) oldNo++;
      if (newLeft === 0) newNo++;
      const hunk: Hunk = { oldStart: Number(head[1]), newStart: Number(head[3]), context: head[5] ?? '', lines: [] };
      while (i < lines.length && (oldLeft > 0 || newLeft > 0 || lines[i]!.startsWith('\\'))) {
        const line = lines[i++]!;
        if (line.startsWith('\\')) {
          const last = hunk.lines.at(-1);
          if (last) last.noNewline = true;
        } else if (line.startsWith('+')) hunk.lines.push({ kind: '+', text: line.slice(1), new: newNo++ }), newLeft--;
        else if (line.startsWith('-')) hunk.lines.push({ kind: '-', text: line.slice(1), old: oldNo++ }), oldLeft--;
        else hunk.lines.push({ kind: ' ', text: line.slice(1), old: oldNo++, new: newNo++ }), oldLeft--, newLeft--;
      }
      hunks.push(hunk);
    }
    const a = oldPath ?? newPath!;
    const b = newPath ?? oldPath!;
    const header = [
      `diff --git a/${a} b/${b}`,
      ...extra,
      ...(oldPath !== undefined && newPath !== undefined && oldPath !== newPath
        ? [similarity ?? 'similarity index 100%', `rename from ${oldPath}`, `rename to ${newPath}`]
        : []),
      ...(hunks.length > 0 ? [oldPath ? `--- a/${oldPath}` : '--- /dev/null', newPath ? `+++ b/${newPath}` : '+++ /dev/null'] : []),
    ];
    files.push({ oldPath, newPath, file: b, header: header.map((line) => `${line}\n`).join(''), hunks });
  }
  return files;
}

/** A file's diff as text; `hunks` replaces its own (a section shows some of them). */
export function renderFile(file: FileDiff, hunks: Hunk[] = file.hunks): string {
  return file.header + hunks.map(renderHunk).join('');
}

export function renderHunk(hunk: Hunk): string {
  const oldCount = hunk.lines.filter((l) => l.kind !== '+').length;
  const newCount = hunk.lines.filter((l) => l.kind !== '-').length;
  const range = (start: number, count: number) => (count === 1 ? `${start}` : `${start},${count}`);
  const context = hunk.context === '' ? '' : ` ${hunk.context}`;
  let text = `@@ -${range(hunk.oldStart, oldCount)} +${range(hunk.newStart, newCount)} @@${context}\n`;
  for (const line of hunk.lines) {
    text += `${line.kind}${line.text}\n`;
    if (line.noNewline) text += '\\ No newline at end of file\n';
  }
  return text;
}

export function colorize(diff: string): string {
  const paint = (code: string, line: string) => `\x1b[${code}m${line}\x1b[0m`;
  let inHeader = false;
  return diff
    .split('\n')
    .map((line) => {
      if (line.startsWith('diff --git ')) inHeader = true;
      else if (line.startsWith('@@')) inHeader = false;
      if (inHeader) return paint('1', line);
      if (line.startsWith('@@')) return paint('36', line);
      if (line.startsWith('+')) return paint('32', line);
      if (line.startsWith('-')) return paint('31', line);
      return line;
    })
    .join('\n');
}

/** Lines added and removed per file, from a unified diff ("old → new" for a renamed file). */
export function lineCounts(diff: string): Array<{ file: string; added: number; removed: number }> {
  return parseDiff(diff).map((f) => {
    const lines = f.hunks.flatMap((h) => h.lines);
    const file = f.oldPath !== undefined && f.newPath !== undefined && f.oldPath !== f.newPath ? `${f.oldPath} → ${f.newPath}` : f.file;
    return { file, added: lines.filter((l) => l.kind === '+').length, removed: lines.filter((l) => l.kind === '-').length };
  });
}
