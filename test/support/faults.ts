// Small helpers shared by the fault-injection tests.
import type { Admin } from 'kafkajs';
import type { RequestTopic } from '../../src/contracts/topics.ts';
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

/** Deletes `topic` and creates it again with `partitions`, as an operator does, once the broker has let the
 * old one go. */
export async function recreateTopic(admin: Admin, topic: string, partitions: number): Promise<void> {
  await admin.deleteTopics({ topics: [topic] });
  await eventually(async () => !(await admin.listTopics()).includes(topic), 30_000, 'the topic gone');
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
}

/** Sends until the broker takes it: a topic just created again refuses writes for a moment. */
export async function sendWhenAccepted(
  stack: Stack,
  topic: RequestTopic,
  messages: Parameters<Stack['send']>[1],
): Promise<void> {
  await eventually(
    async () => {
      try {
        await stack.send(topic, messages);
        return true;
      } catch {
        return false;
      }
    },
    30_000,
    `sending to ${topic}`,
  );
}
