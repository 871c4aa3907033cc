// The key-encryption key (KEK) of each server: system-managed (derived from the platform root key)
// or customer-managed (a key in an HSM through PKCS#11). It wraps the server's volume key and the
// data keys of its backups. Setting or rotating a KEK re-wraps those keys without touching data.
// A customer key is checked on start and every `checkIntervalMs`; when it cannot be used the server
// becomes Inaccessible: stopped, its volume key removed from memory and the kernel, an alert
// raised. `revalidate` brings it back once the key works again.
import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  KeyUnavailableError,
  Pkcs11KekProvider,
  createPkcs11Key,
  pkcs11Uri,
  serverKeyAad,
  type KekProvider,
  type KekStatus,
  type SystemKeyRoot,
  type WrappedKey,
} from '../crypto/index.js';
import type { KeysRepo, Pkcs11Reference, ServerKeyRecord } from '../catalog/keys-repo.js';
import type { ServerRecord, ServersRepo } from '../catalog/servers-repo.js';
import type { VolumeKeying } from '../storage/encrypted-volume.js';
import type { BackendName } from '../storage/volumes/index.js';
import { conflict, invalid, PlatformError } from './errors.js';
import type { PlatformPaths } from '../host/paths.js';
import { configuredModuleName, notConfiguredMessage, type Pkcs11Modules } from '../crypto/pkcs11-config.js';

export const DEFAULT_KEY_CHECK_INTERVAL_MS = 30_000;

export interface KeyView {
  readonly type: 'SystemManaged' | 'CustomerManaged';
  readonly kekVersion: number;
  readonly keyRef: string;
  /** `module` is the name of a module the operator configured (`up --pkcs11-module NAME=PATH`). */
  readonly pkcs11: { readonly module: string; readonly tokenLabel: string; readonly keyLabel: string; readonly keyId: string } | null;
  readonly status: 'Valid' | 'Unavailable';
  readonly reason: string | null;
  readonly lastValidatedAt: string | null;
  readonly checkIntervalSeconds: number;
  readonly volume: { readonly backend: BackendName; readonly sizeBytes: number; readonly open: boolean } | null;
}

export type SetKeyInput =
  | { readonly type: 'SystemManaged' }
  /** pkcs11Module: the NAME of a configured module (a configured module's path is accepted too). */
  | {
      readonly type: 'CustomerManaged';
      readonly pkcs11Module: string;
      readonly tokenLabel: string;
      readonly keyLabel: string;
      readonly pin: string;
      readonly createIfMissing?: boolean;
    };

/** What the key service needs from the rest of the platform. */
export interface KeyServiceDeps {
  readonly root: SystemKeyRoot;
  readonly keys: KeysRepo;
  readonly servers: ServersRepo;
  readonly paths: PlatformPaths;
  readonly hostId: string;
  readonly checkIntervalMs: number;
  /** The PKCS#11 modules the operator configured, by name: the only ones ever loaded. */
  readonly pkcs11Modules: Pkcs11Modules;
  /** Server engine hooks: stop a server and lock its volume; unlock and start it. */
  lock(id: number): Promise<void>;
  unlock(id: number): Promise<void>;
  volumeOpen(id: number): Promise<boolean>;
  /** Re-wrap the server's backup keys from one KEK to another. */
  rewrapBackups(id: number, from: KekProvider, to: KekProvider): Promise<number>;
  /** The server became Inaccessible (alert, audit event). */
  onInaccessible(server: ServerRecord, reason: string): void;
  onError(err: Error, what: string): void;
}

export class KeyService {
  /** Open customer providers by server, with every version still needed during a rotation. */
  private readonly customer = new Map<number, Pkcs11KekProvider>();
  private timer: NodeJS.Timeout | null = null;
  private checking: Promise<void> = Promise.resolve();
  /** Servers whose key is being changed: the checker leaves them alone. */
  private readonly busy = new Set<number>();
  private readonly chains = new Map<number, Promise<unknown>>();

  constructor(private readonly d: KeyServiceDeps) {}

  private pinFile(id: number): string {
    return path.join(this.d.paths.secretsDir, `server-${id}.pin`);
  }

