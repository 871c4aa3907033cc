import { carryOver, status } from '../dom.js';
import { showWhenLive } from '../live.js';

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Runs a change, then shows in `slot` when the gateway has it; errors show the API's message. */
export async function change(slot: HTMLElement, what: string, fn: () => Promise<unknown>, after?: () => void): Promise<boolean> {
  const t0 = Date.now();
  slot.replaceChildren(status('pending', `${what}: saving…`));
  try {
    await fn();
  } catch (err) {
    slot.replaceChildren(status('error', message(err)));
    return false;
  }
  const live = carryOver(slot);
  after?.();
  await showWhenLive(live, what, t0);
  return true;
}
