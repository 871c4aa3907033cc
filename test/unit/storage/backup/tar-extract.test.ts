import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { extractTar } from '../../../../src/storage/backup/tar-extract.js';

/** A ustar header block for a hand-made entry. */
function header(name: string, size: number, type = '0'): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 'utf8');
  h.write('0000600\0', 100);
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  h.write(type, 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  h.fill(32, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}

describe('tar extraction (what pg_basebackup -Ft writes)', () => {
  const root = mkdtempSync('/tmp/pgw-tar-');
  after(() => rmSync(root, { recursive: true, force: true }));

  it('extracts GNU tar output with long names, nested dirs and empty files; 0600 files, 0700 dirs', async () => {
    const src = path.join(root, 'src');
    const long = `${'a'.repeat(60)}/${'b'.repeat(70)}`;
    mkdirSync(path.join(src, 'base', long), { recursive: true });
    mkdirSync(path.join(src, 'pg_wal', 'archive_status'), { recursive: true });
    writeFileSync(path.join(src, 'base', long, 'f'.repeat(120)), Buffer.alloc(70_000, 7));
    writeFileSync(path.join(src, 'PG_VERSION'), '15\n');
    writeFileSync(path.join(src, 'empty'), '');
    const tar = execFileSync('tar', ['-C', src, '--format=gnu', '-cf', '-', '.'], { maxBuffer: 1 << 26 });
    const dest = path.join(root, 'dest');
    mkdirSync(dest);
    // Deliver in odd-sized pieces: the reader must not depend on block alignment.
    const pieces: Buffer[] = [];
    for (let i = 0; i < tar.length; i += 777) pieces.push(tar.subarray(i, i + 777));
    const r = await extractTar(Readable.from(pieces), dest);
    assert.equal(r.files, 3);
    assert.equal(r.bytes, 70_003);
    assert.deepEqual(readFileSync(path.join(dest, 'base', long, 'f'.repeat(120))), Buffer.alloc(70_000, 7));
    assert.equal(readFileSync(path.join(dest, 'PG_VERSION'), 'utf8'), '15\n');
    assert.deepEqual(readdirSync(path.join(dest, 'pg_wal')), ['archive_status']);
    assert.equal(statSync(path.join(dest, 'PG_VERSION')).mode & 0o777, 0o600);
    assert.equal(statSync(path.join(dest, 'base')).mode & 0o777, 0o700);
  });

  it('refuses paths out of the destination, links, and a truncated archive', async () => {
    const dest = path.join(root, 'evil');
    mkdirSync(dest);
    const evil = Buffer.concat([header('../escape', 1), Buffer.alloc(512, 0x41), Buffer.alloc(1024)]);
    await assert.rejects(extractTar(Readable.from([evil]), dest), { name: 'BackupArchiveFormatError', message: /refusing path '..\/escape'/ });
    const abs = Buffer.concat([header('/etc/x', 0), Buffer.alloc(1024)]);
    await assert.rejects(extractTar(Readable.from([abs]), dest), { name: 'BackupArchiveFormatError' });

    const src = path.join(root, 'links');
    mkdirSync(src);
    symlinkSync('/etc/passwd', path.join(src, 'l'));
    const tar = execFileSync('tar', ['-C', src, '-cf', '-', '.']);
    await assert.rejects(extractTar(Readable.from([tar]), dest), { message: /refusing symbolic link/ });

    const cut = Buffer.concat([header('f', 2000), Buffer.alloc(512)]);
    await assert.rejects(extractTar(Readable.from([cut]), dest), { message: /ends in the middle/ });
    assert.deepEqual(readdirSync(path.dirname(dest)).includes('escape'), false);
  });
});
