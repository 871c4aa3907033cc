// "Is my change live?": the gateway decides on an in-memory snapshot of the catalog, reloaded on
// change notifications. A change is live once the snapshot was loaded after the change was
// written; /health tells the snapshot's age, so the console polls it for a few seconds.
import { status } from './dom.js';

interface Health {
  catalog: { connected: boolean; snapshotAgeSeconds: number; failStatic: boolean };
}

const POLL_MS = 200;
const GIVE_UP_MS = 10_000;

/** Replaces `slot`'s content with the propagation state of a change written at `writtenAt`. */
export function showWhenLive(slot: HTMLElement, what: string, writtenAt: number): Promise<boolean> {
  slot.replaceChildren(status('pending', `${what}: saved, waiting for the gateway…`));
  const started = Date.now();
  return new Promise((resolve) => {
    const tick = async () => {
      try {
        const res = await fetch('/health', { cache: 'no-store', credentials: 'omit' });
        const h = (await res.json()) as Health;
        const loadedAt = Date.now() - h.catalog.snapshotAgeSeconds * 1000;
        if (h.catalog.failStatic) {
          slot.replaceChildren(status('error', `${what}: saved, but the gateway is running on its last snapshot (catalog unreachable); it is not live yet.`));
          return resolve(false);
        }
        if (loadedAt >= writtenAt) {
          const after = Math.max(0, (loadedAt - writtenAt) / 1000);
          slot.replaceChildren(
            status('ok', `${what}: live at the gateway since ${new Date(loadedAt).toLocaleTimeString()} (${after.toFixed(1)} s after saving).`),
          );
          return resolve(true);
        }
      } catch {
        /* retry until the deadline */
      }
      if (Date.now() - started > GIVE_UP_MS) {
        slot.replaceChildren(status('error', `${what}: saved, but the gateway has not confirmed it within ${GIVE_UP_MS / 1000} s.`));
        return resolve(false);
      }
      setTimeout(tick, POLL_MS);
    };
    void tick();
  });
}
