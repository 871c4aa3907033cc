// The platform's reader of a remote gateway's audit store, against a real HTTPS server whose
// certificate the platform CA issued: the files listed are copied; a gateway that sends far more
// than it listed is refused before it can fill the platform's audit volume; a certificate from
// another CA is refused.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { loadOrCreateCa, issueServerCertificate } from '../../../src/host/ca.js';
import { platformPaths } from '../../../src/host/paths.js';
import { remoteStreams } from '../../../src/app/remote-audit.js';

const root = mkdtempSync('/tmp/pgw-remote-audit-');
after(() => rmSync(root, { recursive: true, force: true }));

async function serve(ca: Awaited<ReturnType<typeof loadOrCreateCa>>, sendBytes: number): Promise<{ url: string; close: () => Promise<void> }> {
  const leaf = await issueServerCertificate(ca, { commonName: 'gw', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const server = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    if (req.url === '/audit/store') {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          stream: 'gw-x-1',
          files: [
            { name: 'segment-000001.log', bytes: 10 },
            { name: '../secret', bytes: 1 },
          ],
        }),
      );
      return;
    }
    if (req.url === '/audit/store/segment-000001.log') {
      let left = sendBytes;
      const chunk = Buffer.alloc(1024 * 1024, 0x61);
      const more = () => {
        while (left > 0) {
          const n = Math.min(left, chunk.length);
          left -= n;
          if (!res.write(chunk.subarray(0, n))) return void res.once('drain', more);
        }
        res.end();
      };
      more();
      return;
    }
    res.statusCode = 404;
    res.end('{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => server.close(() => r())) };
}

const entry = (apiUrl: string) => ({ name: 'gw-x-1', apiUrl, auditPublicKey: '', hostId: 'x', startedAt: new Date(), lastSeen: new Date() });

test('the listed store files are copied, nothing outside them', async () => {
  const ca = await loadOrCreateCa(platformPaths(path.join(root, 'a')));
  const gw = await serve(ca, 10);
  try {
    const [s] = remoteStreams([entry(gw.url)], {}, { caPem: ca.certPem, scratchDir: path.join(root, 'scratch-a') });
    const copied = await s!.remote.withStoreCopy(async (dir) => readFileSync(path.join(dir, 'segment-000001.log'), 'utf8'));
    assert.equal(copied, 'aaaaaaaaaa');
  } finally {
    await gw.close();
  }
});

test('a gateway that sends far more than it listed is refused', async () => {
  const ca = await loadOrCreateCa(platformPaths(path.join(root, 'b')));
  const gw = await serve(ca, 70 * 1024 * 1024);
  try {
    const [s] = remoteStreams([entry(gw.url)], {}, { caPem: ca.certPem, scratchDir: path.join(root, 'scratch-b') });
    await assert.rejects(
      s!.remote.withStoreCopy(async () => 'copied'),
      /segment-000001\.log is larger than the \d+ bytes it was listed with/,
    );
  } finally {
    await gw.close();
  }
});

test('a certificate the platform CA did not issue is refused', async () => {
  const other = await loadOrCreateCa(platformPaths(path.join(root, 'c')));
  const platform = await loadOrCreateCa(platformPaths(path.join(root, 'd')));
  const gw = await serve(other, 10);
  try {
    const [s] = remoteStreams([entry(gw.url)], {}, { caPem: platform.certPem, scratchDir: path.join(root, 'scratch-c') });
    await assert.rejects(
      s!.remote.withStoreCopy(async () => 'copied'),
      /did not answer: .*certificate/,
    );
  } finally {
    await gw.close();
  }
});
