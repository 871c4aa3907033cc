// The certificate the gateway presents: issued by the platform CA for the domain, its wildcard
// and each server's host name, or supplied by the operator. Replacing it swaps the context used
// for new handshakes only: open sessions keep theirs. An issued certificate follows the servers:
// a server created (or renamed) after start gets its host name into a certificate reissued with
// the same key, on every gateway process, before a handshake that asks for it by SNI is answered.
// Every host name is listed explicitly: Node's TLS refuses a wildcard over a one-label parent
// (`*.localhost`), so the wildcard alone would not do.
import { constants } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { issueServerCertificate, type PlatformCa } from '../host/ca.js';
import { channelBindingHash, tlsServerEndPoint } from '../auth/scram/index.js';
import { writeSecretFile } from '../host/secrets.js';
import type { PlatformPaths } from '../host/paths.js';

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
  /** Its private key (PEM): the native relay addon loads the pair (gateway/native/host.ts). */
  readonly keyPem: string;
  /** The DNS names of its subjectAltName, lower case (a wildcard as written). */
  readonly names: ReadonlySet<string>;
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
    // No stateless session tickets: libpq and the drivers built on it never resume a session,
    // so sealing one for every handshake was pure cost (about 45 µs of a ~600 µs handshake here),
    // and under TLS 1.2 a ticket key would undermine forward secrecy.
    secureOptions: constants.SSL_OP_NO_TICKET,
  });
  const x509 = new X509Certificate(certPem);
  const der = x509.raw;
  return { context, der, channelBinding: channelBindingHash(der) ? tlsServerEndPoint(der) : null, pem: certPem, keyPem, names: dnsNames(x509) };
}

/** How an issued certificate is made again: the CA, the domain, the key kept, where it is saved. */
interface Issuer {
  readonly ca: PlatformCa;
  readonly domain: string;
  keyPem: string;
  /** The files to rewrite (the platform's own process), or null (a gateway-only process keeps
   * its reissued certificate in memory: one writer). */
  readonly files: { readonly cert: string; readonly key: string } | null;
}

export class GatewayCertificates {
  private active: ActiveCertificate;
  private queue: Promise<void> = Promise.resolve();

  private constructor(
    active: ActiveCertificate,
    /** Null for the operator's own certificate: it is never reissued. */
    private readonly issuer: Issuer | null,
  ) {
    this.active = active;
  }

  get current(): ActiveCertificate {
    return this.active;
  }

  /** The operator's own certificate and key, or one issued by the platform CA (kept across
   * restarts while it covers the domain and every server's host name, with its key). */
  static async load(opts: {
    paths: PlatformPaths;
    ca: PlatformCa;
    domain: string;
    serverNames: readonly string[];
    certFile?: string;
    keyFile?: string;
    /** False in a gateway-only process: it never writes the certificate files. */
    persist?: boolean;
  }): Promise<GatewayCertificates> {
    if (opts.certFile && opts.keyFile) {
      return new GatewayCertificates(buildContext(readFileSync(opts.certFile, 'utf8'), readFileSync(opts.keyFile, 'utf8')), null);
    }
    const persist = opts.persist ?? true;
    const certFile = path.join(opts.paths.caDir, 'gateway.crt');
    const keyFile = path.join(opts.paths.secretsDir, 'gateway.key');
    const keyPem = existsSync(keyFile) ? readFileSync(keyFile, 'utf8') : null;
    const certPem = existsSync(certFile) ? readFileSync(certFile, 'utf8') : null;
    const files = persist ? { cert: certFile, key: keyFile } : null;
    if (keyPem && certPem && usable(certPem, keyPem, opts.domain, opts.serverNames)) {
      return new GatewayCertificates(buildContext(certPem, keyPem), { ca: opts.ca, domain: opts.domain, keyPem, files });
    }
    // Reissued with the key already on disk when there is one (other gateway processes hold it).
    const leaf = await issueGatewayCertificate(opts.ca, opts.domain, opts.serverNames, keyPem && isEcKey(keyPem) ? keyPem : undefined);
    if (persist) {
      writeAtomically(certFile, leaf.certPem);
      if (leaf.keyPem !== keyPem) writeSecretFile(keyFile, leaf.keyPem);
    }
    return new GatewayCertificates(buildContext(leaf.certPem, leaf.keyPem), { ca: opts.ca, domain: opts.domain, keyPem: leaf.keyPem, files });
  }

  /** Replaces the certificate for new connections; open sessions are not touched. */
  replace(certPem: string, keyPem: string): void {
    this.active = buildContext(certPem, keyPem);
    if (this.issuer) this.issuer.keyPem = keyPem;
  }

