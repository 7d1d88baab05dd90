// A chapter's sections, each a sitting with its own diff, cut by declaration: every changed line
// of a part's diff belongs to a unit (units.ts), every unit to one section (sections.ts), and a
// section's diff shows its units' changes, re-hunked per unit, each hunk's @@ line naming its unit.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type DiffLine, type FileDiff, type Hunk, folderOf, parseDiff, partFiles, renderFile } from './part-diff.ts';
import { type Section, LIMIT } from './sections.ts';
import { SEP, isCode, lineUnits } from './units.ts';

export interface ChangedUnit {
  /** "src/exchange.ts › class Exchange › finish()", or the file alone for a whole-file unit. */
  key: string;
  file: string;
  /** The unit inside the file ("" for the whole file). */
  name: string;
  added: number;
  removed: number;
}

export interface PartUnits {
  files: FileDiff[];
  /** In reading order: file by file, each unit where its first changed line is. */
  units: ChangedUnit[];
  /** The unit of each changed line. */
  unitOf: Map<DiffLine, string>;
}

export function unitKey(file: string, name: string): string {
  return name === '' ? file : `${file}${SEP}${name}`;
}

/** The changed units of the diff from part `from` to part `to`. */
export function partUnits(from: string, to: string): PartUnits {
  const files = partFiles(from, to);
  const units = new Map<string, ChangedUnit>();
  const unitOf = new Map<DiffLine, string>();
  const read = (part: string, path: string | undefined) => (path !== undefined && isCode(path) ? readFileSync(join(folderOf(part), path), 'utf8') : '');
  for (const file of files) {
    const owners = {
      old: file.oldPath === undefined ? [] : lineUnits(file.oldPath, read(from, file.oldPath)),
      new: file.newPath === undefined ? [] : lineUnits(file.newPath, read(to, file.newPath)),
    };
    const unit = (name: string) => {
      const key = unitKey(file.file, name);
      let found = units.get(key);
      if (!found) units.set(key, (found = { key, file: file.file, name, added: 0, removed: 0 }));
      return found;
    };
    // A file that only moved or changed mode has no lines: it is one whole-file unit.
    if (file.hunks.length === 0) unit('');
    for (const line of file.hunks.flatMap((h) => h.lines)) {
      if (line.kind === ' ') continue;
      const name = line.kind === '+' ? (owners.new[line.new!] ?? '') : (owners.old[line.old!] ?? '');
      const found = unit(name);
      if (line.kind === '+') found.added++;
      else found.removed++;
      unitOf.set(line, found.key);
    }
  }
  return { files, units: [...units.values()], unitOf };
}

/** How much of a unit key a selector names: -1 when it does not match it. */
export function specificity(selector: string, unit: ChangedUnit): number {
  const [path, ...names] = selector.split(SEP);
  const clean = path!.replace(/\/+$/, '');
  if (!(unit.file === clean || unit.file.startsWith(`${clean}/`))) return -1;
  const unitNames = unit.name === '' ? [] : unit.name.split(SEP);
  if (names.length > unitNames.length || names.some((n, i) => unitNames[i] !== n)) return -1;
  return names.length * 10_000 + clean.length;
}

export interface Cut {
  /** Each section with the units it owns, in reading order. */
  sections: Array<{ section: Section; units: ChangedUnit[]; changed: number }>;
  unassigned: ChangedUnit[];
  /** Units that two sections claim with equally specific selectors. */
  twice: Array<{ unit: ChangedUnit; sections: string[] }>;
  /** Selectors that own no changed unit (stale after a rename, or beaten everywhere). */
  unused: Array<{ section: string; selector: string }>;
  /** Sections over the limit without a stated reason, and reasons that no longer apply. */
  overLimit: Array<{ section: string; changed: number }>;
  needlessException: string[];
}

/**
 * Assigns every changed unit to the section whose selector names it most specifically: a file
 * or folder selector takes what no member-level selector elsewhere claims, so moving one method
 * to another sitting is one line in sections.ts.
 */
export function cut(part: PartUnits, sections: Section[]): Cut {
  const owned = new Map<Section, ChangedUnit[]>(sections.map((s) => [s, []]));
  const used = new Set<string>();
  const result: Cut = { sections: [], unassigned: [], twice: [], unused: [], overLimit: [], needlessException: [] };
  for (const unit of part.units) {
    let best = -1;
    let winners: Array<{ section: Section; selector: string }> = [];
    for (const section of sections) {
      for (const selector of section.units) {
        const score = specificity(selector, unit);
        if (score < 0 || score < best) continue;
        if (score > best) (best = score), (winners = []);
        winners.push({ section, selector });
      }
    }
    const homes = [...new Set(winners.map((w) => w.section))];
    if (homes.length === 0) result.unassigned.push(unit);
    else if (homes.length > 1) result.twice.push({ unit, sections: homes.map(title) });
    else owned.get(homes[0]!)!.push(unit);
    for (const w of winners) used.add(`${w.section.id}\n${w.selector}`);
  }
  for (const section of sections) {
    const units = owned.get(section)!;
    const changed = units.reduce((sum, u) => sum + u.added + u.removed, 0);
    result.sections.push({ section, units, changed });
    for (const selector of section.units) {
      if (!used.has(`${section.id}\n${selector}`)) result.unused.push({ section: title(section), selector });
    }
    if (changed > LIMIT && section.overLimit === undefined) result.overLimit.push({ section: title(section), changed });
    if (changed <= LIMIT && section.overLimit !== undefined) result.needlessException.push(title(section));
  }
  return result;
}

/** A section's number: its id up to the first "-" ("2b" of "2b-exchange"). */
export function numberOf(section: Section): string {
  return section.id.split('-')[0]!;
}

