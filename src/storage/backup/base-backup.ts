// A base backup of a running server: pg_basebackup (as the maintenance superuser, over the Unix
// socket) writes a tar of the data directory to its stdout, which goes straight into the AEAD
// stream and the repository; the clear bytes never touch a disk. WAL is not in the tar (-X none):
// it comes from the archive. The backup is complete, and gets its manifest, only once the WAL
// segment holding its end LSN is in the archive, so a restore always finds WAL from start to end.
import { spawn } from 'node:child_process';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { findPgBinaries } from '../../host/pg-binaries.js';
import type { BackupRepository } from './repository.js';
import {
  BACKUP_FORMAT_VERSION,
  CIPHER_NAME,
  baseStreamAad,
  defaultKeyAad,
  encryptStream,
  newDataKey,
  storeWrappedKey,
  type KekProvider,
  type KeyAadFor,
} from './cipher.js';
import { baseDataKey, newBackupId, writeManifest, type BackupManifest } from './manifest.js';
import { walObjectKey } from './wal-segment.js';
import { parseLsn, walFileNameOf } from './wal-names.js';
import { byteCounter } from './stream-util.js';
import { BackupError } from './errors.js';
import { throttled, type ProgressFn } from './progress.js';

export interface BaseBackupOptions {
  /** The server's Unix socket directory. */
  readonly socketDir: string;
  readonly port?: number;
  /** The maintenance superuser, and its password (given to pg_basebackup in its environment, never in argv). */
  readonly user: string;
  readonly password?: string;
  readonly database?: string;
  readonly repo: BackupRepository;
  readonly serverId: string;
  readonly kek: KekProvider;
  readonly aadFor?: KeyAadFor;
  readonly onProgress?: ProgressFn;
  /** How long to wait for the end WAL segment to reach the archive (default 120 s). */
  readonly archiveWaitMs?: number;
  readonly now?: () => Date;
}

const START = /write-ahead log start point: ([0-9A-F]+\/[0-9A-F]+) on timeline (\d+)/i;
const END = /write-ahead log end point: ([0-9A-F]+\/[0-9A-F]+)/i;

const LABEL_START =
  /START WAL LOCATION: ([0-9A-F]+\/[0-9A-F]+) \(file [0-9A-F]{24}\)\nCHECKPOINT LOCATION: [^\n]*\nBACKUP METHOD: [^\n]*\nBACKUP FROM: [^\n]*\nSTART TIME: [^\n]*\nLABEL: [^\n]*\nSTART TIMELINE: (\d+)/;
/** How much of the tar stream is searched for backup_label (pg_basebackup sends it first). */
const LABEL_SCAN_BYTES = 64 * 1024;

/** Parses pg_basebackup --verbose output (it reports WAL positions only when it fetches WAL). */
export function parseBasebackupLog(stderr: string): { startLsn?: string; timeline?: number; stopLsn?: string } {
  const s = START.exec(stderr);
  const e = END.exec(stderr);
  return { ...(s ? { startLsn: s[1]!, timeline: Number(s[2]) } : {}), ...(e ? { stopLsn: e[1]! } : {}) };
}

/** Finds the start LSN and timeline in the backup_label at the head of the tar stream. */
export function parseBackupLabel(head: string): { startLsn: string; timeline: number } | null {
  const m = LABEL_START.exec(head);
  return m ? { startLsn: m[1]!, timeline: Number(m[2]) } : null;
}

/** The WAL file holding the last byte before `lsn` (what a backup ending at `lsn` needs). */
export function lastWalFileBefore(timeline: number, lsn: string, segmentBytes: number): string {
  const v = parseLsn(lsn);
  const prev = v > 0n ? v - 1n : 0n;
  return walFileNameOf(timeline, `${(prev >> 32n).toString(16)}/${(prev & 0xffffffffn).toString(16)}`, segmentBytes);
}

