// The units a section can own: which declaration each line of a file belongs to, found with
// TypeScript's own parser. A unit is named by its path in the file:
//   imports › ./pump.ts          an import (or re-export), by module; shown together as "imports"
//   header comment               the comment above the imports
//   function pick()              a top-level function; one that builds an object of closures has
//   function startProxy() › status()   its inner functions and returned methods as units too
//   class Exchange               a class's own lines (its header, closing brace, blank lines)
//   class Exchange › finish()    a method, constructor(), get x(), or a property written as a function
//   class Exchange › phase       any other property
//   interface Options › port     an interface member (the interface's own lines: interface Options)
//   type Phase, enum Kind        a type alias or an enum, whole
//   const LIMIT                  a top-level variable statement, whole
//   main(), process.on('SIGHUP') a top-level expression statement, by its call
//   describe('pool') › it('reuses a connection')   in a test file, each it()/test() call, found
//                                anywhere (in a describe, a loop, a helper); describe's own lines
//                                and its other statements (beforeEach(), const cases) are units too
// Names are one line: they go on a diff's @@ line. Leading comments belong to what they precede.
// A file that is not TypeScript is one unit, the whole file (its name is the empty string).
import ts from 'typescript';

export const SEP = ' › ';

/** Is this a file whose lines belong to declarations? */
export function isCode(path: string): boolean {
  return /\.(ts|mts|cts|tsx)$/.test(path) && !path.endsWith('.d.ts');
}

export function isTestFile(path: string): boolean {
  return /(^|\/)test\//.test(path) || /\.test\.tsx?$/.test(path);
}

/**
 * The unit of every line of a file: result[n] is the name of line n (1-based; result[0] unused).
 * Lines that only hold blanks belong to the next line that holds something (a blank line before
 * a method goes with the method), trailing lines to the one before.
 */
