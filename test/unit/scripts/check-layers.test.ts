// scripts/check-layers.js on a small tree of its own: upward and sideways imports at every depth
// and in every import form, folder bans, cycles (type-only ones too), pending exceptions, and no
// complaint about imports that go down or stay inside a folder.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

const SCRIPT = path.resolve('scripts/check-layers.js');
const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

function tree(files: Record<string, string>, pending: object[] = []): string {
  const root = mkdtempSync(path.join(tmpdir(), 'check-layers-'));
  roots.push(root);
  const config = {
    root: 'src',
    scan: ['src', 'bench', 'test'],
    layers: [
      { name: 'low', folders: ['low'], holds: 'x' },
      { name: 'middle', folders: ['left', 'right'], holds: 'x' },
      { name: 'high', folders: ['high'], holds: 'x' },
    ],
    forbidden: [{ from: 'bench', to: 'test', why: 'fixtures live in support/' }],
    pending,
  };
  writeFileSync(path.join(root, 'layers.json'), JSON.stringify(config));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    writeFileSync(path.join(root, name), text);
  }
  return root;
}

function check(root: string): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [SCRIPT], { cwd: root, encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

const base = {
  'src/low/a.ts': 'export const a = 1;\n',
  'src/high/h.ts': 'export const h = 1;\n',
  'src/left/l.ts': 'export const l = 1;\n',
  'src/right/r.ts': 'export const r = 1;\n',
  'test/t.ts': 'export const t = 1;\n',
};

describe('check-layers', () => {
  it('passes imports that go down or stay inside a folder', () => {
    const root = tree({
      ...base,
      'src/high/down.ts': "import { a } from '../low/a.js';\nimport { l } from '../left/l.js';\nimport { h } from './h.js';\nexport const d = [a, l, h];\n",
      'src/left/deep/x.ts': "import type { a } from '../../low/a.js';\nexport { l } from '../l.js';\nexport type A = typeof a;\n",
      'bench/b.ts': "import { h } from '../src/high/h.js';\nexport const b = h;\n",
    });
    const r = check(root);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /0 upward, 0 sideways, 0 cycles/);
  });

  it('reports upward and sideways imports at each depth and in each form, and folder bans', () => {
    const root = tree({
      ...base,
      'src/low/up1.ts': "import { h } from '../high/h.js';\nexport const u = h;\n",
      'src/low/deep/up2.ts': "import type { h } from '../../high/h.js';\nexport type U = typeof h;\n",
      'src/low/re.ts': "export { h } from '../high/h.js';\n",
      'src/low/dyn.ts': "export const load = () => import('../high/h.js');\n",
      'src/left/side.ts': "import {\n  r,\n} from '../right/r.js';\nexport const s = r;\n",
      'bench/lib/b.ts': "export * from '../../test/t.js';\n",
    });
    const r = check(root);
    assert.equal(r.code, 1);
    assert.match(r.out, /src\/low\/up1\.ts:1 {2}UP low \(low\) -> high \(high\)/);
    assert.match(r.out, /src\/low\/deep\/up2\.ts:1 {2}UP type low/);
    assert.match(r.out, /src\/low\/re\.ts:1 {2}UP low/);
    assert.match(r.out, /src\/low\/dyn\.ts:1 {2}UP dynamic low/);
    assert.match(r.out, /src\/left\/side\.ts:3 {2}SIDEWAYS left \(middle\) -> right \(middle\)/);
    assert.match(r.out, /bench\/lib\/b\.ts:1 {2}FORBIDDEN bench\/ -> test\//);
    assert.match(r.out, /4 upward, 1 sideways, 0 cycles \(0 at run time\), 1 forbidden/);
  });

  it('reports cycles, type-only ones apart, and ignores imports in comments', () => {
    const root = tree({
      ...base,
      'src/low/x.ts': "import { y } from './y.js';\nexport const x = () => y;\n",
      'src/low/y.ts': "import { x } from './x.js';\nexport const y = () => x;\n",
      'src/left/p.ts': "import type { Q } from './q.js';\nexport interface P { q?: Q }\n",
      'src/left/q.ts': "import type { P } from './p.js';\n// import { h } from '../high/h.js';\nexport interface Q { p?: P }\n",
    });
    const r = check(root);
    assert.equal(r.code, 1);
    assert.match(r.out, /CYCLE \(run time\) src\/low\/x\.ts <-> src\/low\/y\.ts/);
    assert.match(r.out, /CYCLE \(with type imports\) src\/left\/p\.ts <-> src\/left\/q\.ts/);
    assert.match(r.out, /0 upward, 0 sideways, 2 cycles \(1 at run time\)/);
  });

  it('allows a pending exception while its import exists, and fails once it is gone', () => {
    const pending = [{ file: 'src/low/up1.ts', imports: 'src/high/h.ts', why: 'moves soon' }];
    const open = check(tree({ ...base, 'src/low/up1.ts': "import { h } from '../high/h.js';\nexport const u = h;\n" }, pending));
    assert.equal(open.code, 0, open.out);
    assert.match(open.out, /0 upward.*1 pending exceptions/);
    const done = check(tree({ ...base, 'src/low/up1.ts': 'export const u = 1;\n' }, pending));
    assert.equal(done.code, 1);
    assert.match(done.out, /pending src\/low\/up1\.ts -> src\/high\/h\.ts matches no import any more/);
  });
});
