// Attack tools recognized by the application_name a client sends: the list is data
// (src/threat/data/harmful-applications.json), each entry a case-insensitive rule, either a
// plain substring or a regular expression. Loaded and checked once, on first use; a broken
// entry is a HarmfulAppsDataError naming it, not a silently skipped tool.

import { readFileSync } from 'node:fs';

export interface HarmfulApplication {
  readonly tool: string;
  readonly description: string;
}

export class HarmfulAppsDataError extends Error {
  override readonly name = 'HarmfulAppsDataError';
}

interface Rule extends HarmfulApplication {
  test(lowerName: string): boolean;
}

/** PostgreSQL keeps 63 bytes of application_name; a longer value is cut before matching. */
const MAX_NAME = 256;

const DATA_FILE = new URL('../../../../src/threat/data/harmful-applications.json', import.meta.url);

let rules: readonly Rule[] | null = null;

export function matchHarmfulApplication(applicationName: string | undefined): HarmfulApplication | null {
  if (typeof applicationName !== 'string' || applicationName === '') return null;
  rules ??= loadHarmfulApplicationRules();
  const name = applicationName.slice(0, MAX_NAME).toLowerCase();
  for (const r of rules) if (r.test(name)) return { tool: r.tool, description: r.description };
  return null;
}

/** Reads and checks the rules (exported for tests and for a custom data file). */
export function loadHarmfulApplicationRules(file: URL | string = DATA_FILE): readonly Rule[] {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new HarmfulAppsDataError(`cannot read the harmful-application list ${String(file)}: ${(err as Error).message}`);
  }
  if (!Array.isArray(data)) throw new HarmfulAppsDataError(`${String(file)} must hold a JSON array of rules`);
  return data.map((e: unknown, i): Rule => {
    const where = `rule ${i} of ${String(file)}`;
    if (e === null || typeof e !== 'object') throw new HarmfulAppsDataError(`${where} is not an object`);
    const { tool, match, pattern, description } = e as Record<string, unknown>;
    for (const [k, v] of Object.entries({ tool, pattern, description })) {
      if (typeof v !== 'string' || v === '') throw new HarmfulAppsDataError(`${where} needs a non-empty string "${k}"`);
    }
    const base = { tool: tool as string, description: description as string };
    if (match === 'substring') {
      const needle = (pattern as string).toLowerCase();
      return { ...base, test: (n) => n.includes(needle) };
    }
    if (match === 'regex') {
      let re: RegExp;
      try {
        re = new RegExp(pattern as string, 'i');
      } catch (err) {
        throw new HarmfulAppsDataError(`${where} ("${String(tool)}") has an invalid pattern: ${(err as Error).message}`);
      }
      return { ...base, test: (n) => re.test(n) };
    }
    throw new HarmfulAppsDataError(`${where} ("${String(tool)}") needs "match": "substring" or "regex"`);
  });
}
