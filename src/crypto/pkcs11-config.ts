// The PKCS#11 modules this platform may load, by name. Loading a module runs its code in the root
// platform process, so modules come only from the operator's own configuration: `pgwarden up
// --pkcs11-module NAME=PATH` (repeatable) and the root-owned files `/etc/pgwarden/pkcs11-modules.json`
// and `<data dir>/pkcs11-modules.json` ({"NAME": "/absolute/path.so", ...}). The API and the CLI
// name a configured module; they never hand the platform a path of their own.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { moduleFileProblem } from './pkcs11-module.js';

export const SYSTEM_PKCS11_CONFIG = '/etc/pgwarden/pkcs11-modules.json';
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Configured modules: name → absolute path (as configured; checked at start and at each load). */
export type Pkcs11Modules = ReadonlyMap<string, string>;

export class Pkcs11ConfigError extends Error {
  override readonly name = 'Pkcs11ConfigError';
}

/** `NAME=PATH` from the command line. */
export function parseModuleFlag(value: string, into: Record<string, string> = {}): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new Pkcs11ConfigError(`--pkcs11-module takes NAME=PATH (e.g. softhsm=/usr/lib/softhsm/libsofthsm2.so), got '${value}'.`);
  const name = value.slice(0, eq);
  const file = value.slice(eq + 1);
  if (!NAME.test(name)) throw new Pkcs11ConfigError(`PKCS#11 module name '${name}' must be 1-64 letters, digits, '.', '_' or '-'.`);
  if (into[name] !== undefined && into[name] !== file) throw new Pkcs11ConfigError(`PKCS#11 module '${name}' is given twice with different paths.`);
  return { ...into, [name]: file };
}

function readConfigFile(file: string): Record<string, string> {
  const st = statSync(file);
  if (!st.isFile()) throw new Pkcs11ConfigError(`${file} is not a regular file.`);
  if (st.uid !== 0) throw new Pkcs11ConfigError(`Refusing ${file}: it is owned by uid ${st.uid}, not root (it names libraries the root platform loads).`);
  if ((st.mode & 0o022) !== 0) {
    throw new Pkcs11ConfigError(`Refusing ${file}: it is writable by group or others (mode ${(st.mode & 0o7777).toString(8)}); chmod 644 it.`);
  }
  for (let dir = path.dirname(path.resolve(file)); ; dir = path.dirname(dir)) {
    const d = statSync(dir);
    if (d.uid !== 0 || (d.mode & 0o022) !== 0)
      throw new Pkcs11ConfigError(`Refusing ${file}: its directory ${dir} is not root-owned or is writable by group or others.`);
    if (dir === path.dirname(dir)) break;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as unknown;
  } catch (err) {
    throw new Pkcs11ConfigError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new Pkcs11ConfigError(`${file} must hold an object {"NAME": "/path/module.so"}.`);
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (typeof value !== 'string') throw new Pkcs11ConfigError(`${file}: the path of module '${name}' must be a string.`);
    Object.assign(out, parseModuleFlag(`${name}=${value}`, out));
  }
  return out;
}

/**
 * Every configured module, each path checked (absolute, root-owned, not writable by group or others,
 * nor any directory above it). Throws Pkcs11ConfigError naming the first problem: the platform
 * refuses to start rather than load a module someone else could have replaced.
 */
export function loadPkcs11Modules(o: { readonly flags?: Readonly<Record<string, string>>; readonly files: readonly string[] }): Pkcs11Modules {
  let all: Record<string, string> = {};
  for (const file of o.files) {
    if (!existsSync(file)) continue;
    for (const [name, p] of Object.entries(readConfigFile(file))) all = parseModuleFlag(`${name}=${p}`, all);
  }
  for (const [name, p] of Object.entries(o.flags ?? {})) {
    if (!NAME.test(name)) throw new Pkcs11ConfigError(`PKCS#11 module name '${name}' must be 1-64 letters, digits, '.', '_' or '-'.`);
    all[name] = p; // the command line wins over the files
  }
  for (const [name, p] of Object.entries(all)) {
    const problem = moduleFileProblem(p);
    if (problem) throw new Pkcs11ConfigError(`PKCS#11 module '${name}': ${problem}.`);
  }
  return new Map(Object.entries(all));
}

/** The configured name a request or a stored key names: the name itself, or a configured path
 * (older clients and catalog rows gave paths). null when it is not configured. */
export function configuredModuleName(modules: Pkcs11Modules, given: string): string | null {
  if (modules.has(given)) return given;
  if (!path.isAbsolute(given)) return null;
  for (const [name, p] of modules) if (path.resolve(p) === path.resolve(given)) return name;
  return null;
}

export function notConfiguredMessage(modules: Pkcs11Modules, given: string): string {
  const names = [...modules.keys()];
  return (
    `PKCS#11 module '${given}' is not configured on this platform. Name one of the modules the operator configured ` +
    `(${names.length ? names.join(', ') : 'none are configured'}); modules are configured only with 'pgwarden up --pkcs11-module NAME=PATH' ` +
    `or in a root-owned ${SYSTEM_PKCS11_CONFIG} or <data dir>/pkcs11-modules.json, never through the API.`
  );
}
