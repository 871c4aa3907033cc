// The certificate the gateway presents: issued by the platform CA for the domain, its wildcard
// and each server's host name, or supplied by the operator. Replacing it swaps the context used
// for new handshakes only: open sessions keep theirs.
import { createSecureContext, type SecureContext } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { issueServerCertificate, type PlatformCa } from '../platform/ca.js';
import { channelBindingHash, tlsServerEndPoint } from '../auth/scram/index.js';
import { writeSecretFile } from '../platform/secrets.js';
import type { PlatformPaths } from '../platform/paths.js';

/** TLS 1.2 is limited to ECDHE with AES-GCM; every TLS 1.3 suite is AEAD. */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES128-GCM-SHA256',
].join(':');
export const TLS13_SUITES = 'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256';

export interface ActiveCertificate {
  readonly context: SecureContext;
  /** DER of the leaf certificate, for tls-server-end-point channel binding. */
  readonly der: Buffer;
  /** tls-server-end-point data for SCRAM-SHA-256-PLUS, or null when the certificate's
   * signature algorithm defines none (Ed25519): then PLUS is not offered. */
  readonly channelBinding: Buffer | null;
  readonly pem: string;
}

export function buildContext(certPem: string, keyPem: string): ActiveCertificate {
  const context = createSecureContext({
    cert: certPem,
    key: keyPem,
    minVersion: 'TLSv1.2',
    // Node takes TLS 1.3 suites (TLS_*) and TLS 1.2 ciphers in one list.
    ciphers: `${TLS13_SUITES}:${TLS12_CIPHERS}`,
    ecdhCurve: 'X25519:P-256:P-384',
    honorCipherOrder: true,
    sessionTimeout: 300,
  });
  const der = new X509Certificate(certPem).raw;
  return { context, der, channelBinding: channelBindingHash(der) ? tlsServerEndPoint(der) : null, pem: certPem };
}

export class GatewayCertificates {
  private active: ActiveCertificate;

  private constructor(active: ActiveCertificate) {
    this.active = active;
  }

  get current(): ActiveCertificate {
    return this.active;
  }

  /** The operator's own certificate and key, or one issued by the platform CA (kept across restarts). */
  static async load(opts: {
    paths: PlatformPaths;
    ca: PlatformCa;
    domain: string;
    serverNames: readonly string[];
    certFile?: string;
    keyFile?: string;
  }): Promise<GatewayCertificates> {
    if (opts.certFile && opts.keyFile) {
      return new GatewayCertificates(buildContext(readFileSync(opts.certFile, 'utf8'), readFileSync(opts.keyFile, 'utf8')));
    }
    const certFile = path.join(opts.paths.caDir, 'gateway.crt');
    const keyFile = path.join(opts.paths.secretsDir, 'gateway.key');
    if (existsSync(certFile) && existsSync(keyFile)) {
      const certPem = readFileSync(certFile, 'utf8');
      if (coversDomain(certPem, opts.domain)) return new GatewayCertificates(buildContext(certPem, readFileSync(keyFile, 'utf8')));
    }
    const leaf = await issueGatewayCertificate(opts.ca, opts.domain, opts.serverNames);
    writeFileSync(certFile, leaf.certPem, { mode: 0o644 });
    writeSecretFile(keyFile, leaf.keyPem);
    return new GatewayCertificates(buildContext(leaf.certPem, leaf.keyPem));
  }

  /** Replaces the certificate for new connections; open sessions are not touched. */
  replace(certPem: string, keyPem: string): void {
    this.active = buildContext(certPem, keyPem);
  }
}

export function issueGatewayCertificate(ca: PlatformCa, domain: string, serverNames: readonly string[]) {
  return issueServerCertificate(ca, {
    commonName: `*.${domain}`,
    dnsNames: [domain, `*.${domain}`, ...serverNames.map((n) => `${n}.${domain}`), 'localhost'],
    ipAddresses: ['127.0.0.1', '::1'],
  });
}

function coversDomain(certPem: string, domain: string): boolean {
  try {
    const cert = new X509Certificate(certPem);
    return (cert.subjectAltName ?? '').includes(`DNS:*.${domain}`) && new Date(cert.validTo).getTime() > Date.now() + 86_400_000;
  } catch {
    return false;
  }
}
