// Loader hooks (node runs them in its hooks thread): every module node loads through the ESM
// loader is appended, as a URL, to the file $PGWARDEN_MODULE_LOG. Registered by module-log-register.
import { appendFileSync } from 'node:fs';

type NextLoad = (url: string, context: object) => Promise<object>;

export async function load(url: string, context: object, nextLoad: NextLoad): Promise<object> {
  const file = process.env.PGWARDEN_MODULE_LOG;
  if (file) appendFileSync(file, `${url}\n`);
  return nextLoad(url, context);
}
