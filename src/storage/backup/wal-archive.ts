// Continuous WAL archiving without keys inside the server.
//
// PostgreSQL archives and restores as the server's own OS user, which must never hold a backup
// key nor reach another server's agent. So what it runs only hands bytes to an archive agent the
// platform (root) runs, one per server, on a Unix socket: for archiving, the archive module
// ext/pgwarden_archive (archive_library, inside the archiver process: no process per segment),
// or, where it is not installed, archive_command running a tiny client (archive-client.ts, node);
// for restoring, restore_command with that client (only during a recovery):
//   <agentDir> root-owned 0711; <agentDir>/<socket> chowned to the server's OS user, 0600.
// The agent holds the KEK provider and the server's WAL keyring, encrypts what it is sent, and
// writes it durably to the repository before it answers OK: PostgreSQL recycles a segment only
// after archive_command returned 0, so a segment is dropped only once it is stored encrypted.
//
// Protocol (one request per connection, ASCII line then raw bytes):
//   ARCHIVE <walFileName> <size>\n<size bytes>      → OK\n | ERR <message>\n
//   RESTORE <walFileName>\n                          → OK <size>\n<size bytes> | MISSING\n | ERR <message>\n
// The client sends the file's bytes and writes the restored bytes itself: the agent, which runs
// as root, never opens a path a caller named. A RESTORE answers OK only after the whole file
// authenticated. The client exits 0 on OK, 1 on MISSING (recovery then ends normally) and 126
// on ERR or when the agent cannot be reached: PostgreSQL treats an exit status above 125 from
// restore_command as fatal, so a tampered segment stops recovery loudly instead of ending it
// early. An ARCHIVE of a name already stored succeeds only if the bytes are identical.
import net from 'node:net';
import { chmodSync, chownSync, mkdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BackupRepository } from './repository.js';
import type { KekProvider, KeyAadFor } from './cipher.js';
import { WalKeyring } from './wal-keys.js';
import { openWalFile, sealWalFile, walObjectKey } from './wal-segment.js';
import { isArchivableWalName } from './wal-names.js';
import { readAll } from './stream-util.js';
import { BackupError, RepositoryObjectMissingError } from './errors.js';

export interface ArchiveAgentOptions {
  readonly socketPath: string;
  /** The OS account the server runs as: it gets the socket (0600). */
  readonly owner: { readonly uid: number; readonly gid: number };
  readonly repo: BackupRepository;
  readonly serverId: string;
  readonly kek: KekProvider;
  readonly aadFor?: KeyAadFor;
  /** Largest WAL file accepted (default 64 MiB; WAL segments are 16 MiB unless initdb said otherwise). */
  readonly maxFileBytes?: number;
  /** Requests handled at once (default 4); more wait. */
  readonly concurrency?: number;
  /** Idle time before a connection is dropped (default 60 s). */
  readonly idleTimeoutMs?: number;
  readonly maxEpochAgeMs?: number;
  readonly maxSegmentsPerEpoch?: number;
  readonly onEvent?: (e: ArchiveAgentEvent) => void;
  /** Called once a segment is stored durably, before the OK goes back (where a crash leaves a
   * stored segment that PostgreSQL did not see acknowledged; tests put one there). */
  readonly beforeAcknowledge?: (name: string) => Promise<void> | void;
}

export type ArchiveAgentEvent =
  | { readonly type: 'archived'; readonly name: string; readonly bytes: number }
  | { readonly type: 'restored'; readonly name: string; readonly bytes: number }
  | { readonly type: 'missing'; readonly name: string }
  | { readonly type: 'failed'; readonly op: 'ARCHIVE' | 'RESTORE'; readonly name: string; readonly error: Error };

export interface ArchiveAgent {
  readonly socketPath: string;
  readonly keyring: WalKeyring;
  /** Failures so far (newest last, at most 100): what a restore reports when PostgreSQL stops. */
  readonly failures: readonly { op: string; name: string; error: Error }[];
  close(): Promise<void>;
}

const MAX_LINE = 256;