export async function createBaseBackup(o: BaseBackupOptions): Promise<BackupManifest> {
  const now = o.now ?? (() => new Date());
  const progress = throttled(o.onProgress);
  const client = new pg.Client({
    host: o.socketDir,
    port: o.port,
    user: o.user,
    password: o.password,
    database: o.database ?? 'postgres',
    application_name: 'pgwarden-backup',
  });
  // A server stopped during the backup drops this connection: the query in flight fails, and the
  // client's own error event must not be an uncaught exception.
  client.on('error', () => undefined);
  await client.connect();
  const dataKey = newDataKey();
  const startTime = now();
  const backupId = newBackupId(startTime);
  const dataObject = baseDataKey(o.serverId, backupId);
  try {
    const info = await client.query<{ total: string; segment: string; major: string; archiving: string }>(
      `select (select sum(pg_database_size(oid)) from pg_database)::text as total,
              (select setting from pg_settings where name = 'wal_segment_size') as segment,
              current_setting('server_version_num') as major,
              current_setting('archive_mode') as archiving`,
    );
    const row = info.rows[0]!;
    if (row.archiving === 'off') {
      throw new BackupError(`Server '${o.serverId}' does not archive its WAL (archive_mode is off): a base backup without the WAL archive cannot be restored.`);
    }
    const total = Number(row.total);
    const segmentBytes = Number(row.segment);
    const wrapped = await o.kek.wrap(dataKey, (o.aadFor ?? defaultKeyAad)(o.serverId, 'base', backupId));

    const pgb = findPgBinaries();
    const backupLabel = `pgwarden ${o.serverId} ${backupId}`;
    const child = spawn(
      pgb.bin('pg_basebackup'),
      [
        '-h',
        o.socketDir,
        ...(o.port ? ['-p', String(o.port)] : []),
        '-U',
        o.user,
        '-w',
        '-D',
        '-',
        '-Ft',
        '-X',
        'none',
        '--checkpoint=fast',
        '--no-manifest',
        '--verbose',
        `--label=${backupLabel}`,
      ],
      {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', PGAPPNAME: 'pgwarden-backup', ...(o.password ? { PGPASSWORD: o.password } : {}) },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 65_536) stderr += d.toString();
    });
    const exited = new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code) => resolve(code));
    });
    let plaintextBytes = 0;
    const headParts: Buffer[] = [];
    let headBytes = 0;
    const enc = encryptStream(dataKey, baseStreamAad(o.serverId, backupId));
    const stdoutDone = pipeline(
      child.stdout,
      byteCounter((n, chunk) => {
        if (headBytes < LABEL_SCAN_BYTES) {
          headParts.push(chunk.subarray(0, LABEL_SCAN_BYTES - headBytes));
          headBytes += Math.min(chunk.length, LABEL_SCAN_BYTES - headBytes);
        }
        plaintextBytes = n;
        progress({ phase: 'backup', done: n, total, unit: 'bytes' });
      }),
      enc,
    );
    const [put, , code] = await Promise.all([o.repo.put(dataObject, enc), stdoutDone, exited]).catch(async (err: Error) => {
      child.kill('SIGTERM');
      throw err;
    });
    if (code !== 0) throw new BackupError(`pg_basebackup failed for server '${o.serverId}' (exit ${code}): ${stderr.trim().split('\n').slice(-3).join(' ')}`);
    // Start: pg_basebackup's own report, else the backup_label inside the tar. End: the report,
    // else the server's current WAL position now that the backup ended (at or after its true end:
    // waiting for that WAL to be archived is then, if anything, a little more than needed).
    const reported = parseBasebackupLog(stderr);
    const label = reported.startLsn
      ? { startLsn: reported.startLsn, timeline: reported.timeline! }
      : parseBackupLabel(Buffer.concat(headParts).toString('latin1'));
    if (!label) throw new BackupError(`pg_basebackup produced no backup_label for server '${o.serverId}': ${stderr.trim().slice(-500)}`);
    const stopLsn = reported.stopLsn ?? (await client.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')).rows[0]!.lsn;
    const lsns = { ...label, stopLsn };

    // The backup is usable only with WAL up to its end: wait for that segment in the archive.
    const stopWalFile = lastWalFileBefore(lsns.timeline, lsns.stopLsn, segmentBytes);
    const deadline = Date.now() + (o.archiveWaitMs ?? 120_000);
    let switched = false;
    const waitStart = Date.now();
    progress({ phase: 'wait-archive', done: plaintextBytes, total: plaintextBytes, unit: 'bytes' });
    while (!(await o.repo.stat(walObjectKey(o.serverId, stopWalFile)))) {
      if (Date.now() > deadline) {
        throw new BackupError(
          `The base backup of server '${o.serverId}' is not complete: WAL file ${stopWalFile} was not archived within ${Math.round((o.archiveWaitMs ?? 120_000) / 1000)} s. Is the archive agent running?`,
        );
      }
      if (!switched && Date.now() - waitStart > 2000) {
        // PostgreSQL switches WAL at the end of a backup; force it again if the segment is still open.
        await client.query(`select pg_switch_wal()`);
        switched = true;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const manifest: BackupManifest = {
      formatVersion: BACKUP_FORMAT_VERSION,
      backupId,
      serverId: o.serverId,
      label: backupLabel,
      cipher: CIPHER_NAME,
      timeline: lsns.timeline,
      startLsn: lsns.startLsn,
      stopLsn: lsns.stopLsn,
      startWalFile: walFileNameOf(lsns.timeline, lsns.startLsn, segmentBytes),
      stopWalFile,
      startTime: startTime.toISOString(),
      stopTime: now().toISOString(),
      pgMajorVersion: Math.floor(Number(row.major) / 10000),
      plaintextBytes,
      ciphertextBytes: put.bytes,
      wrappedKey: storeWrappedKey(wrapped),
    };
    await writeManifest(o.repo, manifest);
    progress({ phase: 'done', done: plaintextBytes, total: plaintextBytes, unit: 'bytes' });
    return manifest;
  } catch (err) {
    await o.repo.delete(dataObject).catch(() => undefined);
    throw err;
  } finally {
    dataKey.fill(0);
    await client.end().catch(() => undefined);
  }
}
