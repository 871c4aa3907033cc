// Attack tools by application_name (src/threat/data/harmful-applications.json): a
// case-insensitive pattern per tool.
import { readFileSync } from 'node:fs';
import type { HarmfulAppMatcher } from '../detectors/login-anomaly.js';

interface Entry {
  readonly tool: string;
  readonly pattern: string;
  readonly description: string;
}

export function loadHarmfulApps(file = new URL('../../../../src/threat/data/harmful-applications.json', import.meta.url)): HarmfulAppMatcher {
  const entries = (JSON.parse(readFileSync(file, 'utf8')) as Entry[]).map((e) => ({ ...e, re: new RegExp(e.pattern, 'i') }));
  return (name) => {
    if (!name) return null;
    const hit = entries.find((e) => e.re.test(name));
    return hit ? { tool: hit.tool, description: hit.description } : null;
  };
}
