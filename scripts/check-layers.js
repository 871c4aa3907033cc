#!/usr/bin/env node
// House rule checker (issue 17): no import from a higher layer, none sideways between folders of
// one layer, no file-level import cycle, and the folder bans of layers.json (bench/ never imports
// test/). Plain Node, no dependencies, so it runs before anything is built.
//
//   node scripts/check-layers.js            check; exit 1 listing each violation
//   node scripts/check-layers.js --list     also print every cross-folder import of src/
//   node scripts/check-layers.js --config other.json
//   node scripts/check-layers.js --write-biome   regenerate the layer overrides of biome.jsonc
//
// biome.jsonc carries the same rule as `noRestrictedImports` overrides, one per folder, generated
// from layers.json (so editors show it); this script fails when the two disagree.
//
// Every relative specifier counts: static imports, `import type`, `export ... from`, side-effect
// imports and `import('...')` with a literal. A type-only import is still a dependency of the
// design, so it must respect the layers; for cycles a type-only edge is reported apart (a
// "type cycle" is erased at run time, but still a knot in the design) and fails too.
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const configPath = args.includes('--config') ? args[args.indexOf('--config') + 1] : 'layers.json';
const listAll = args.includes('--list');
const writeBiome = args.includes('--write-biome');
const biomePath = 'biome.jsonc';
const BEGIN = '// BEGIN layer overrides: generated from layers.json by `node scripts/check-layers.js --write-biome`';
const END = '// END layer overrides';
const repo = process.cwd();
const config = JSON.parse(readFileSync(path.join(repo, configPath), 'utf8'));

const layerOf = new Map(); // top folder of src/ -> layer index
config.layers.forEach((layer, index) => {
  for (const folder of layer.folders) {
    if (layerOf.has(folder)) fail(`${configPath}: folder ${folder} is in two layers`);
    layerOf.set(folder, index);
  }
});

function fail(message) {
  console.error(message);
  process.exit(2);
}

// One override per folder: its files may not import a folder of the same or a higher layer, at
// any relative depth (a specifier that climbs past src/ names nothing, so listing every depth
// is exact). Plus the folder bans that have a relative form (bench -> test).
function biomeOverrides() {
  const depths = ['../', '../../', '../../../'];
  const groupFor = (folders) => folders.flatMap((f) => depths.map((d) => `${d}${f}/**`));
  const override = (comment, includes, folders, message) => {
    const rule = { level: 'error', options: { patterns: [{ message, group: groupFor(folders) }] } };
    const json = JSON.stringify({ includes, linter: { rules: { style: { noRestrictedImports: rule } } } });
    return `// ${comment}\n  ${json}`;
  };
  const out = [];
  // Folders outside src/ that src/ never imports, climbing one more level from a folder of src/.
  const outside = config.forbidden.filter((r) => r.from === config.root).map((r) => `../${r.to}`);
  config.layers.forEach((layer, i) => {
    for (const folder of layer.folders) {
      const same = layer.folders.filter((f) => f !== folder);
      const higher = config.layers.slice(i + 1).flatMap((l) => l.folders);
      const message =
        `${folder}/ is in layer ${i + 1} "${layer.name}": it imports only from lower layers` +
        `${same.length ? `, never sideways from ${same.join('/, ')}/` : ''}, and never from test/ or bench/. See layers.json and ARCHITECTURE.md.`;
      out.push(
        override(`layer ${i + 1} "${layer.name}": ${folder}/ (${layer.holds})`, [`${config.root}/${folder}/**`], [...same, ...higher, ...outside], message),
      );
    }
  });
  const bans = new Map();
  for (const rule of config.forbidden) {
    if (rule.from === config.root) continue; // folded into the folders' overrides above
    bans.set(rule.from, [...(bans.get(rule.from) ?? []), rule]);
  }
  for (const [from, rules] of bans) {
    const message = rules.map((r) => `${from}/ does not import ${r.to}/: ${r.why}.`).join(' ');
    out.push(
      override(
        `${from}/ bans`,
        [`${from}/**`],
        rules.map((r) => r.to),
        message,
      ),
    );
  }
  // Pending exceptions: the rule is off for the whole file until the entry is deleted.
  const files = [...new Set((config.pending ?? []).map((e) => e.file))];
  if (files.length) {
    const json = JSON.stringify({ includes: files, linter: { rules: { style: { noRestrictedImports: 'off' } } } });
    out.push(`// pending exceptions of layers.json (upward imports that work in flight removes)\n  ${json}`);
  }
  return out;
}

