// Encrypted volumes on this host, for each backend (fscrypt: ext4 encryption on a loop-mounted
// image; gocryptfs: FUSE): a file written by the OS user pgwarden is readable through the open
// volume and absent from the raw image / ciphertext (content and name), while the same write to
// a plain directory - and, for fscrypt, to the unencrypted part of the same image - is found by
// the same search; a wrong key is refused and changes nothing; close with a file open behaves as
// documented; a real PostgreSQL cluster inside the volume leaves no clear value in the raw bytes;
// destroy leaves no file, mount or loop device. A backend is skipped only when its probe fails.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync, statfsSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { volumeBackend, type VolumeBackend, type VolumeSpec } from '../../src/storage/volumes/volume.js';
import { VolumeBusyError, WrongVolumeKeyError } from '../../src/storage/volumes/errors.js';
import { FSCRYPT_DEFAULTS, FscryptBackend } from '../../src/storage/volumes/fscrypt.js';
import { serviceAccount, type OsAccount } from '../../src/host/os-user.js';
import { Cluster } from '../../src/engine/cluster.js';
import { filesUnder } from '../helpers/scan.js';

const PG_MARKER = `MARK${'ER_'}9dd4e461268c8034f5c8564e155c67a6`; // = 'MARK' || 'ER_' || md5('x'), built in SQL below

/** Every file under `dir` (raw bytes) and every name in it that contains `needle`. */
function search(dir: string, needle: string): string[] {
  const hits: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.name.includes(needle)) hits.push(`name ${p}`);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && readFileSync(p).includes(needle)) hits.push(`content ${p}`);
    }
  };
  if (existsSync(dir)) walk(dir);
  return hits;
}

/** Writes a file as the OS user pgwarden (own process, fsync'd), as PostgreSQL would. */
function writeAs(account: OsAccount, file: string, content: string): void {
  const code = "const fs=require('fs');const fd=fs.openSync(process.argv[1],'wx',0o600);fs.writeSync(fd,process.argv[2]);fs.fsyncSync(fd);fs.closeSync(fd);";
  const r = spawnSync(process.execPath, ['-e', code, file, content], { uid: account.uid, gid: account.gid, encoding: 'utf8' });
  assert.equal(r.status, 0, `write as ${account.name} failed: ${r.stderr}`);
}