  /** The path of the configured module a stored key names; KeyUnavailableError when none is configured. */
  private modulePath(module: string): string {
    const name = configuredModuleName(this.d.pkcs11Modules, module);
    if (name === null) {
      throw new KeyUnavailableError(
        `The PKCS#11 module '${module}' of this key is not configured on this platform: the operator configures it with 'pgwarden up --pkcs11-module NAME=PATH' ` +
          `(a root-owned module file), then 'pgwarden server key revalidate' brings the server back.`,
      );
    }
    return this.d.pkcs11Modules.get(name)!;
  }

  private async openCustomer(id: number, ref: Pkcs11Reference, version: number): Promise<Pkcs11KekProvider> {
    return Pkcs11KekProvider.open({
      modulePath: this.modulePath(ref.module),
      tokenLabel: ref.tokenLabel,
      keyLabel: ref.keyLabel,
      keyId: ref.keyId,
      pin: { pinFile: this.pinFile(id) },
      version,
    });
  }

  /** The KEK that wraps the server's keys now. Throws KeyUnavailableError for a customer key
   * the HSM will not give. */
  async kek(id: number, record?: ServerKeyRecord): Promise<KekProvider> {
    const r = record ?? (await this.d.keys.key(id));
    if (r.type === 'SystemManaged' || !r.pkcs11) return this.d.root.kek(String(id), r.kekVersion);
    const open = this.customer.get(id);
    if (open && open.version === r.kekVersion) return open;
    await open?.close();
    this.customer.delete(id);
    const p = await this.openCustomer(id, r.pkcs11, r.kekVersion);
    this.customer.set(id, p);
    return p;
  }

  /** The volume key of server `id`, wrapped by its KEK in the catalog. */
  volumeKeying(id: number): VolumeKeying {
    return {
      aad: serverKeyAad(String(id), 'volume'),
      kek: () => this.kek(id),
      records: {
        get: () => this.d.keys.volume(id),
        put: (v) => this.d.keys.putVolume(id, v),
        delete: () => this.d.keys.deleteVolume(id),
      },
    };
  }

  /** The KEK handed to backups: wraps with the current KEK, unwraps with whichever wrapped. */
  backupKek(id: number): KekProvider {
    return {
      kind: 'system',
      version: 0,
      describe: () => ({ server: id }),
      wrap: async (key, aad) => (await this.kek(id)).wrap(key, aad),
      unwrap: async (wrapped, aad) => (await this.unwrapper(id, wrapped)).unwrap(wrapped, aad),
      check: async () => (await this.kek(id)).check(),
      close: async () => undefined,
    };
  }

  private async unwrapper(id: number, wrapped: WrappedKey): Promise<KekProvider> {
    if (wrapped.provider === 'system') {
      const r = await this.d.keys.key(id);
      return this.d.root.kek(String(id), Math.max(wrapped.kekVersion, r.type === 'SystemManaged' ? r.kekVersion : 1));
    }
    const current = await this.kek(id);
    if (current instanceof Pkcs11KekProvider && current.keyRef === wrapped.keyRef && current.version === wrapped.kekVersion) return current;
    throw new KeyUnavailableError(`the key was wrapped by ${wrapped.keyRef} (KEK version ${wrapped.kekVersion}), which is no longer this server's key`);
  }

  /** The names of the PKCS#11 modules a customer key may name (never their paths). */
  moduleNames(): string[] {
    return [...this.d.pkcs11Modules.keys()].sort();
  }

  async view(server: ServerRecord): Promise<KeyView> {
    const r = await this.d.keys.key(server.id);
    const v = await this.d.keys.volume(server.id);
    const keyRef = r.pkcs11
      ? pkcs11Uri(r.pkcs11.tokenLabel, r.pkcs11.keyLabel, Buffer.from(r.pkcs11.keyId, 'hex'))
      : this.d.root.kek(String(server.id), r.kekVersion).keyRef;
    return {
      type: r.type,
      kekVersion: r.kekVersion,
      keyRef,
      pkcs11: r.pkcs11 ? { module: r.pkcs11.module, tokenLabel: r.pkcs11.tokenLabel, keyLabel: r.pkcs11.keyLabel, keyId: r.pkcs11.keyId } : null,
      status: r.status,
      reason: r.reason,
      lastValidatedAt: r.lastValidatedAt?.toISOString() ?? null,
      checkIntervalSeconds: this.d.checkIntervalMs / 1000,
      volume: v ? { backend: v.backend, sizeBytes: v.sizeBytes, open: await this.d.volumeOpen(server.id) } : null,
    };
  }

