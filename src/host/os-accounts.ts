// The OS users a platform runs PostgreSQL as: one per managed server and one for the embedded
// catalog, so code running inside one server (an extension bug, an escalation) cannot read,
// signal or connect to another server or the catalog. Each user owns its own data directory,
// socket directory, volume and log only (0700).
//
// Names are unique per platform installation, so two platforms on one host (the test suite runs
// many at once, each with server ids from 1) never share or remove each other's users:
//   pgw_<tag>_c        the catalog          tag: 8 hex of SHA-256(host id, data dir)
//   pgw_<tag>_s<id>    managed server <id>
// Made on demand (useradd --system, own group, no home, nologin), with a GECOS comment that
// says whose they are: `pgwarden <kind> <tag> <data dir>`. A user is used or removed only when
// its comment is exactly that; a same-named user made by anyone else is refused (fail closed).
// A server's user is removed with the server; removeAll() removes a platform's users;
// sweepOrphans() removes those of platforms whose data dir no longer exists.
//
// A platform that is not root runs everything as itself, as before (dropsPrivileges false).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import { assertReachable, type OsAccount } from './os-user.js';
import { addSystemUser, deleteUser, listUsers, lookupUser, type PasswdEntry } from './os-user-db.js';

/** What a managed-server engine needs from the accounts. */
export interface ServerAccounts {
  /** The server's user, made when missing. */
  server(id: number): Promise<OsAccount>;
  /** Removes the server's user (only one this platform made). */
  removeServer(id: number): Promise<void>;
}

const NAME = /^pgw_([0-9a-f]{8})_(c|s\d{1,10})$/;
const COMMENT = /^pgwarden (catalog|server \d{1,10}) ([0-9a-f]{8}) (\/.*)$/;

/** 8 hex characters naming one installation: its host id and where its data dir is. */
export function accountTag(hostId: string, root: string): string {
  return createHash('sha256')
    .update(`${hostId}\0${path.resolve(root)}`)
    .digest('hex')
    .slice(0, 8);
}

/** A data dir path fit for a GECOS field (no ':' ',' or control characters), else '-'. */
function commentPath(root: string): string {
  return /^\/[^:,\x00-\x1f\x7f]*$/.test(root) ? root : '-';
}

export class PlatformAccounts implements ServerAccounts {
  readonly tag: string;
  /** False when the platform is not root: everything runs as the platform's own user. */
  readonly dropsPrivileges: boolean;
  private readonly root: string;
  private readonly ensured = new Map<string, Promise<OsAccount>>();

  constructor(o: { readonly root: string; readonly hostId: string; readonly privileged?: boolean }) {
    this.root = path.resolve(o.root);
    this.tag = accountTag(o.hostId, this.root);
    this.dropsPrivileges = o.privileged ?? process.getuid?.() === 0;
  }

  /** The accounts of the platform in `root` (its host id must exist: the platform ran there). */
  static forDataDir(root: string): PlatformAccounts {
    const hostId = readFileSync(path.join(root, 'host-id'), 'utf8').trim();
    return new PlatformAccounts({ root, hostId });
  }

  catalogName(): string {
    return `pgw_${this.tag}_c`;
  }

  serverName(id: number): string {
    if (!Number.isSafeInteger(id) || id < 0 || id > 9_999_999_999) throw new Error(`invalid server id ${id}`);
    return `pgw_${this.tag}_s${id}`;
  }

  private comment(kind: string): string {
    return `pgwarden ${kind} ${this.tag} ${commentPath(this.root)}`;
  }

  catalog(): Promise<OsAccount> {
    return this.ensure(this.catalogName(), this.comment('catalog'));
  }

  server(id: number): Promise<OsAccount> {
    return this.ensure(this.serverName(id), this.comment(`server ${id}`));
  }

  async removeServer(id: number): Promise<void> {
    if (!this.dropsPrivileges) return;
    await this.remove(this.serverName(id), this.comment(`server ${id}`));
  }

  /** Removes every user of this platform (for an installation being removed); returns their names. */
  async removeAll(): Promise<string[]> {
    if (!this.dropsPrivileges) return [];
    const mine = (await listUsers()).filter((u) => NAME.exec(u.name)?.[1] === this.tag && COMMENT.exec(u.comment)?.[2] === this.tag);
    for (const u of mine) await this.remove(u.name, u.comment);
    return mine.map((u) => u.name);
  }

  /** Throws a clear error when the servers' users cannot reach `dir` (they own no ancestor). */
  assertReachable(dir: string): void {
    if (!this.dropsPrivileges) return;
    assertReachable(dir, { name: `pgw_${this.tag}_*`, uid: -1, gid: -1, dropsPrivileges: true });
  }

  private async remove(name: string, comment: string): Promise<void> {
    this.ensured.delete(name);
    const u = await lookupUser(name);
    if (!u || u.comment !== comment) return; // gone, or not ours: never touched
    await deleteUser(name);
  }

  private ensure(name: string, comment: string): Promise<OsAccount> {
    if (!this.dropsPrivileges) {
      const me = userInfo();
      return Promise.resolve({ name: me.username, uid: me.uid, gid: me.gid, dropsPrivileges: false });
    }
    let p = this.ensured.get(name);
    if (!p) {
      p = ensureUser(name, comment);
      this.ensured.set(name, p);
      p.catch(() => this.ensured.delete(name));
    }
    return p;
  }
}

async function ensureUser(name: string, comment: string): Promise<OsAccount> {
  let u = await lookupUser(name);
  if (!u) {
    await addSystemUser(name, comment);
    u = await lookupUser(name);
    if (!u) throw new Error(`could not create the OS user ${name}`);
  }
  if (u.comment !== comment) {
    throw new Error(
      `The OS user ${name} exists but was not made by this platform (its comment is '${u.comment}'): refusing to run PostgreSQL as it. Remove it or move the data dir.`,
    );
  }
  if (u.uid === 0 || u.gid === 0) throw new Error(`The OS user ${name} has uid or gid 0: refusing to run PostgreSQL as it.`);
  return { name: u.name, uid: u.uid, gid: u.gid, dropsPrivileges: true };
}

function currentTag(root: string): string | null {
  try {
    const hostId = readFileSync(path.join(root, 'host-id'), 'utf8').trim();
    return hostId ? accountTag(hostId, root) : null;
  } catch {
    return null;
  }
}

/** pgwarden users whose platform is gone: its data dir (or its host id) no longer exists, or
 * now belongs to another installation. Users whose data dir could not be written in the
 * comment are never swept. */
export function orphanAccounts(users: readonly PasswdEntry[]): PasswdEntry[] {
  return users.filter((u) => {
    const n = NAME.exec(u.name);
    const c = COMMENT.exec(u.comment);
    if (!n || !c || n[1] !== c[2]) return false;
    if ((n[2] === 'c') !== (c[1] === 'catalog') || (n[2] !== 'c' && n[2] !== `s${c[1]!.slice(7)}`)) return false;
    return currentTag(c[3]!) !== n[1];
  });
}

/** Removes the users of platforms whose data dir is gone (a user with running processes stays:
 * userdel refuses). Only as root; returns the names removed. */
export async function sweepOrphanAccounts(): Promise<string[]> {
  if (process.getuid?.() !== 0) return [];
  const removed: string[] = [];
  for (const u of orphanAccounts(await listUsers())) {
    const again = await lookupUser(u.name);
    if (!again || again.comment !== u.comment || orphanAccounts([again]).length === 0) continue;
    try {
      await deleteUser(u.name, 0);
      removed.push(u.name);
    } catch {
      /* still in use: next time */
    }
  }
  return removed;
}