/** `--section 2b` is that sitting; `--section 2` is every sitting of the chapter's 2 (2a, 2b...). */
export function chosenBy(section: Section, wanted: string): boolean {
  const number = numberOf(section);
  return number === wanted || number.replace(/[a-z]+$/, '') === wanted;
}

/** How problems name a section: its id, which starts with its number ("5a-routing"). */
export function title(section: Section): string {
  return section.id;
}

export function problems(c: Cut): string[] {
  return [
    ...c.unassigned.map((u) => `unassigned: ${u.key} (+${u.added} -${u.removed})`),
    ...c.twice.map(({ unit, sections }) => `assigned twice: ${unit.key} (in ${sections.join('; ')})`),
    ...c.unused.map(({ section, selector }) => `owns no changed unit: "${selector}" in ${section}`),
    ...c.overLimit.map(({ section, changed }) => `over the limit of ${LIMIT} changed lines: ${section} has ${changed}`),
    ...c.needlessException.map((s) => `within the limit, drop its overLimit reason: ${s}`),
  ];
}

/** The diff of some units: per file in reading order, per unit, hunks with a few lines of context. */
export function unitsDiff(part: PartUnits, keys: Set<string>, context = 3): string {
  let text = '';
  for (const file of part.files) {
    const mine = part.units.filter((u) => u.file === file.file && keys.has(u.key));
    if (mine.length === 0) continue;
    // A class's fields and an interface's members show with the class or interface, not one hunk each.
    const groups = new Map<string, Set<string>>();
    for (const u of mine) {
      const name = shownAs(u.name);
      if (!groups.has(name)) groups.set(name, new Set());
      groups.get(name)!.add(u.key);
    }
    // In the file's order, top to bottom, each hunk naming its unit.
    const hunks = [...groups]
      .flatMap(([name, group]) => unitHunks(file, part.unitOf, name, group, context))
      .sort((x, y) => x.newStart - y.newStart || x.oldStart - y.oldStart);
    // Context already shown by the hunk above is not repeated.
    for (let i = 1; i < hunks.length; i++) {
      const shown = Math.max(...hunks[i - 1]!.lines.map((l) => l.new ?? 0));
      const hunk = hunks[i]!;
      while (hunk.lines.length > 1 && hunk.lines[0]!.kind === ' ' && hunk.lines[0]!.new! <= shown) {
        hunk.lines = hunk.lines.slice(1);
        hunk.oldStart++;
        hunk.newStart++;
      }
    }
    text += renderFile(file, hunks);
  }
  return text;
}

/** The name a unit's hunks carry: its own; its class's or interface's for a field or an interface member; "imports" for an import. */
export function shownAs(name: string): string {
  const parts = name.split(SEP);
  if (parts.at(-2) === 'imports') return parts.slice(0, -1).join(SEP);
  const iface = parts.findIndex((p) => p.startsWith('interface '));
  if (iface !== -1) return parts.slice(0, iface + 1).join(SEP);
  if (parts.length >= 2 && parts.at(-2)!.startsWith('class ') && !parts.at(-1)!.endsWith(')')) return parts.slice(0, -1).join(SEP);
  return name;
}

/**
 * One unit's hunks (or a group's shown under one name). Other units' changed lines are left out, and a hunk never spans one (its
 * context stops there), so every hunk's line numbers are the files' own.
 */
function unitHunks(file: FileDiff, unitOf: Map<DiffLine, string>, name: string, keys: Set<string>, context: number): Hunk[] {
  const hunks: Hunk[] = [];
  for (const hunk of file.hunks) {
    // Where each line sits in the old and new file (for a hunk that has no line on one side).
    let oldAt = hunk.lines.find((l) => l.old !== undefined)?.old ?? hunk.oldStart + 1;
    let newAt = hunk.lines.find((l) => l.new !== undefined)?.new ?? hunk.newStart + 1;
    const at = hunk.lines.map((line) => {
      const here = { old: oldAt, new: newAt };
      if (line.old !== undefined) oldAt = line.old + 1;
      if (line.new !== undefined) newAt = line.new + 1;
      return here;
    });
    const kind = hunk.lines.map((l) => (l.kind === ' ' ? 'context' : keys.has(unitOf.get(l)!) ? 'mine' : 'other'));
    const windows: Array<[number, number]> = [];
    for (let i = 0; i < kind.length; i++) {
      if (kind[i] !== 'mine') continue;
      let start = i;
      while (start > 0 && i - start < context && kind[start - 1] === 'context') start--;
      let end = i;
      while (end + 1 < kind.length && kind[end + 1] === 'mine') end++;
      let after = end;
      while (after + 1 < kind.length && after - end < context && kind[after + 1] === 'context') after++;
      const last = windows.at(-1);
      // Windows that touch join (they cannot span another unit's change: none reaches past one).
      if (last && start <= last[1] + 1) last[1] = after;
      else windows.push([start, after]);
      i = end;
    }
    for (const [start, end] of windows) {
      const lines = hunk.lines.slice(start, end + 1);
      const first = at[start]!;
      hunks.push({
        oldStart: lines.some((l) => l.old !== undefined) ? first.old : first.old - 1,
        newStart: lines.some((l) => l.new !== undefined) ? first.new : first.new - 1,
        context: name,
        lines,
      });
    }
  }
  return hunks;
}

/** Every changed line of a diff, as "file, kind, line number, text", for comparing diffs line by line. */
export function changedLines(diff: string | FileDiff[]): string[] {
  const files = typeof diff === 'string' ? parseDiff(diff) : diff;
  return files.flatMap((f) =>
    f.hunks.flatMap((h) => h.lines.filter((l) => l.kind !== ' ').map((l) => `${f.file}\t${l.kind}${l.kind === '+' ? l.new : l.old}\t${l.text}`)),
  );
}