  /** Switches the server's KEK (to a customer key in an HSM, or back to system-managed). */
  async setKey(server: ServerRecord, input: SetKeyInput): Promise<void> {
    if (server.state === 'Inaccessible')
      throw conflict(`Server '${server.name}' is Inaccessible: run 'pgwarden server key revalidate --server ${server.name}' before changing its key.`);
    await this.exclusive(server.id, async () => {
      const current = await this.d.keys.key(server.id);
      const from = await this.kek(server.id, current);
      const version = current.kekVersion + 1;
      let to: KekProvider;
      let pkcs11: Pkcs11Reference | null = null;
      if (input.type === 'SystemManaged') {
        to = this.d.root.kek(String(server.id), version);
      } else {
        const name = configuredModuleName(this.d.pkcs11Modules, input.pkcs11Module);
        if (name === null) throw invalid(notConfiguredMessage(this.d.pkcs11Modules, input.pkcs11Module.slice(0, 200)));
        to = await this.openNewCustomer(server.id, { ...input, pkcs11Module: name }, version);
        pkcs11 = { module: name, tokenLabel: input.tokenLabel, keyLabel: input.keyLabel, keyId: (to as Pkcs11KekProvider).reference.keyId };
      }
      await this.switchTo(server.id, from, to, { type: input.type, kekVersion: version, pkcs11 });
    });
  }

  private async openNewCustomer(id: number, input: Extract<SetKeyInput, { type: 'CustomerManaged' }>, version: number): Promise<Pkcs11KekProvider> {
    const modulePath = this.d.pkcs11Modules.get(input.pkcs11Module);
    if (modulePath === undefined) throw invalid(notConfiguredMessage(this.d.pkcs11Modules, input.pkcs11Module.slice(0, 200)));
    if (!input.pin) throw invalid('The HSM user PIN is required (give it through PGWARDEN_PKCS11_PIN or --pin-file; never on the command line).');
    // The PIN is kept like the platform's other secrets: a 0600 file only the platform reads.
    const pinFile = this.pinFile(id);
    const previous = `${pinFile}.previous`;
    rmSync(previous, { force: true });
    try {
      writeFileSync(`${pinFile}.new`, input.pin, { mode: 0o600 });
      const pin = { pinFile: `${pinFile}.new` };
      if (input.createIfMissing) {
        await createPkcs11Key({ modulePath, tokenLabel: input.tokenLabel, keyLabel: input.keyLabel, pin, type: 'aes-256', ifMissing: true });
      }
      const p = await Pkcs11KekProvider.open({ modulePath, tokenLabel: input.tokenLabel, keyLabel: input.keyLabel, pin, version });
      const status = await p.check();
      if (!status.ok) {
        await p.close();
        throw new KeyUnavailableError(status.reason);
      }
      await p.close();
      // Reopen with the PIN at its final place.
      if (existsSync(pinFile)) renameSync(pinFile, previous);
      renameSync(`${pinFile}.new`, pinFile);
      return await this.openCustomer(
        id,
        { module: input.pkcs11Module, tokenLabel: input.tokenLabel, keyLabel: input.keyLabel, keyId: p.reference.keyId },
        version,
      );
    } catch (err) {
      rmSync(`${pinFile}.new`, { force: true });
      throw keyError(err, `The customer key '${input.keyLabel}' cannot be used`);
    }
  }