export async function startArchiveAgent(o: ArchiveAgentOptions): Promise<ArchiveAgent> {
  const dir = path.dirname(o.socketPath);
  mkdirSync(dir, { recursive: true, mode: 0o711 });
  chmodSync(dir, 0o711);
  if (process.getuid?.() === 0 && statSync(dir).uid !== 0) throw new BackupError(`The archive agent directory ${dir} must be owned by root.`);
  rmSync(o.socketPath, { force: true });
  const keyring = new WalKeyring({
    repo: o.repo,
    serverId: o.serverId,
    kek: o.kek,
    aadFor: o.aadFor,
    maxEpochAgeMs: o.maxEpochAgeMs,
    maxSegmentsPerEpoch: o.maxSegmentsPerEpoch,
  });
  const maxBytes = o.maxFileBytes ?? 64 * 1024 * 1024;
  const failures: { op: string; name: string; error: Error }[] = [];
  const sockets = new Set<net.Socket>();
  let active = 0;
  const waiting: (() => void)[] = [];
  const acquire = async () => {
    if (active >= (o.concurrency ?? 4)) await new Promise<void>((r) => waiting.push(r));
    active++;
  };
  const release = () => {
    active--;
    waiting.shift()?.();
  };
  const fail = (op: 'ARCHIVE' | 'RESTORE', name: string, error: Error) => {
    failures.push({ op, name, error });
    if (failures.length > 100) failures.shift();
    o.onEvent?.({ type: 'failed', op, name, error });
  };

  const handle = async (socket: net.Socket, reader: SocketReader): Promise<void> => {
    const line = await reader.line();
    const [op, name = '', sizeText] = line.split(' ');
    if (!isArchivableWalName(name)) {
      socket.end(`ERR invalid WAL file name\n`);
      return;
    }
    await acquire();
    try {
      if (op === 'ARCHIVE') {
        const size = Number(sizeText);
        if (!Number.isSafeInteger(size) || size < 0 || size > maxBytes) {
          socket.end(`ERR invalid size (at most ${maxBytes} bytes)\n`);
          return;
        }
        const plain = await reader.bytes(size);
        try {
          await archiveOne(name, plain);
          o.onEvent?.({ type: 'archived', name, bytes: size });
          await o.beforeAcknowledge?.(name);
          if (!socket.destroyed) socket.end('OK\n');
        } catch (err) {
          fail('ARCHIVE', name, err as Error);
          socket.end(`ERR ${oneLine((err as Error).message)}\n`);
        } finally {
          plain.fill(0);
        }
      } else if (op === 'RESTORE' && sizeText === undefined) {
        let plain: Buffer | null;
        try {
          plain = await restoreOne(name);
        } catch (err) {
          fail('RESTORE', name, err as Error);
          socket.end(`ERR ${oneLine((err as Error).message)}\n`);
          return;
        }
        if (!plain) {
          o.onEvent?.({ type: 'missing', name });
          socket.end('MISSING\n');
          return;
        }
        socket.write(`OK ${plain.length}\n`);
        socket.end(plain);
        o.onEvent?.({ type: 'restored', name, bytes: plain.length });
      } else {
        socket.end('ERR unknown request\n');
      }
    } finally {
      release();
    }
  };

  const archiveOne = async (name: string, plain: Buffer): Promise<void> => {
    const key = walObjectKey(o.serverId, name);
    if (await o.repo.stat(key)) {
      // Archived before (PostgreSQL retries after a crash between our OK and its bookkeeping):
      // fine if identical, refused otherwise so an archived segment is never replaced.
      const existing = await openWalFile(keyring, o.serverId, name, await readAll(await o.repo.get(key), maxBytes * 2));
      if (existing.equals(plain)) return;
      throw new BackupError(`WAL file ${name} is already archived with different content`);
    }
    await o.repo.put(key, await sealWalFile(keyring, o.serverId, name, plain));
  };

  const restoreOne = async (name: string): Promise<Buffer | null> => {
    let stored: Buffer;
    try {
      stored = await readAll(await o.repo.get(walObjectKey(o.serverId, name)), maxBytes * 2);
    } catch (err) {
      if (err instanceof RepositoryObjectMissingError) return null;
      throw err;
    }
    return openWalFile(keyring, o.serverId, name, stored);
  };

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setTimeout(o.idleTimeoutMs ?? 60_000, () => socket.destroy());
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const reader = new SocketReader(socket);
    handle(socket, reader).catch((err: Error) => {
      if (!socket.destroyed) socket.end(`ERR ${oneLine(err.message)}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.socketPath, () => resolve());
  });
  chmodSync(o.socketPath, 0o600);
  chownSync(o.socketPath, o.owner.uid, o.owner.gid);
  return {
    socketPath: o.socketPath,
    keyring,
    failures,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(o.socketPath, { force: true });
      keyring.close();
    },
  };
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').slice(0, 1000);
}

/** Reads a request line, then an exact byte count, from a socket, with bounds. */
class SocketReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private wake: (() => void) | null = null;
  private ended = false;

  constructor(socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.buffered += d.length;
      this.wake?.();
    });
    const end = () => {
      this.ended = true;
      this.wake?.();
    };
    socket.on('end', end);
    socket.on('close', end);
  }

  private async more(): Promise<void> {
    if (this.ended) throw new Error('connection closed early');
    await new Promise<void>((r) => (this.wake = r));
    this.wake = null;
  }

  private take(n: number): Buffer {
    const all: Buffer = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }

  async line(): Promise<string> {
    for (;;) {
      if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.buffered)];
      const i = this.chunks.length ? this.chunks[0]!.indexOf(10) : -1;
      if (i >= 0) {
        const line = this.take(i + 1);
        return line.subarray(0, i).toString('latin1');
      }
      if (this.buffered > MAX_LINE) throw new Error('request line too long');
      await this.more();
    }
  }

  async bytes(n: number): Promise<Buffer> {
    while (this.buffered < n) await this.more();
    return Buffer.from(this.take(n));
  }
}

/** Where the compiled archive client lives (beside this file in dist/). */
export function archiveClientPath(): string {
  return path.join(path.dirname(fileURLToPath(import.meta.url)), 'archive-client.js');
}

function shellQuote(s: string): string {
  if (/[\0\n]/.test(s)) throw new BackupError('paths in archive settings cannot hold NUL or newline characters');
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface ArchiveCommandOptions {
  /** The agent's socket for this server. */
  readonly socketPath: string;
  /** Default: archiveClientPath(). */
  readonly clientPath?: string;
  /** Default: the node running the platform. */
  readonly nodePath?: string;
}

function clientCommand(o: ArchiveCommandOptions, args: string): string {
  return `${shellQuote(o.nodePath ?? process.execPath)} ${shellQuote(o.clientPath ?? archiveClientPath())} ${shellQuote(o.socketPath)} ${args}`;
}

/** The archive module (ext/pgwarden_archive, PostgreSQL 15+): the archiver process itself hands
 * each segment to the agent, so no process is started per segment. */
export const ARCHIVE_MODULE = 'pgwarden_archive';

/** The GUCs a managed server needs for continuous archiving through its agent: with
 * `archiveLibrary` (the module is installed) through the archive module, else through
 * archive_command running the Node client once per segment. Either way the same agent encrypts
 * and stores, and only its OK lets PostgreSQL recycle a segment. */
export function walArchiveSettings(
  o: ArchiveCommandOptions & { readonly archiveTimeoutSeconds?: number; readonly archiveLibrary?: boolean },
): Record<string, string | number> {
  const common = { wal_level: 'replica', archive_mode: 'on', archive_timeout: o.archiveTimeoutSeconds ?? 60 };
  if (o.archiveLibrary) {
    socketPathForModule(o.socketPath);
    // archive_command empty: PostgreSQL 16+ refuses both set, 15 would ignore it.
    return { ...common, archive_library: ARCHIVE_MODULE, archive_command: '', [`${ARCHIVE_MODULE}.socket`]: o.socketPath };
  }
  return { ...common, archive_command: clientCommand(o, 'archive %p %f') };
}

/** A Unix socket path holds at most 107 bytes; the module refuses longer ones at each segment,
 * so refuse them here, when the configuration is written. */
function socketPathForModule(p: string): void {
  if (Buffer.byteLength(p) > 107 || /[\0\n]/.test(p))
    throw new BackupError(`the archive agent socket path ${p} cannot be used by the archive module (longer than 107 bytes, or holds NUL or newline)`);
}

/** The GUCs of a point-in-time recovery (with recovery.signal in the data dir). Without a
 * target time, recovery replays every archived WAL file and then promotes. */
export function restoreSettings(o: ArchiveCommandOptions & { readonly targetTime?: Date }): Record<string, string | number | boolean> {
  return {
    restore_command: clientCommand(o, 'restore %f %p'),
    ...(o.targetTime ? { recovery_target_time: pgTimestamp(o.targetTime), recovery_target_inclusive: false, recovery_target_action: 'promote' } : {}),
    recovery_target_timeline: 'latest',
  };
}

/** A timestamptz literal PostgreSQL's recovery_target_time accepts (it refuses ISO 'T…Z'). */
export function pgTimestamp(d: Date): string {
  return d.toISOString().replace('T', ' ').replace('Z', '+00');
}

/** The pg_hba.conf line pg_basebackup needs: a replication connection of the maintenance role
 * over the Unix socket, with SCRAM (the `local all all` line does not cover replication). */
export function replicationHbaLine(role: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(role)) throw new BackupError(`invalid role name '${role}'`);
  return `local replication ${role} scram-sha-256`;
}