function biomeBlock() {
  return `${BEGIN}\n  ${biomeOverrides().join(',\n  ')}\n  ${END}`;
}

function syncBiome() {
  const file = path.join(repo, biomePath);
  if (!existsSync(file)) return null;
  const text = readFileSync(file, 'utf8');
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (start < 0 || end < 0) return `${biomePath}: the layer override markers are missing`;
  const updated = text.slice(0, start) + biomeBlock() + text.slice(end + END.length);
  // Compared without white space: the formatter lays the block out its own way.
  if (updated.replace(/\s+/g, '') === text.replace(/\s+/g, '')) return null;
  if (writeBiome) {
    writeFileSync(file, updated);
    console.log(`${biomePath}: layer overrides rewritten from ${configPath}`);
    return null;
  }
  return `${biomePath}: its layer overrides differ from ${configPath}; run node scripts/check-layers.js --write-biome`;
}

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (/\.(ts|mts|js|mjs)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

// Blanks comments but keeps strings, template literals and line numbers; marks which offsets
// are inside a string, so `import(...)` written inside a string (a test's fixture) is no import.
function stripComments(text) {
  let out = '';
  const inString = new Uint8Array(text.length);
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    const next = text[i + 1];
    if (c === '/' && next === '/') {
      while (i < text.length && text[i] !== '\n') i++;
      // keep offsets aligned: the comment's characters are dropped, so pad them back
      out = out.padEnd(i, ' ');
    } else if (c === '/' && next === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end < 0 ? text.length : end + 2;
      out += text.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
    } else if (c === "'" || c === '"' || c === '`') {
      let j = i + 1;
      while (j < text.length && text[j] !== c) {
        if (text[j] === '\\') j++;
        else if (c !== '`' && text[j] === '\n') break;
        j++;
      }
      inString.fill(1, i + 1, Math.min(j, text.length));
      out += text.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return { code: out, inString };
}

// `import x from`, `import type {..} from`, `export {..} from`, `export * from`, `import '..'`.
const staticImport = /(?:^|[;\n}])\s*(import|export)\s+(type\s+)?(?:[\w$*{}\s,]*?(?:\bas\s+[\w$]+\s*)?\bfrom\s*)?(['"])([^'"\n]+)\3/g;
const dynamicImport = /\bimport\s*\(\s*(['"])([^'"\n]+)\1\s*\)/g;

function importsOf(file) {
  const { code: text, inString } = stripComments(readFileSync(file, 'utf8'));
  const lineAt = (offset) => text.slice(0, offset).split('\n').length;
  const found = [];
  for (const m of text.matchAll(staticImport)) {
    // `export const x = ...` etc. never match: the clause before `from` allows no `=` or `(`.
    const keyword = m.index + m[0].indexOf(m[1]);
    if (inString[keyword]) continue;
    const specOffset = m.index + m[0].lastIndexOf(m[3] + m[4]);
    found.push({ spec: m[4], typeOnly: Boolean(m[2]), line: lineAt(specOffset) });
  }
  for (const m of text.matchAll(dynamicImport)) {
    if (inString[m.index]) continue;
    found.push({ spec: m[2], typeOnly: false, line: lineAt(m.index), dynamic: true });
  }
  return found.filter((i) => i.spec.startsWith('.'));
}

// `./x.js` names the compiled file; the source is `./x.ts` (or a folder's index.ts).
function resolve(fromFile, spec) {
  const base = path.resolve(path.dirname(fromFile), spec);
  const candidates = [base.replace(/\.js$/, '.ts'), base.replace(/\.mjs$/, '.mts'), base, `${base}.ts`, path.join(base, 'index.ts')];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile());
}

const rel = (p) => path.relative(repo, p).split(path.sep).join('/');
const files = config.scan.filter((d) => existsSync(d)).flatMap((d) => walk(path.join(repo, d)));
const edges = new Map(); // file -> [{to, typeOnly, line, spec}]
const problems = [];
const crossFolder = [];
let upward = 0;
let sideways = 0;
let banned = 0;

const pending = (config.pending ?? []).map((e) => ({ ...e, seen: false }));
const srcRoot = `${config.root}/`;
const topFolder = (file) => {
  const r = rel(file);
  return r.startsWith(srcRoot) ? r.slice(srcRoot.length).split('/')[0] : null;
};

for (const file of files) {
  const list = [];
  for (const imp of importsOf(file)) {
    const to = resolve(file, imp.spec);
    if (!to) {
      problems.push(`${rel(file)}:${imp.line}  UNRESOLVED  ${imp.spec}`);
      continue;
    }
    list.push({ to, ...imp });
    const kind = imp.typeOnly ? 'type ' : imp.dynamic ? 'dynamic ' : '';
    for (const rule of config.forbidden) {
      if (rel(file).startsWith(`${rule.from}/`) && rel(to).startsWith(`${rule.to}/`)) {
        banned++;
        problems.push(`${rel(file)}:${imp.line}  FORBIDDEN ${rule.from}/ -> ${rule.to}/  ${kind}${imp.spec}  (${rule.why})`);
      }
    }
    const from = topFolder(file);
    const target = topFolder(to);
    if (from === null || target === null || from === target) continue;
    const [a, b] = [layerOf.get(from), layerOf.get(target)];
    if (a === undefined) problems.push(`${rel(file)}  UNLAYERED folder ${from}: add it to ${configPath}`);
    if (a === undefined || b === undefined) continue;
    const tag = a < b ? 'UP' : a === b ? 'SIDEWAYS' : 'down';
    crossFolder.push(`${tag.padEnd(8)} ${kind.padEnd(8)} ${rel(file)} -> ${rel(to)}`);
    if (a > b) continue;
    const waiting = pending.find((e) => e.file === rel(file) && e.imports === rel(to));
    if (waiting) {
      waiting.seen = true;
      continue;
    }
    if (a < b) upward++;
    else sideways++;
    const names = (i) => `${config.layers[i].name}`;
    problems.push(`${rel(file)}:${imp.line}  ${tag} ${kind}${from} (${names(a)}) -> ${target} (${names(b)})  ${imp.spec}`);
  }
  edges.set(file, list);
}

// Strongly connected components (Tarjan, iterative) of the file graph; any with two or more
// files, or a file importing itself, is a cycle.
function cycles(includeTypes) {
  const index = new Map();
  const low = new Map();
  const onStack = new Set();
  const stack = [];
  const out = [];
  let counter = 0;
  const next = (f) => (edges.get(f) ?? []).filter((e) => includeTypes || !e.typeOnly).map((e) => e.to);
  for (const root of files) {
    if (index.has(root)) continue;
    const work = [[root, 0]];
    index.set(root, counter);
    low.set(root, counter++);
    stack.push(root);
    onStack.add(root);
    while (work.length) {
      const frame = work[work.length - 1];
      const [v] = frame;
      const succ = next(v);
      if (frame[1] < succ.length) {
        const w = succ[frame[1]++];
        if (!index.has(w)) {
          index.set(w, counter);
          low.set(w, counter++);
          stack.push(w);
          onStack.add(w);
          work.push([w, 0]);
        } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
        continue;
      }
      work.pop();
      if (work.length) {
        const parent = work[work.length - 1][0];
        low.set(parent, Math.min(low.get(parent), low.get(v)));
      }
      if (low.get(v) === index.get(v)) {
        const scc = [];
        let w;
        do {
          w = stack.pop();
          onStack.delete(w);
          scc.push(w);
        } while (w !== v);
        if (scc.length > 1 || next(v).includes(v)) out.push(scc.map(rel).sort());
      }
    }
  }
  return out;
}

const runtimeCycles = cycles(false);
const runtimeKeys = new Set(runtimeCycles.map((c) => c.join()));
const typeCycles = cycles(true).filter((c) => !runtimeKeys.has(c.join()));
for (const c of runtimeCycles) problems.push(`CYCLE (run time) ${c.join(' <-> ')}`);
for (const c of typeCycles) problems.push(`CYCLE (with type imports) ${c.join(' <-> ')}`);

for (const e of pending) {
  if (!e.seen) problems.push(`${configPath}: pending ${e.file} -> ${e.imports} matches no import any more: delete the entry`);
}
const biomeProblem = syncBiome();
if (biomeProblem) problems.push(biomeProblem);

if (listAll) console.log(crossFolder.sort().join('\n'));
for (const p of problems) console.log(p);
const cycleCount = runtimeCycles.length + typeCycles.length;
console.log(
  `check-layers: ${files.length} files, ${[...edges.values()].reduce((n, l) => n + l.length, 0)} relative imports: ${upward} upward, ${sideways} sideways, ${cycleCount} cycles ` +
    `(${runtimeCycles.length} at run time), ${banned} forbidden; ${pending.filter((e) => e.seen).length} pending exceptions`,
);
process.exit(problems.length ? 1 : 0);