  /** A new KEK version: system-managed derives the next version; customer-managed moves to
   * another key in the HSM (`keyLabel`, or the other key under the same label). */
  async rotate(server: ServerRecord, to: { readonly keyLabel?: string } = {}): Promise<void> {
    if (server.state === 'Inaccessible')
      throw conflict(`Server '${server.name}' is Inaccessible: run 'pgwarden server key revalidate --server ${server.name}' before rotating its key.`);
    await this.exclusive(server.id, async () => {
      const current = await this.d.keys.key(server.id);
      const from = await this.kek(server.id, current);
      const version = current.kekVersion + 1;
      if (current.type === 'SystemManaged' || !current.pkcs11) {
        if (to.keyLabel) throw invalid('keyLabel applies to customer-managed keys; this server uses a system-managed key.');
        await this.switchTo(server.id, from, this.d.root.kek(String(server.id), version), { type: 'SystemManaged', kekVersion: version, pkcs11: null });
        return;
      }
      let next: Pkcs11KekProvider;
      try {
        next = await (from as Pkcs11KekProvider).rotate(to.keyLabel ? { keyLabel: to.keyLabel } : {});
      } catch (err) {
        throw keyError(err, 'The new customer key cannot be used');
      }
      const pkcs11 = { ...current.pkcs11, keyLabel: next.reference.keyLabel, keyId: next.reference.keyId };
      await this.switchTo(server.id, from, next, { type: 'CustomerManaged', kekVersion: version, pkcs11 });
    });
  }

  /** Re-wraps the volume key and the backup keys, then records the new KEK. */
  private async switchTo(id: number, from: KekProvider, to: KekProvider, record: Pick<ServerKeyRecord, 'type' | 'kekVersion' | 'pkcs11'>): Promise<void> {
    const volume = await this.d.keys.volume(id);
    let wrapped: WrappedKey | null = null;
    if (volume) {
      const aad = serverKeyAad(String(id), 'volume');
      const key = await from.unwrap(volume.wrappedKey, aad);
      try {
        wrapped = await to.wrap(key, aad);
      } finally {
        key.fill(0);
      }
    }
    // Backups first: until the catalog names the new KEK, the old one still unwraps everything.
    await this.d.rewrapBackups(id, from, to);
    await this.d.keys.setKey(id, record, wrapped);
    // WAL epochs the archiver wrapped with the old KEK while the first pass ran.
    await this.d.rewrapBackups(id, from, to);
    const old = this.customer.get(id);
    if (to instanceof Pkcs11KekProvider) this.customer.set(id, to);
    else this.customer.delete(id);
    if (old && old !== to) await old.close();
    if (record.type === 'SystemManaged') rmSync(this.pinFile(id), { force: true });
    rmSync(`${this.pinFile(id)}.previous`, { force: true });
  }

  /** After the key is back: check it, unlock the volume, start the server. */
  async revalidate(server: ServerRecord): Promise<void> {
    await this.exclusive(server.id, async () => {
      const r = await this.d.keys.key(server.id);
      const status = await this.checkKey(server.id, r, true);
      if (!status.ok) {
        await this.d.keys.setStatus(server.id, 'Unavailable', status.reason);
        throw conflict(`Server '${server.name}' stays Inaccessible: ${status.reason}`);
      }
      const state = (await this.d.servers.get(server.name))?.state ?? server.state;
      if (state === 'Inaccessible') {
        await this.d.unlock(server.id);
        await this.d.servers.setState(server.id, 'Ready');
      }
      await this.d.keys.setStatus(server.id, 'Valid', null);
    });
  }

  /** Is the key usable: for a customer key, the HSM must have it, enabled, and unwrap with it. */
  private async checkKey(id: number, r: ServerKeyRecord, reopen: boolean): Promise<KekStatus> {
    if (reopen) {
      await this.customer.get(id)?.close();
      this.customer.delete(id);
    }
    try {
      const kek = await this.kek(id, r);
      return await kek.check();
    } catch (err) {
      return { ok: false, checkedAt: new Date().toISOString(), reason: (err as Error).message };
    }
  }

  /** On start: keys stored with a module path (before modules were configured by name) take the
   * name of the configured module with that path; a key whose module is not configured fails
   * its check below and leaves its server Inaccessible, saying why. */
  private async adoptModuleNames(keys: ServerKeyRecord[]): Promise<ServerKeyRecord[]> {
    const out: ServerKeyRecord[] = [];
    for (const r of keys) {
      const name = r.pkcs11 ? configuredModuleName(this.d.pkcs11Modules, r.pkcs11.module) : null;
      if (r.pkcs11 && name !== null && name !== r.pkcs11.module) {
        const pkcs11 = { ...r.pkcs11, module: name };
        await this.d.keys.setPkcs11(r.serverId, pkcs11);
        out.push({ ...r, pkcs11 });
      } else out.push(r);
    }
    return out;
  }

