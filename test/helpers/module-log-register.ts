// `node --import` this file to record what a process loads (see module-log.ts): the ESM modules
// through loader hooks, and at exit every CommonJS module in require's cache (a package's own
// require() calls do not pass the ESM hooks).
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { pathToFileURL } from 'node:url';

register('./module-log-hooks.js', import.meta.url);

const require = createRequire(import.meta.url);
process.on('exit', () => {
  const file = process.env.PGWARDEN_MODULE_LOG;
  if (!file) return;
  appendFileSync(
    file,
    Object.keys(require.cache)
      .map((p) => `${pathToFileURL(p).href}\n`)
      .join(''),
  );
});
