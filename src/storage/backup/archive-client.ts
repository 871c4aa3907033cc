// The archive_command / restore_command of a managed server: a key-less client of the
// platform's archive agent (protocol in wal-archive.ts). Runs as the server's OS user, with the
// data directory as its working directory. Imports only node built-ins, to start fast.
//   node archive-client.js <socket> archive <path> <name>    exit 0 stored, 1 not stored
//   node archive-client.js <socket> restore <name> <path>    exit 0 restored, 1 missing,
//                                                            126 error (recovery must stop)
import net from 'node:net';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const EXIT_MISSING = 1;
const EXIT_FATAL = 126;
const TIMEOUT_MS = 10 * 60_000;
const MAX_BYTES = 1 << 30;

function request(socketPath: string, head: string, body: Buffer | null): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    const sock = net.createConnection(socketPath, () => {
      sock.write(head);
      if (body) sock.write(body);
    });
    sock.setTimeout(TIMEOUT_MS, () => sock.destroy(new Error('archive agent timed out')));
    sock.on('data', (d: Buffer) => {
      size += d.length;
      if (size > MAX_BYTES + 256) sock.destroy(new Error('answer too large'));
      else parts.push(d);
    });
    sock.on('error', reject);
    sock.on('end', () => resolve(Buffer.concat(parts, size)));
  });
}

function headLine(answer: Buffer): { line: string; rest: Buffer } {
  const i = answer.indexOf(10);
  if (i < 0) return { line: answer.toString('latin1').slice(0, 200), rest: Buffer.alloc(0) };
  return { line: answer.subarray(0, i).toString('utf8'), rest: answer.subarray(i + 1) };
}

async function main(argv: string[]): Promise<number> {
  const [socketPath, op, a, b] = argv;
  if (!socketPath || !a || !b || (op !== 'archive' && op !== 'restore')) {
    process.stderr.write('usage: archive-client <socket> archive <path> <name> | restore <name> <path>\n');
    return op === 'restore' ? EXIT_FATAL : 1;
  }
  if (op === 'archive') {
    const data = readFileSync(path.resolve(a));
    const { line } = headLine(await request(socketPath, `ARCHIVE ${b} ${data.length}\n`, data));
    if (line === 'OK') return 0;
    process.stderr.write(`pgwarden archive of ${b} failed: ${line.replace(/^ERR /, '')}\n`);
    return 1;
  }
  const { line, rest } = headLine(await request(socketPath, `RESTORE ${a}\n`, null));
  if (line === 'MISSING') return EXIT_MISSING;
  const m = /^OK (\d+)$/.exec(line);
  if (!m || Number(m[1]) !== rest.length) {
    process.stderr.write(`pgwarden restore of ${a} failed: ${m ? 'short answer from the archive agent' : line.replace(/^ERR /, '')}\n`);
    return EXIT_FATAL;
  }
  const dest = path.resolve(b);
  const temp = `${dest}.pgw-${process.pid}`;
  try {
    writeFileSync(temp, rest, { mode: 0o600 });
    renameSync(temp, dest);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`pgwarden archive client: ${err.message}\n`);
    process.exit(process.argv[3] === 'restore' ? EXIT_FATAL : 1);
  },
);