  /** On start: servers with a customer key that does not work become Inaccessible before they
   * are started. Returns the ids that must not be started. */
  async checkBeforeStart(): Promise<Set<number>> {
    const blocked = new Set<number>();
    const keys = await this.adoptModuleNames(await this.d.keys.customerKeys());
    const servers = new Map((keys.length ? await this.d.servers.list() : []).map((s) => [s.id, s]));
    for (const r of keys) {
      const server = servers.get(r.serverId);
      if (!server || server.hostId !== this.d.hostId) continue;
      if (server.state === 'Inaccessible') {
        blocked.add(server.id);
        continue;
      }
      const status = await this.checkKey(r.serverId, r, false);
      if (!status.ok) {
        blocked.add(server.id);
        await this.markInaccessible(server, status.reason, false);
      } else {
        await this.d.keys.setStatus(server.id, 'Valid', null);
      }
    }
    return blocked;
  }

  start(): void {
    this.timer = setInterval(() => {
      this.checking = this.checking.then(() => this.checkAll()).catch((err) => this.d.onError(err as Error, 'key check'));
    }, this.d.checkIntervalMs);
    this.timer.unref();
  }

  /** One round of the periodic check of every customer key on this host. */
  async checkAll(): Promise<void> {
    const keys = await this.d.keys.customerKeys();
    if (keys.length === 0) return;
    const servers = new Map((await this.d.servers.list()).map((s) => [s.id, s]));
    for (const r of keys) {
      const server = servers.get(r.serverId);
      if (!server || server.hostId !== this.d.hostId || this.busy.has(server.id)) continue;
      if (server.state === 'Inaccessible') {
        // A lock that failed (files still open when the server stopped) is tried again.
        if (await this.d.volumeOpen(server.id))
          await this.exclusive(server.id, () => this.d.lock(server.id)).catch((err) => this.d.onError(err as Error, 'locking an Inaccessible server'));
        continue;
      }
      if (server.state !== 'Ready') continue;
      const status = await this.checkKey(server.id, r, false);
      if (status.ok) await this.d.keys.setStatus(server.id, 'Valid', null);
      else await this.exclusive(server.id, () => this.markInaccessible(server, status.reason, true));
    }
  }

  private async markInaccessible(server: ServerRecord, reason: string, running: boolean): Promise<void> {
    await this.d.servers.setState(server.id, 'Inaccessible');
    await this.d.keys.setStatus(server.id, 'Unavailable', reason);
    if (running) await this.d.lock(server.id);
    await this.customer.get(server.id)?.close();
    this.customer.delete(server.id);
    this.d.onInaccessible(server, reason);
  }

  /** Key operations on one server run one after another (a revalidate waits for the lock the
   * checker is doing); the periodic check skips a server with one under way. */
  private async exclusive<T>(id: number, fn: () => Promise<T>): Promise<T> {
    const previous = this.chains.get(id) ?? Promise.resolve();
    const run = previous
      .catch(() => undefined)
      .then(async () => {
        this.busy.add(id);
        try {
          return await fn();
        } finally {
          this.busy.delete(id);
        }
      });
    const tail = run.catch(() => undefined);
    this.chains.set(id, tail);
    void tail.then(() => {
      if (this.chains.get(id) === tail) this.chains.delete(id);
    });
    return run;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.checking.catch(() => undefined);
    for (const p of this.customer.values()) await p.close().catch(() => undefined);
    this.customer.clear();
  }

  async forget(id: number): Promise<void> {
    await this.customer.get(id)?.close();
    this.customer.delete(id);
    rmSync(this.pinFile(id), { force: true });
  }
}

function keyError(err: unknown, prefix: string): Error {
  if (err instanceof PlatformError) return err;
  if (err instanceof KeyUnavailableError || err instanceof RangeError) return invalid(`${prefix}: ${(err as Error).message}`);
  return err as Error;
}
