// The fscrypt kernel ABI (include/uapi/linux/fscrypt.h), pure: ioctl request numbers and the
// byte layouts of the structs they take. Little-endian, asm-generic ioctl encoding (x86-64,
// arm64, riscv64): request = dir << 30 | size << 16 | type << 8 | nr, with _IOC_WRITE = 1,
// _IOC_READ = 2. The resulting numbers, checked against the header's:
//   FS_IOC_SET_ENCRYPTION_POLICY     _IOR ('f', 19, struct fscrypt_policy_v1 [12 B])     = 0x800c6613
//   FS_IOC_GET_ENCRYPTION_POLICY_EX  _IOWR('f', 22, __u8[9] (size + version))           = 0xc0096616
//   FS_IOC_ADD_ENCRYPTION_KEY        _IOWR('f', 23, struct fscrypt_add_key_arg [80 B])   = 0xc0506617
//   FS_IOC_REMOVE_ENCRYPTION_KEY     _IOWR('f', 24, struct fscrypt_remove_key_arg [64 B]) = 0xc0406618
//   FS_IOC_GET_ENCRYPTION_KEY_STATUS _IOWR('f', 26, struct fscrypt_get_key_status_arg [128 B]) = 0xc080661a
// (SET_ENCRYPTION_POLICY is declared with the v1 struct's size for every policy version: the
// kernel reads the version byte first, then the v2 struct.)

const IOC_WRITE = 1;
const IOC_READ = 2;

export function ioc(dir: number, type: string, nr: number, size: number): number {
  // Multiplication, not <<: dir << 30 overflows a signed 32-bit JS integer.
  return dir * 2 ** 30 + size * 2 ** 16 + type.charCodeAt(0) * 2 ** 8 + nr;
}
export const ior = (type: string, nr: number, size: number): number => ioc(IOC_READ, type, nr, size);
export const iowr = (type: string, nr: number, size: number): number => ioc(IOC_READ | IOC_WRITE, type, nr, size);

export const POLICY_V1_SIZE = 12; // version, contents, filenames, flags, descriptor[8]
export const POLICY_V2_SIZE = 24; // version, contents, filenames, flags, log2_data_unit_size, reserved[3], identifier[16]
export const KEY_SPEC_SIZE = 40; // type u32, reserved u32, union u8[32]
export const ADD_KEY_ARG_SIZE = 80; // key_spec, raw_size u32, key_id u32, reserved u32[8], raw[]
export const REMOVE_KEY_ARG_SIZE = 64; // key_spec, removal_status_flags u32, reserved u32[5]
export const KEY_STATUS_ARG_SIZE = 128; // key_spec, reserved u32[6], status, status_flags, user_count, reserved u32[13]
export const GET_POLICY_EX_ARG_SIZE = 8 + POLICY_V2_SIZE; // policy_size u64, union policy

export const FS_IOC_SET_ENCRYPTION_POLICY = ior('f', 19, POLICY_V1_SIZE);
export const FS_IOC_GET_ENCRYPTION_POLICY_EX = iowr('f', 22, 9);
export const FS_IOC_ADD_ENCRYPTION_KEY = iowr('f', 23, ADD_KEY_ARG_SIZE);
export const FS_IOC_REMOVE_ENCRYPTION_KEY = iowr('f', 24, REMOVE_KEY_ARG_SIZE);
export const FS_IOC_GET_ENCRYPTION_KEY_STATUS = iowr('f', 26, KEY_STATUS_ARG_SIZE);

export const FSCRYPT_POLICY_V2 = 2;
export const FSCRYPT_MODE_AES_256_XTS = 1;
export const FSCRYPT_MODE_AES_256_CTS = 4;
export const FSCRYPT_POLICY_FLAGS_PAD_32 = 0x03;
export const FSCRYPT_KEY_SPEC_TYPE_IDENTIFIER = 2;
export const FSCRYPT_KEY_IDENTIFIER_SIZE = 16;
export const FSCRYPT_KEY_REMOVAL_STATUS_FLAG_FILES_BUSY = 0x1;
export const FSCRYPT_KEY_REMOVAL_STATUS_FLAG_OTHER_USERS = 0x2;
export const FSCRYPT_KEY_STATUS_ABSENT = 1;
export const FSCRYPT_KEY_STATUS_PRESENT = 2;
export const FSCRYPT_KEY_STATUS_INCOMPLETELY_REMOVED = 3;
/** fscrypt v2 with AES-256-XTS takes a 64-byte master key (any length 16..64 is accepted; we use the maximum). */
export const FSCRYPT_RAW_KEY_BYTES = 64;

