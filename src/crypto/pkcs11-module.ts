// PKCS#11 plumbing shared by every customer-managed KEK in this process: one loaded module per
// module path (C_Initialize once, C_Finalize when the last user closes), one logged-in session per
// (module, token) reused by all keys on that token, PIN read from an env var or a 0600 file at each
// login (never argv, never kept), and PKCS#11 return codes turned into sentences. All calls are the
// synchronous pkcs11js ones: a session runs one operation at a time, and no two interleave on the event loop.
import { readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import pkcs11js from 'pkcs11js';

type Lib = InstanceType<typeof pkcs11js.PKCS11>;
export type Handle = Buffer;
export const P = pkcs11js;

/** Where the user PIN comes from; exactly one of the two. */
export interface PinSource {
  readonly pinEnv?: string;
  readonly pinFile?: string;
}

/** A PKCS#11 failure already explained in words (`reason` completes "Customer key 'x' ..."). */
export class Pkcs11Problem extends Error {
  override readonly name = 'Pkcs11Problem';
  readonly code: number | undefined;
  constructor(reason: string, code?: number) {
    super(reason);
    this.code = code;
  }
}

export function describePin(pin: PinSource): string {
  return pin.pinEnv !== undefined ? `env:${pin.pinEnv}` : `file:${pin.pinFile ?? '?'}`;
}

export function checkPinSource(pin: PinSource): void {
  if ((pin.pinEnv === undefined) === (pin.pinFile === undefined)) throw new RangeError('give exactly one of pinEnv or pinFile for the HSM user PIN');
}

function readPin(pin: PinSource): string {
  if (pin.pinEnv !== undefined) {
    const value = process.env[pin.pinEnv];
    if (value === undefined || value === '') throw new Pkcs11Problem(`cannot be used: the PIN environment variable ${pin.pinEnv} is not set`);
    return value;
  }
  const file = pin.pinFile ?? '';
  try {
    const mode = statSync(file).mode;
    if ((mode & 0o077) !== 0)
      throw new Pkcs11Problem(`cannot be used: the PIN file ${file} is accessible by group or others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
    const bytes = readFileSync(file);
    const text = bytes.toString('utf8').replace(/\r?\n$/, '');
    bytes.fill(0);
    if (text === '') throw new Pkcs11Problem(`cannot be used: the PIN file ${file} is empty`);
    return text;
  } catch (err) {
    if (err instanceof Pkcs11Problem) throw err;
    throw new Pkcs11Problem(`cannot be used: the PIN file ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** The PKCS#11 return code of a pkcs11js error, if any. */
export function ckr(err: unknown): number | undefined {
  return err instanceof pkcs11js.Pkcs11Error ? err.code : undefined;
}

/** The CKR_ name of a code, for messages. */
export function ckrName(code: number | undefined): string {
  if (code === undefined) return 'error';
  for (const [name, value] of Object.entries(pkcs11js)) if (name.startsWith('CKR_') && value === code) return name;
  return `CKR 0x${code.toString(16)}`;
}

const PIN_CODES = new Set([P.CKR_PIN_INCORRECT, P.CKR_PIN_LOCKED, P.CKR_PIN_EXPIRED, P.CKR_PIN_LEN_RANGE, P.CKR_PIN_INVALID]);
const GONE_CODES = new Set([P.CKR_TOKEN_NOT_PRESENT, P.CKR_DEVICE_REMOVED, P.CKR_SLOT_ID_INVALID, P.CKR_TOKEN_NOT_RECOGNIZED, P.CKR_DEVICE_ERROR]);
/** Codes after which the session is worth reopening once. */
export const STALE_SESSION_CODES = new Set([P.CKR_SESSION_HANDLE_INVALID, P.CKR_SESSION_CLOSED, P.CKR_USER_NOT_LOGGED_IN, ...GONE_CODES]);

interface TokenSession {
  readonly slot: Handle;
  readonly session: Handle;
}

const modules = new Map<string, Pkcs11Module>();

/**
 * Why the root platform must not load the module file at `file`, or null when it may: loading a
 * library runs its code as root, so the file and every directory above it (on the path as given and
 * after symlinks are resolved) must belong to root and be writable by nobody else.
 */
export function moduleFileProblem(file: string): string | null {
  if (!path.isAbsolute(file)) return `the PKCS#11 module path ${file} is not absolute`;
  let real: string;
  try {
    real = realpathSync(file);
  } catch (err) {
    return `the PKCS#11 module ${file} cannot be loaded (${(err as NodeJS.ErrnoException).code ?? 'not found'})`;
  }
  const st = statSync(real);
  if (!st.isFile()) return `the PKCS#11 module ${file} is not a regular file`;
  const unsafe = (what: string, p: string): string | null => {
    const s = statSync(p);
    if (s.uid !== 0) return `the PKCS#11 module ${file} is refused: ${what} ${p} is owned by uid ${s.uid}, not root`;
    if ((s.mode & 0o022) !== 0)
      return `the PKCS#11 module ${file} is refused: ${what} ${p} is writable by group or others (mode ${(s.mode & 0o7777).toString(8)})`;
    return null;
  };
  const fileProblem = unsafe('the file', real);
  if (fileProblem) return fileProblem;
  for (const start of new Set([path.dirname(path.resolve(file)), path.dirname(real)])) {
    for (let dir = start; ; dir = path.dirname(dir)) {
      const problem = unsafe('the directory', dir);
      if (problem) return problem;
      if (dir === path.dirname(dir)) break;
    }
  }
  return null;
}

/** The resolved path of a module file the platform may load; throws a Pkcs11Problem saying why not. */
export function checkModuleFile(file: string): string {
  const problem = moduleFileProblem(file);
  if (problem) throw new Pkcs11Problem(`cannot be used: ${problem}`);
  return realpathSync(file);
}

export class Pkcs11Module {
  readonly path: string;
  readonly lib: Lib;
  private users = 0;
  private readonly ownsInit: boolean;
  private readonly sessions = new Map<string, TokenSession>();

  private constructor(path: string) {
    this.path = path;
    // Never dlopen a file someone other than root could have written (it would run as root).
    const checked = checkModuleFile(path);
    const lib = new pkcs11js.PKCS11();
    try {
      lib.load(checked);
    } catch (err) {
      throw new Pkcs11Problem(`cannot be used: the PKCS#11 module ${path} cannot be loaded (${(err as Error).message})`);
    }
    let owns = true;
    try {
      lib.C_Initialize({ flags: P.CKF_OS_LOCKING_OK });
    } catch (err) {
      if (ckr(err) !== P.CKR_CRYPTOKI_ALREADY_INITIALIZED)
        throw new Pkcs11Problem(`cannot be used: C_Initialize of ${path} failed (${ckrName(ckr(err))})`, ckr(err));
      owns = false; // someone else in this process initialized the library: leave finalizing to them
    }
    this.lib = lib;
    this.ownsInit = owns;
  }

  /** The process-wide handle of a module path; pair every acquire with a release. */
  static acquire(path: string): Pkcs11Module {
    let module = modules.get(path);
    if (module === undefined) {
      module = new Pkcs11Module(path);
      modules.set(path, module);
    }
    module.users++;
    return module;
  }

  release(): void {
    if (--this.users > 0) return;
    modules.delete(this.path);
    for (const label of [...this.sessions.keys()]) this.drop(label);
    if (this.ownsInit) {
      try {
        this.lib.C_Finalize();
      } catch {
        // finalizing a module that failed is not worth an error
      }
    }
    try {
      this.lib.close();
    } catch {
      // as above
    }
  }

  /** A logged-in session on the token, opened (and logged in) when missing. */
  session(tokenLabel: string, pin: PinSource): Handle {
    const existing = this.sessions.get(tokenLabel);
    if (existing !== undefined) return existing.session;
    const slot = this.findSlot(tokenLabel);
    let session: Handle;
    try {
      session = this.lib.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
    } catch (err) {
      throw this.explain(err, tokenLabel, 'C_OpenSession');
    }
    this.sessions.set(tokenLabel, { slot, session });
    try {
      this.login(tokenLabel, session, pin);
    } catch (err) {
      this.drop(tokenLabel);
      throw err;
    }
    return session;
  }

  /**
   * Proves the token is present and the PIN is accepted right now: token info, then logout and a
   * fresh login with the PIN read again (a changed PIN or a removed token shows here, not only at restart).
   */
  revalidate(tokenLabel: string, pin: PinSource): Handle {
    const existing = this.sessions.get(tokenLabel);
    if (existing !== undefined) {
      try {
        this.lib.C_GetTokenInfo(existing.slot);
        try {
          this.lib.C_Logout(existing.session);
        } catch (err) {
          if (ckr(err) !== P.CKR_USER_NOT_LOGGED_IN) throw err;
        }
        this.login(tokenLabel, existing.session, pin);
        return existing.session;
      } catch (err) {
        this.drop(tokenLabel);
        if (err instanceof Pkcs11Problem && err.code !== undefined && PIN_CODES.has(err.code)) throw err;
      }
    }
    return this.session(tokenLabel, pin);
  }

  /** Runs fn on the token's session; reopens the session once if it went stale. */
  run<T>(tokenLabel: string, pin: PinSource, fn: (session: Handle) => T): T {
    const session = this.session(tokenLabel, pin);
    try {
      return fn(session);
    } catch (err) {
      const code = ckr(err);
      if (code === undefined || !STALE_SESSION_CODES.has(code)) throw err;
      this.drop(tokenLabel);
      return fn(this.session(tokenLabel, pin));
    }
  }

  /** Forgets (and closes, best effort) the token's session. */
  drop(tokenLabel: string): void {
    const existing = this.sessions.get(tokenLabel);
    if (existing === undefined) return;
    this.sessions.delete(tokenLabel);
    try {
      this.lib.C_CloseSession(existing.session);
    } catch {
      // already gone with its token
    }
  }

  /** A PKCS#11 error as a Pkcs11Problem naming the token and the cause. */
  explain(err: unknown, tokenLabel: string, operation: string): Pkcs11Problem {
    if (err instanceof Pkcs11Problem) return err;
    const code = ckr(err);
    if (code !== undefined && PIN_CODES.has(code)) return new Pkcs11Problem(`cannot be used: token '${tokenLabel}' refused the PIN (${ckrName(code)})`, code);
    if (code !== undefined && GONE_CODES.has(code)) return new Pkcs11Problem(`cannot be used: token '${tokenLabel}' is not present (${ckrName(code)})`, code);
    return new Pkcs11Problem(
      `cannot be used: ${operation} on token '${tokenLabel}' failed (${code === undefined ? (err as Error).message : ckrName(code)})`,
      code,
    );
  }

  private login(tokenLabel: string, session: Handle, pin: PinSource): void {
    const secret = readPin(pin);
    try {
      this.lib.C_Login(session, P.CKU_USER, secret);
    } catch (err) {
      if (ckr(err) === P.CKR_USER_ALREADY_LOGGED_IN) return;
      throw this.explain(err, tokenLabel, 'C_Login');
    }
  }

  private findSlot(tokenLabel: string): Handle {
    let slots: Handle[];
    try {
      slots = this.lib.C_GetSlotList(true);
    } catch (err) {
      throw new Pkcs11Problem(`cannot be used: token '${tokenLabel}' is not present (C_GetSlotList: ${ckrName(ckr(err))})`, ckr(err));
    }
    for (const slot of slots) {
      try {
        if (this.lib.C_GetTokenInfo(slot).label.trim() === tokenLabel) return slot;
      } catch {
        // a slot whose token vanished while we looked
      }
    }
    throw new Pkcs11Problem(`cannot be used: token '${tokenLabel}' is not present`);
  }
}

/** Handles of objects matching the template. */
export function findObjects(lib: Lib, session: Handle, template: pkcs11js.Template, max = 8): Handle[] {
  lib.C_FindObjectsInit(session, template);
  try {
    return lib.C_FindObjects(session, max);
  } finally {
    lib.C_FindObjectsFinal(session);
  }
}

/** Raw attribute values (Buffers) in the order asked. */
export function readAttributes(lib: Lib, session: Handle, object: Handle, types: readonly number[]): Buffer[] {
  return lib
    .C_GetAttributeValue(
      session,
      object,
      types.map((type) => ({ type })),
    )
    .map((a) => (Buffer.isBuffer(a.value) ? a.value : Buffer.alloc(0)));
}

/** A CK_ULONG attribute value. */
export function ulong(value: Buffer): number {
  return value.length >= 8 ? Number(value.readBigUInt64LE(0)) : value.length >= 4 ? value.readUInt32LE(0) : -1;
}

/** A CK_BBOOL attribute value. */
export function bool(value: Buffer): boolean {
  return value.length > 0 && value[0] !== 0;
}
