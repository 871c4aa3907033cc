// Undo stack for benchmarks: every resource a bench starts (platform, postmaster, PgBouncer,
// temp dirs) registers how to undo it; the stack runs in reverse on success, on error and on
// SIGINT/SIGTERM, so an interrupted bench leaves no process or directory behind.
import type { ChildProcess } from 'node:child_process';

const tasks: { label: string; fn: () => Promise<void> | void }[] = [];
let running: Promise<void> | null = null;

export function onCleanup(label: string, fn: () => Promise<void> | void): () => void {
  const task = { label, fn };
  tasks.push(task);
  return () => {
    const i = tasks.indexOf(task);
    if (i >= 0) tasks.splice(i, 1);
  };
}

/** A child process the bench started: `stop()` ends it by its PID (SIGTERM, SIGKILL after 5 s)
 * and is on the cleanup stack until called; `exited` resolves when it is gone. */
export function stoppableChild(child: ChildProcess, label: string): { readonly exited: Promise<void>; stop(): Promise<void> } {
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    unregister();
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
  };
  const unregister = onCleanup(label, stop);
  return { exited, stop };
}

export function runCleanup(): Promise<void> {
  running ??= (async () => {
    while (tasks.length) {
      const t = tasks.pop()!;
      try {
        await t.fn();
      } catch (err) {
        console.error(`cleanup (${t.label}) failed: ${(err as Error).message}`);
      }
    }
    running = null;
  })();
  return running;
}

/** Runs `main`, then the cleanup stack whatever happened; exits 1 on error, 130 on a signal. */
export async function runBench(main: () => Promise<void>): Promise<void> {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      console.error(`\n${sig}: cleaning up`);
      void runCleanup().finally(() => process.exit(130));
    });
  }
  let code = 0;
  try {
    await main();
  } catch (err) {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    code = 1;
  }
  await runCleanup();
  process.exit(code);
}