function mountsUnder(root: string): string[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .filter((l) => l.includes(root));
}
function loopsUnder(root: string): string[] {
  return execFileSync('losetup', ['-a'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(root));
}

const account = serviceAccount();

for (const name of ['fscrypt', 'gocryptfs'] as const) {
  const backend: VolumeBackend = volumeBackend(name);
  const probe = await backend.probe();
  const skip = probe.ok ? false : `${name} does not work on this host: ${probe.reason} (${probe.howToFix})`;

  describe(`${name} encrypted volume`, { skip, timeout: 240_000 }, () => {
    let root: string;
    let spec: VolumeSpec;
    let key: Buffer;
    const hex = randomBytes(8).toString('hex');
    const marker = `MARK${'ER_'}${hex}`;
    const fileName = `NAME${'MARK_'}${hex}.txt`;
    const content = `${marker}\n`.repeat(200);
    const dataDir = () => path.join(spec.mountPoint, 'data');

    before(() => {
      root = mkdtempSync(`/tmp/pgw-vol-${name}-`);
      chmodSync(root, 0o711);
      spec = {
        id: `t-${name}`,
        stateDir: path.join(root, 'state'),
        mountPoint: path.join(root, 'mnt'),
        sizeBytes: 64 << 20,
        owner: { uid: account.uid, gid: account.gid },
      };
      key = randomBytes(backend.keyBytes);
    });

    after(async () => {
      try {
        await backend.destroy(spec);
      } catch (err) {
        console.error(`cleanup of ${name} volume: ${(err as Error).message}`);
      }
      key.fill(0);
      rmSync(root, { recursive: true, force: true });
    });

    it('creates an open volume whose data dir belongs to the server user, 0700', async () => {
      await backend.create(spec, key);
      assert.equal(await backend.isOpen(spec), true);
      const st = statSync(dataDir());
      assert.equal(st.uid, account.uid);
      assert.equal(st.gid, account.gid);
      assert.equal(st.mode & 0o777, 0o700);
      assert.equal(statSync(spec.stateDir).mode & 0o777, 0o700, 'state dir is root-only');
      await assert.rejects(backend.create(spec, key), /already exists/);
    });

    it('keeps content and names out of the raw image / ciphertext, while a plain write is found', async () => {
      writeAs(account, path.join(dataDir(), fileName), content);
      assert.equal(readFileSync(path.join(dataDir(), fileName), 'utf8'), content);
      // Control 1: the same write into a plain directory, searched the same way, is found.
      const plain = path.join(root, 'plain');
      mkdirSync(plain, { mode: 0o777 });
      chmodSync(plain, 0o777);
      writeAs(account, path.join(plain, fileName), content);
      assert.ok(search(plain, marker).length > 0 && search(plain, 'NAMEMARK_').length > 0, 'the search sees a plain write');
      // Control 2 (fscrypt): a file outside `data`, on the same image, is found in the raw image.
      const controlMarker = `CONTROL${'MARK_'}${hex}`;
      if (name === 'fscrypt') {
        execFileSync('sh', ['-c', 'printf %s "$1" > "$2" && sync "$2"', 'sh', controlMarker.repeat(50), path.join(spec.mountPoint, `plain-${controlMarker}`)]);
      }
      await backend.close(spec);
      assert.equal(await backend.isOpen(spec), false);
      assert.deepEqual(mountsUnder(root), [], 'nothing mounted after close');
      assert.deepEqual(loopsUnder(root), [], 'no loop device after close');
      assert.ok(filesUnder(spec.stateDir).length > 0, 'the state dir holds the image / ciphertext');
      assert.deepEqual(search(spec.stateDir, marker), [], 'the marker is not in any file under stateDir');
      assert.deepEqual(search(spec.stateDir, 'NAMEMARK_'), [], 'the file name is not visible in the raw bytes or names');
      if (name === 'fscrypt') {
        const hits = search(spec.stateDir, controlMarker);
        assert.ok(
          hits.some((h) => h.startsWith('content ')),
          'the unencrypted control file IS visible in the raw image',
        );
      }
    });

    it('refuses a wrong key with a clear error and changes nothing', async () => {
      const wrong = randomBytes(backend.keyBytes);
      await assert.rejects(backend.open(spec, wrong), (err: unknown) => {
        assert.ok(err instanceof WrongVolumeKeyError);
        assert.match(err.message, new RegExp(`volume 't-${name}' \\(${name}\\) is not its key`));
        return true;
      });
      assert.equal(await backend.isOpen(spec), false);
      assert.deepEqual(mountsUnder(root), []);
      assert.deepEqual(loopsUnder(root), []);
      await assert.rejects(backend.open(spec, Buffer.alloc(7)), /needs a \d+-byte raw key/);
    });

    it('reopens with the right key: the file reads back, owned by the server user; open is idempotent', async () => {
      await backend.open(spec, key);
      await backend.open(spec, key);
      assert.equal(await backend.isOpen(spec), true);
      assert.equal(readFileSync(path.join(dataDir(), fileName), 'utf8'), content);
      assert.equal(statSync(path.join(dataDir(), fileName)).uid, account.uid);
      // A wrong key while open: refused, the volume stays open and readable.
      await assert.rejects(backend.open(spec, randomBytes(backend.keyBytes)), WrongVolumeKeyError);
      assert.equal(await backend.isOpen(spec), true);
      assert.equal(readFileSync(path.join(dataDir(), fileName), 'utf8'), content);
    });

    it('close with a file still open fails with VolumeBusyError, and succeeds once it is closed', async () => {
      const fd = openSync(path.join(dataDir(), fileName), 'r');
      try {
        await assert.rejects(backend.close(spec), (err: unknown) => {
          assert.ok(err instanceof VolumeBusyError);
          assert.match(err.message, /still in use/);
          return true;
        });
        assert.equal(mountsUnder(root).length, 1, 'still mounted');
        // The open file stays readable (fscrypt: key incompletely removed; gocryptfs: untouched).
        const b = Buffer.alloc(marker.length);
        readSync(fd, b, 0, b.length, 0);
        assert.equal(b.toString(), marker);
        // fscrypt: the key is no longer PRESENT, so the volume does not count as open; gocryptfs: still open.
        assert.equal(await backend.isOpen(spec), name === 'gocryptfs');
      } finally {
        closeSync(fd);
      }
      await backend.close(spec);
      assert.equal(await backend.isOpen(spec), false);
      assert.deepEqual(mountsUnder(root), []);
      assert.deepEqual(loopsUnder(root), []);
    });

    it('a real PostgreSQL cluster in the volume leaves no clear value in the raw bytes', async () => {
      await backend.open(spec, key);
      const socketDir = path.join(root, 'sock');
      const password = `Vol-${randomBytes(6).toString('hex')}!`;
      const cluster = new Cluster({ dataDir: path.join(dataDir(), 'pg'), socketDir, account });
      await cluster.init('pgw_maint', password);
      await cluster.start();
      try {
        const c = new pg.Client({ host: socketDir, user: 'pgw_maint', password, database: 'postgres' });
        await c.connect();
        try {
          await c.query("create table secret(v text); insert into secret select 'MARK' || 'ER_' || md5('x') from generate_series(1, 100)");
          await c.query('checkpoint');
          const r = await c.query<{ v: string }>('select v from secret limit 1');
          assert.equal(r.rows[0]!.v, PG_MARKER);
        } finally {
          await c.end();
        }
      } finally {
        await cluster.stop();
      }
      await backend.close(spec);
      assert.deepEqual(search(spec.stateDir, PG_MARKER), [], 'the table value is not in the raw image / ciphertext');
      // The value is really there, encrypted: reopen, start, read it back.
      await backend.open(spec, key);
      await cluster.start();
      try {
        const c = new pg.Client({ host: socketDir, user: 'pgw_maint', password, database: 'postgres' });
        await c.connect();
        try {
          assert.equal((await c.query('select count(*)::int n from secret where v = $1', [PG_MARKER])).rows[0].n, 100);
        } finally {
          await c.end();
        }
      } finally {
        await cluster.stop();
      }
      await backend.close(spec);
    });

    it('destroy removes the image / ciphertext, the state dir and the mount point, leaving no mount or loop device', async () => {
      await backend.open(spec, key);
      await backend.destroy(spec);
      assert.equal(existsSync(spec.stateDir), false);
      assert.equal(existsSync(spec.mountPoint), false);
      assert.deepEqual(mountsUnder(root), []);
      assert.deepEqual(loopsUnder(root), []);
      assert.equal(await backend.isOpen(spec), false);
      await backend.destroy(spec); // idempotent
    });
  });
}

/** The loop device serving `image` (from /sys: backing_file), or null. */
function loopOf(image: string): string | null {
  for (const dev of readdirSync('/sys/block').filter((d) => /^loop\d+$/.test(d))) {
    try {
      if (readFileSync(`/sys/block/${dev}/loop/backing_file`, 'utf8').trim() === path.resolve(image)) return dev;
    } catch {
      /* not bound */
    }
  }
  return null;
}
const loopAttr = (dev: string, attr: string) => readFileSync(`/sys/block/${dev}/${attr}`, 'utf8').trim();

const fscryptProbe = await volumeBackend('fscrypt').probe();
describe('fscrypt loop devices: direct I/O, and volumes made before it', {
  skip: fscryptProbe.ok ? false : `fscrypt does not work on this host: ${fscryptProbe.ok ? '' : fscryptProbe.reason}`,
  timeout: 240_000,
}, () => {
  let root: string;
  const key = randomBytes(64);
  const spec = (id: string): VolumeSpec => ({
    id,
    stateDir: path.join(root, 'state'),
    mountPoint: path.join(root, id),
    sizeBytes: 1 << 30,
    owner: { uid: account.uid, gid: account.gid },
  });
  const image = (s: VolumeSpec) => path.join(s.stateDir, `${s.id}.ext4`);

  before(() => {
    root = mkdtempSync('/tmp/pgw-vol-dio-');
    chmodSync(root, 0o711);
  });
  after(async () => {
    for (const id of ['new', 'old']) await new FscryptBackend().destroy(spec(id)).catch(() => undefined);
    key.fill(0);
    rmSync(root, { recursive: true, force: true });
  });

  it("serves a new volume through a loop device with direct I/O, blocks as large as the backing filesystem's, released by close", async () => {
    const s = spec('new');
    const backend = new FscryptBackend();
    await backend.create(s, key);
    const dev = loopOf(image(s));
    assert.ok(dev, 'a loop device serves the image');
    assert.equal(loopAttr(dev, 'loop/dio'), '1', 'direct I/O: the image is not cached a second time');
    assert.equal(loopAttr(dev, 'loop/autoclear'), '1', 'umount releases the device');
    const bsize = String(statfsSync(s.stateDir).bsize);
    assert.equal(loopAttr(dev, 'queue/logical_block_size'), bsize);
    const dump = execFileSync('dumpe2fs', ['-h', image(s)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    assert.match(dump, new RegExp(`^Block size:\\s+${bsize}$`, 'm'));
    assert.match(dump, new RegExp(`^Total journal size:\\s+${FSCRYPT_DEFAULTS.journalMiB}M$`, 'm'));
    writeAs(account, path.join(s.mountPoint, 'data', 'kept.txt'), 'kept\n');
    await backend.close(s);
    assert.equal(loopOf(image(s)), null, 'no loop device left after close');
    assert.deepEqual(mountsUnder(s.mountPoint), []);
    await backend.open(s, key);
    assert.equal(readFileSync(path.join(s.mountPoint, 'data', 'kept.txt'), 'utf8'), 'kept\n');
    assert.equal(loopAttr(loopOf(image(s))!, 'loop/dio'), '1');
    await backend.close(s);
  });

  it('opens a volume made the old way (mount -o loop, buffered), its files intact, now with direct I/O', async () => {
    const s = spec('old');
    const old = new FscryptBackend({ directIo: false, journalMiB: 32 });
    await old.create(s, key);
    assert.equal(loopAttr(loopOf(image(s))!, 'loop/dio'), '0', 'control: the old way is buffered');
    writeAs(account, path.join(s.mountPoint, 'data', 'old.txt'), 'from before\n');
    await old.close(s);
    const backend = new FscryptBackend();
    await backend.open(s, key);
    assert.equal(await backend.isOpen(s), true);
    assert.equal(readFileSync(path.join(s.mountPoint, 'data', 'old.txt'), 'utf8'), 'from before\n');
    assert.equal(loopAttr(loopOf(image(s))!, 'loop/dio'), '1');
    await backend.close(s);
    assert.equal(loopOf(image(s)), null);
  });
});
