// Cancel keys: the gateway hands each session a key of its own and maps it to the server's
// real one. A client never sees a server's key, and an unknown key is answered exactly like a
// known one: the connection is closed without a word.
import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

export interface CancelTarget {
  readonly socketDir: string;
  readonly processId: number;
  readonly secretKey: Buffer;
}

export interface IssuedKey {
  readonly processId: number;
  readonly secretKey: Buffer;
}

export class CancelKeys {
  private readonly byPid = new Map<number, { secret: Buffer; target: CancelTarget }>();

  issue(target: CancelTarget): IssuedKey {
    let processId: number;
    do processId = randomInt(1, 2 ** 31 - 1);
    while (this.byPid.has(processId));
    const secretKey = randomBytes(4);
    this.byPid.set(processId, { secret: secretKey, target });
    return { processId, secretKey };
  }

  release(processId: number): void {
    this.byPid.delete(processId);
  }

  lookup(processId: number, secretKey: Buffer): CancelTarget | null {
    const entry = this.byPid.get(processId);
    if (!entry || entry.secret.length !== secretKey.length) return null;
    return timingSafeEqual(entry.secret, secretKey) ? entry.target : null;
  }

  get size(): number {
    return this.byPid.size;
  }
}
