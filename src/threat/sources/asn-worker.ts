// The ASN loader thread (asn-tables.ts): reads and parses the tables once, hands them over (the
// typed arrays' memory moves, it is not copied) and ends.
import { parentPort } from 'node:worker_threads';
import { readAsnTables } from './asn-tables.js';

const port = parentPort!;
try {
  const t = readAsnTables();
  const buffers = [t.v4, t.v6].flatMap((x) => [x.starts, x.ends, x.asns, x.orgs].map((a) => a.buffer as ArrayBuffer));
  port.postMessage({ ok: true, tables: t }, buffers);
} catch (err) {
  port.postMessage({ ok: false, message: err instanceof Error ? err.message : String(err) });
}
