// Small helpers shared by the fault-injection tests.
import { createStack, type Stack } from './stack.ts';
import type { WorkerProcess } from './worker-process.ts';

/** Resolves when the worker is ready or has exited (a fault hook may end it before it is ready). */
export async function waitReadyOrExit(worker: WorkerProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (worker.child.exitCode === null && worker.child.signalCode === null) {
    try {
      if ((await worker.readyz()).status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`worker not ready in ${timeoutMs} ms:\n${worker.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Polls `condition` until it holds. */
export async function eventually(
  condition: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * createStack, retried: right after creating topics the shared broker sometimes answers a metadata
 * request with "does not host this topic-partition" while another file creates its topics too.
 */
export async function createStackRetrying(
  options: Parameters<typeof createStack>[0] = {},
  attempts = 3,
): Promise<Stack> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await createStack(options);
    } catch (err) {
      if (attempt >= attempts || !(err instanceof Error) || !/topic-partition|leader/i.test(err.message)) {
        throw err;
      }
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
}