export interface PolicyV2 {
  readonly version: number;
  readonly contentsMode: number;
  readonly filenamesMode: number;
  readonly flags: number;
  readonly identifier: Buffer;
}

/** The policy pgwarden sets: v2, AES-256-XTS contents, AES-256-CTS names, names padded to 32. */
export function encodePolicyV2(identifier: Buffer): Buffer {
  if (identifier.length !== FSCRYPT_KEY_IDENTIFIER_SIZE) throw new RangeError('a key identifier is 16 bytes');
  const b = Buffer.alloc(POLICY_V2_SIZE);
  b[0] = FSCRYPT_POLICY_V2;
  b[1] = FSCRYPT_MODE_AES_256_XTS;
  b[2] = FSCRYPT_MODE_AES_256_CTS;
  b[3] = FSCRYPT_POLICY_FLAGS_PAD_32;
  b[4] = 0; // log2_data_unit_size: 0 = the filesystem block size
  identifier.copy(b, 8);
  return b;
}

export function getPolicyExArg(): Buffer {
  const b = Buffer.alloc(GET_POLICY_EX_ARG_SIZE);
  b.writeBigUInt64LE(BigInt(POLICY_V2_SIZE), 0);
  return b;
}

/** Decodes the answer of FS_IOC_GET_ENCRYPTION_POLICY_EX; null for a v1 policy. */
export function decodePolicyEx(b: Buffer): PolicyV2 | null {
  const size = Number(b.readBigUInt64LE(0));
  const p = b.subarray(8);
  if (p[0] !== FSCRYPT_POLICY_V2 || size !== POLICY_V2_SIZE) return null;
  return { version: p[0]!, contentsMode: p[1]!, filenamesMode: p[2]!, flags: p[3]!, identifier: Buffer.from(p.subarray(8, 24)) };
}

export function isPgwardenPolicy(p: PolicyV2): boolean {
  return (
    p.version === FSCRYPT_POLICY_V2 &&
    p.contentsMode === FSCRYPT_MODE_AES_256_XTS &&
    p.filenamesMode === FSCRYPT_MODE_AES_256_CTS &&
    p.flags === FSCRYPT_POLICY_FLAGS_PAD_32
  );
}

/** struct fscrypt_add_key_arg followed by the raw key. The caller MUST wipe the result
 * (buffer.fill(0)) as soon as the ioctl returned: it holds the key. Buffer.alloc, not the pool. */
export function addKeyArg(key: Buffer): Buffer {
  const b = Buffer.alloc(ADD_KEY_ARG_SIZE + key.length);
  b.writeUInt32LE(FSCRYPT_KEY_SPEC_TYPE_IDENTIFIER, 0);
  b.writeUInt32LE(key.length, KEY_SPEC_SIZE); // raw_size
  b.writeUInt32LE(0, KEY_SPEC_SIZE + 4); // key_id: 0 = the raw key follows
  key.copy(b, ADD_KEY_ARG_SIZE);
  return b;
}

/** The identifier the kernel wrote into key_spec.u.identifier of an add-key argument. */
export function addedKeyIdentifier(arg: Buffer): Buffer {
  return Buffer.from(arg.subarray(8, 8 + FSCRYPT_KEY_IDENTIFIER_SIZE));
}

function keySpecArg(size: number, identifier: Buffer): Buffer {
  if (identifier.length !== FSCRYPT_KEY_IDENTIFIER_SIZE) throw new RangeError('a key identifier is 16 bytes');
  const b = Buffer.alloc(size);
  b.writeUInt32LE(FSCRYPT_KEY_SPEC_TYPE_IDENTIFIER, 0);
  identifier.copy(b, 8);
  return b;
}

export const removeKeyArg = (identifier: Buffer): Buffer => keySpecArg(REMOVE_KEY_ARG_SIZE, identifier);
export const removalStatusFlags = (arg: Buffer): number => arg.readUInt32LE(KEY_SPEC_SIZE);

export const keyStatusArg = (identifier: Buffer): Buffer => keySpecArg(KEY_STATUS_ARG_SIZE, identifier);
export function decodeKeyStatus(arg: Buffer): { status: number; statusFlags: number; userCount: number } {
  const o = KEY_SPEC_SIZE + 24;
  return { status: arg.readUInt32LE(o), statusFlags: arg.readUInt32LE(o + 4), userCount: arg.readUInt32LE(o + 8) };
}
