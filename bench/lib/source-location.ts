// Maps a profile location in the compiled output (`dist/src/x.js:LINE`, as lib/cpuprofile.ts
// prints it) to the TypeScript source line through the .js.map tsc writes beside it
// (node:module's SourceMap). The column taken is the line's first non-blank character, where
// a function's declaration starts.
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const maps = new Map<string, { map: SourceMap; lines: string[] } | null>();

function load(jsFile: string): { map: SourceMap; lines: string[] } | null {
  if (!maps.has(jsFile)) {
    const mapFile = `${jsFile}.map`;
    maps.set(
      jsFile,
      existsSync(mapFile) && existsSync(jsFile)
        ? { map: new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8'))), lines: readFileSync(jsFile, 'utf8').split('\n') }
        : null,
    );
  }
  return maps.get(jsFile)!;
}

/** `src/x.ts:LINE` for `dist/src/x.js:LINE`, or the location as it was when there is no map. */
export function sourceLocation(location: string): string {
  const m = /^(.*\.js):(\d+)$/.exec(location);
  if (!m) return location;
  const jsFile = path.join(repoRoot, m[1]!);
  const loaded = load(jsFile);
  if (!loaded) return location;
  const line0 = Number(m[2]) - 1;
  const col = Math.max(0, (loaded.lines[line0] ?? '').search(/\S/));
  const e = loaded.map.findEntry(line0, col) as { originalSource?: string; originalLine?: number };
  if (!e.originalSource || e.originalLine === undefined) return location;
  const src = e.originalSource.startsWith('file://') ? fileURLToPath(e.originalSource) : path.resolve(path.dirname(jsFile), e.originalSource);
  return `${path.relative(repoRoot, src)}:${e.originalLine + 1}`;
}