  /** Rotation (`kill -HUP`, the API): a new key and certificate from the platform CA for new
   * handshakes; open sessions keep theirs. Queued with the reissues, so none undoes it. */
  rotate(serverNames: Iterable<string>): Promise<void> {
    const names = [...new Set(serverNames)].sort();
    return this.enqueue(async (issuer) => {
      const leaf = await issueGatewayCertificate(issuer.ca, issuer.domain, names);
      const next = buildContext(leaf.certPem, leaf.keyPem);
      if (issuer.files) {
        writeAtomically(issuer.files.cert, leaf.certPem);
        writeSecretFile(issuer.files.key, leaf.keyPem);
      }
      issuer.keyPem = leaf.keyPem;
      this.active = next;
    });
  }

  /**
   * Follows the platform's servers: when one of their host names is not in the certificate, a
   * certificate for all of them is issued with the same key and swapped in (open sessions keep
   * theirs). A name that went away stays until the next reissue or rotation. Reissues run one
   * at a time; the operator's own certificate is never replaced.
   */
  follow(serverNames: Iterable<string>): Promise<void> {
    const names = [...new Set(serverNames)].sort();
    return this.enqueue(async (issuer) => {
      if (names.every((n) => this.active.names.has(hostName(n, issuer.domain)))) return;
      const leaf = await issueGatewayCertificate(issuer.ca, issuer.domain, names, issuer.keyPem);
      const next = buildContext(leaf.certPem, leaf.keyPem);
      if (issuer.files) writeAtomically(issuer.files.cert, leaf.certPem);
      this.active = next;
    });
  }

  /** Certificate changes run one at a time (none is lost to a slower one before it). */
  private enqueue(step: (issuer: Issuer) => Promise<void>): Promise<void> {
    const issuer = this.issuer;
    if (!issuer) return Promise.resolve();
    const run = () => step(issuer);
    const done = this.queue.then(run, run);
    this.queue = done.catch(() => undefined);
    return done;
  }

  /**
   * The certificate for a handshake whose SNI is `servername`: the current one, after a reissue
   * when the name is a known server's host name it does not list yet (so a server created a
   * moment ago passes verify-full at once). Unknown names never cause a reissue.
   */
  async forHost(servername: string, serverNames: () => Iterable<string>): Promise<ActiveCertificate> {
    const issuer = this.issuer;
    const host = servername.toLowerCase().replace(/\.$/, '');
    if (!issuer || this.active.names.has(host)) return this.active;
    const suffix = `.${issuer.domain.toLowerCase()}`;
    if (!host.endsWith(suffix)) return this.active;
    const label = host.slice(0, -suffix.length);
    const all = [...serverNames()];
    if (label.includes('.') || !all.includes(label)) return this.active;
    await this.follow(all);
    return this.active;
  }
}

export function issueGatewayCertificate(ca: PlatformCa, domain: string, serverNames: readonly string[], keyPem?: string) {
  const dnsNames = [...new Set([domain, `*.${domain}`, ...serverNames.map((n) => hostName(n, domain)), 'localhost'])];
  return issueServerCertificate(ca, {
    commonName: `*.${domain}`,
    dnsNames,
    ipAddresses: ['127.0.0.1', '::1'],
    ...(keyPem ? { keyPem } : {}),
  });
}

function hostName(server: string, domain: string): string {
  return `${server}.${domain}`.toLowerCase();
}

function dnsNames(cert: X509Certificate): Set<string> {
  const out = new Set<string>();
  for (const part of (cert.subjectAltName ?? '').split(', ')) {
    if (part.startsWith('DNS:')) out.add(part.slice(4).toLowerCase());
  }
  return out;
}

/** A kept certificate is used while it covers the domain and every server's host name, is valid
 * for a day more, and goes with the key on disk. */
function usable(certPem: string, keyPem: string, domain: string, serverNames: readonly string[]): boolean {
  try {
    const cert = new X509Certificate(certPem);
    const names = dnsNames(cert);
    if (!names.has(`*.${domain}`.toLowerCase())) return false;
    if (!serverNames.every((n) => names.has(hostName(n, domain)))) return false;
    if (new Date(cert.validTo).getTime() <= Date.now() + 86_400_000) return false;
    return cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

function isEcKey(keyPem: string): boolean {
  try {
    const key = createPrivateKey(keyPem);
    return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
  } catch {
    return false;
  }
}

/** Readers (a gateway process starting) never see half a file. */
function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, file);
}
