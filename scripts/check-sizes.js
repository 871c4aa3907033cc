#!/usr/bin/env node
// House rule checker (issue 17): no source file over 450 lines, except data tables named below.
// Counts the TypeScript, JavaScript, Rust and C files git tracks (outside a git checkout, the files
// under the source folders).
// Plain Node, no dependencies, so it runs before anything is built.
//
//   node scripts/check-sizes.js     check; exit 1 listing each file over the limit
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const MAX_LINES = 450;
/** Data tables: long by nature, one entry a line. */
const DATA_TABLES = new Set(['src/audit/classify/builtin-functions.ts']);
const SOURCE = /\.(ts|js|mjs|rs|c|h)$/;
const SKIP = /(^|\/)(node_modules|target|dist)\//;

function files() {
  try {
    return execFileSync('git', ['ls-files', '-z'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\0')
      .filter(Boolean);
  } catch {
    const out = [];
    const walk = (dir) => {
      for (const name of readdirSync(dir)) {
        const p = path.posix.join(dir, name);
        if (statSync(p).isDirectory()) {
          if (!SKIP.test(`${p}/`)) walk(p);
        } else out.push(p);
      }
    };
    for (const top of ['src', 'web', 'test', 'bench', 'scripts', 'native', 'ext', 'bin', 'support']) {
      try {
        walk(top);
      } catch {
        // a folder this checkout does not have
      }
    }
    return out;
  }
}

const over = [];
let counted = 0;
for (const f of files()) {
  if (!SOURCE.test(f) || SKIP.test(f) || DATA_TABLES.has(f)) continue;
  let text;
  try {
    text = readFileSync(f, 'utf8');
  } catch {
    continue; // listed by git but deleted in the working tree
  }
  counted++;
  const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
  if (lines > MAX_LINES) over.push(`${f}: ${lines} lines`);
}
if (over.length) {
  console.error(`check-sizes: ${over.length} source file(s) over ${MAX_LINES} lines (split them, or name a data table in scripts/check-sizes.js):`);
  for (const o of over) console.error(`  ${o}`);
  process.exit(1);
}
console.log(`check-sizes: ${counted} source files, none over ${MAX_LINES} lines (${DATA_TABLES.size} data table(s) exempt)`);
