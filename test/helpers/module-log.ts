// Which modules a child process loaded: run it with moduleLogEnv(file) in its environment, then
// read the file with loadedModules. Node's own built-in modules are left out.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const helpersDir = path.dirname(fileURLToPath(import.meta.url));
/** The compiled src/ folder (dist/src), which the CLI's own modules are loaded from. */
const distSrc = pathToFileURL(path.resolve(helpersDir, '../../src')).href + '/';

export interface LoadedModules {
  /** npm packages by name (`commander`, `@peculiar/x509`), sorted. */
  readonly packages: readonly string[];
  /** The project's own modules, relative to src/ (`app/main.js`), sorted. */
  readonly own: readonly string[];
}

/** The environment that makes a node process log what it loads to `file`. */
export function moduleLogEnv(file: string): Record<string, string> {
  const register = path.join(helpersDir, 'module-log-register.js');
  return { PGWARDEN_MODULE_LOG: file, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${pathToFileURL(register).href}`.trim() };
}

export function loadedModules(file: string): LoadedModules {
  const urls = existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter((u) => u.startsWith('file:'))
    : [];
  const packages = new Set<string>();
  const own = new Set<string>();
  for (const url of urls) {
    const i = url.lastIndexOf('/node_modules/');
    if (i >= 0) {
      const [first, second] = url.slice(i + '/node_modules/'.length).split('/');
      packages.add(first!.startsWith('@') ? `${first}/${second}` : first!);
    } else if (url.startsWith(distSrc)) {
      own.add(url.slice(distSrc.length));
    }
  }
  return { packages: [...packages].sort(), own: [...own].sort() };
}