export function lineUnits(path: string, text: string): string[] {
  const lineCount = text.split('\n').length;
  const owner: Array<string | undefined> = new Array(lineCount + 1).fill(undefined);
  if (!isCode(path)) return owner.map(() => '');

  const sf = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true, path.endsWith('x') ? ts.ScriptKind.TSX : ts.ScriptKind.TS);
  const lineOf = (pos: number) => sf.getLineAndCharacterOfPosition(pos).line + 1;
  const testFile = isTestFile(path);

  /** The node's first line, its leading comments included (not a comment that ends the line before). */
  const firstLine = (node: ts.Node): number => {
    const full = node.getFullText(sf);
    const skip = full.length - full.trimStart().length;
    const pos = node.getFullStart() + skip;
    const line = lineOf(pos);
    const lineStart = sf.getPositionOfLineAndCharacter(line - 1, 0);
    if (text.slice(lineStart, pos).trim() !== '') return Math.min(line + 1, lineOf(node.getStart(sf)));
    return line;
  };
  const mark = (name: string, from: number, to: number) => {
    for (let line = from; line <= to; line++) owner[line] = name;
  };
  const markNode = (name: string, node: ts.Node) => mark(name, firstLine(node), lineOf(node.getEnd()));

  const text1 = (node: ts.Node) => node.getText(sf).split('\n')[0]!.trim();
  // A name is one line: a unit's name goes on a diff's @@ line.
  const short = (s: string) => {
    const line = s.split('\n')[0]!;
    return line.length > 48 ? `${line.slice(0, 47)}…` : line === s ? line : `${line}…`;
  };
  const title = (arg: ts.Expression | undefined): string => {
    if (!arg) return '';
    if (ts.isStringLiteral(arg) || ts.isNoSubstitutionTemplateLiteral(arg)) {
      return arg.text.includes('\n') ? `'${arg.text.split('\n')[0]}…'` : `'${arg.text}'`;
    }
    return short(text1(arg));
  };
  /** it, test, describe, suite: the identifier a (chained) call starts from. */
  const root = (call: ts.CallExpression): string | undefined => {
    let e: ts.Expression = call.expression;
    while (ts.isPropertyAccessExpression(e) || ts.isCallExpression(e)) e = e.expression;
    return ts.isIdentifier(e) ? e.text : undefined;
  };
  const isTest = (node: ts.Node): node is ts.CallExpression =>
    testFile && ts.isCallExpression(node) && ['it', 'test'].includes(root(node) ?? '');
  const isSuite = (node: ts.Node): node is ts.CallExpression =>
    testFile && ts.isCallExpression(node) && ['describe', 'suite'].includes(root(node) ?? '');
  const callName = (call: ts.CallExpression): string => {
    let callee = call.expression;
    while (ts.isCallExpression(callee)) callee = callee.expression; // it.each(table)('title')
    return `${callee.getText(sf)}(${title(call.arguments[0])})`;
  };
  const memberName = (name: ts.PropertyName | undefined): string => (name ? name.getText(sf) : '(anonymous)');

  /** A test call's whole statement when it is one, so that its comment comes with it. */
  const statementOf = (call: ts.CallExpression): ts.Node =>
    ts.isExpressionStatement(call.parent) && call.parent.expression === call ? call.parent : call;

  /** describe()/it() calls nested anywhere under node (inside a loop, a helper), each its own unit. */
  const scanTests = (node: ts.Node, prefix: string) => {
    ts.forEachChild(node, function visit(child) {
      if (isTest(child)) markNode(prefix + callName(child), statementOf(child));
      else if (isSuite(child)) suite(child, prefix);
      else ts.forEachChild(child, visit);
    });
  };
  const suite = (call: ts.CallExpression, prefix: string) => {
    const name = prefix + callName(call);
    markNode(name, statementOf(call));
    const body = call.arguments.at(-1);
    if (body && (ts.isArrowFunction(body) || ts.isFunctionExpression(body)) && ts.isBlock(body.body)) {
      statements(body.body.statements, name + SEP);
    } else if (body) scanTests(body, name + SEP);
  };

  const members = (owner: string, list: readonly (ts.ClassElement | ts.TypeElement)[]) => {
    for (const m of list) {
      let name: string;
      if (ts.isConstructorDeclaration(m)) name = 'constructor()';
      else if (ts.isGetAccessorDeclaration(m)) name = `get ${memberName(m.name)}()`;
      else if (ts.isSetAccessorDeclaration(m)) name = `set ${memberName(m.name)}()`;
      else if (ts.isMethodDeclaration(m) || ts.isMethodSignature(m)) name = `${memberName(m.name)}()`;
      else if (ts.isPropertyDeclaration(m)) {
        const init = m.initializer;
        const fn = init !== undefined && (ts.isArrowFunction(init) || ts.isFunctionExpression(init));
        name = `${memberName(m.name)}${fn ? '()' : ''}`;
      } else if (ts.isPropertySignature(m)) name = memberName(m.name);
      else if (ts.isClassStaticBlockDeclaration(m)) name = 'static {}';
      else if (ts.isIndexSignatureDeclaration(m)) name = `[${m.parameters.map((p) => p.name.getText(sf)).join(', ')}]`;
      else if (ts.isCallSignatureDeclaration(m)) name = '()';
      else if (ts.isConstructSignatureDeclaration(m)) name = 'new()';
      else if (ts.isSemicolonClassElement(m)) continue;
      else name = short(text1(m));
      markNode(owner + SEP + name, m);
      if (testFile && ts.isClassElement(m)) scanTests(m, owner + SEP + name + SEP);
    }
  };

  const isFunction = (e: ts.Node | undefined) => e !== undefined && (ts.isArrowFunction(e) || ts.isFunctionExpression(e));
  /**
   * A top-level function that builds an object of closures (startProxy()) is read like a class:
   * its inner functions and the methods of the object it returns are units of their own.
   */
  const inner = (list: readonly ts.Statement[], prefix: string) => {
    for (const s of list) {
      if (ts.isFunctionDeclaration(s) && s.name) markNode(`${prefix}function ${s.name.text}()`, s);
      else if (ts.isVariableStatement(s) && s.declarationList.declarations.every((d) => isFunction(d.initializer))) {
        markNode(`${prefix}const ${s.declarationList.declarations.map((d) => d.name.getText(sf)).join(', ')}()`, s);
      } else if (ts.isReturnStatement(s) && s.expression && ts.isObjectLiteralExpression(s.expression)) {
        for (const p of s.expression.properties) {
          if (ts.isMethodDeclaration(p)) markNode(`${prefix}${memberName(p.name)}()`, p);
          else if (ts.isGetAccessorDeclaration(p)) markNode(`${prefix}get ${memberName(p.name)}()`, p);
          else if (ts.isSetAccessorDeclaration(p)) markNode(`${prefix}set ${memberName(p.name)}()`, p);
          else if (ts.isPropertyAssignment(p) && isFunction(p.initializer)) markNode(`${prefix}${memberName(p.name)}()`, p);
        }
      }
    }
  };

  const statements = (list: readonly ts.Statement[], prefix: string) => {
    for (const s of list) {
      if (ts.isImportDeclaration(s) || ts.isImportEqualsDeclaration(s) || (ts.isExportDeclaration(s) && s.moduleSpecifier)) {
        // One unit per module imported, shown together as "imports": a section can take the
        // import of what it adds.
        const from = ts.isImportEqualsDeclaration(s) ? s.moduleReference : s.moduleSpecifier!;
        markNode(`${prefix}imports${SEP}${ts.isStringLiteral(from) ? from.text : short(from.getText(sf))}`, s);
      } else if (ts.isFunctionDeclaration(s)) {
        const name = `${prefix}function ${s.name?.text ?? 'default'}()`;
        markNode(name, s);
        if (s.body) inner(s.body.statements, name + SEP);
        scanTests(s, name + SEP);
      } else if (ts.isClassDeclaration(s)) {
        const name = `${prefix}class ${s.name?.text ?? 'default'}`;
        markNode(name, s);
        members(name, s.members);
      } else if (ts.isInterfaceDeclaration(s)) {
        const name = `${prefix}interface ${s.name.text}`;
        markNode(name, s);
        members(name, s.members);
      } else if (ts.isTypeAliasDeclaration(s)) markNode(`${prefix}type ${s.name.text}`, s);
      else if (ts.isEnumDeclaration(s)) markNode(`${prefix}enum ${s.name.text}`, s);
      else if (ts.isModuleDeclaration(s)) markNode(`${prefix}namespace ${s.name.getText(sf)}`, s);
      else if (ts.isVariableStatement(s)) {
        const flags = s.declarationList.flags;
        const keyword = flags & ts.NodeFlags.Const ? 'const' : flags & ts.NodeFlags.Let ? 'let' : 'var';
        const name = `${prefix}${keyword} ${s.declarationList.declarations.map((d) => d.name.getText(sf)).join(', ')}`;
        markNode(name, s);
        scanTests(s, name + SEP);
      } else if (ts.isExportAssignment(s)) markNode(`${prefix}export default`, s);
      else if (ts.isExpressionStatement(s) && isTest(s.expression)) markNode(prefix + callName(s.expression), s);
      else if (ts.isExpressionStatement(s) && isSuite(s.expression)) suite(s.expression, prefix);
      else if (ts.isExpressionStatement(s) && ts.isCallExpression(s.expression)) {
        const name = prefix + callName(s.expression);
        markNode(name, s);
        scanTests(s, name + SEP);
      } else {
        const name = prefix + short(text1(s));
        markNode(name, s);
        scanTests(s, name + SEP);
      }
    }
  };

  statements(sf.statements, '');
  // The comment above the imports is the file's own, not the first import's.
  const first = sf.statements[0];
  if (first && (ts.isImportDeclaration(first) || ts.isImportEqualsDeclaration(first))) {
    const start = lineOf(first.getStart(sf));
    if (firstLine(first) < start) mark('header comment', firstLine(first), start - 1);
  }

  // Blank lines go with the next line that has something; what is left at the end, with the last.
  const lines = text.split('\n');
  const blank = (line: number) => (lines[line - 1] ?? '').trim() === '';
  let next: string | undefined;
  for (let line = lineCount; line >= 1; line--) {
    if (blank(line) || owner[line] === undefined) owner[line] = next;
    else next = owner[line];
  }
  let previous = '';
  for (let line = 1; line <= lineCount; line++) {
    if (owner[line] === undefined) owner[line] = previous;
    else previous = owner[line]!;
  }
  return owner.map((name) => name ?? '');
}
