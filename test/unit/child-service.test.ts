/**
 * The dev stack's child services (infra/dev-stack/child-service.ts): a child that exits before it
 * is ready fails the start with its own last words, even when the caller's log shows none of them.
 */
import { ChildExitedError, startChildService } from '../../infra/dev-stack/child-service';

it('a child that exits before it is ready: ChildExitedError with its last output', async () => {
  const shown: string[] = [];
  const start = startChildService('svc', ['-e', 'for (let i = 0; i < 20; i++) console.error(`line ${i}`); console.log("not json"); console.error("REJECTED CONFIG_INVALID: boom"); process.exit(3)'], { onLog: (l) => shown.push(l) });
  const err = await start.catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ChildExitedError);
  const message = (err as Error).message;
  expect(message).toMatch(/^svc exited before it was ready \(code 3, signal null\); its last output:\n/);
  expect(message).toContain('\n  REJECTED CONFIG_INVALID: boom');
  expect(message).toContain('\n  not json');
  expect(message).not.toContain('line 0\n'); // only the last lines are kept
  expect(shown).toContain('REJECTED CONFIG_INVALID: boom'); // and the caller's log still got every line
});

it('a child that exits silently: the message says only how it exited', async () => {
  await expect(startChildService('quiet', ['-e', 'process.exit(4)'], { onLog: () => undefined })).rejects.toThrow(/^quiet exited before it was ready \(code 4, signal null\)$/);
});

it('a child that never says it is ready: the start fails after readyTimeoutMs, naming the service and the wait', async () => {
  // The child would exit by itself after 5 s if it were not killed; it is killed at once.
  const start = startChildService('sleepy', ['-e', 'setTimeout(() => process.exit(0), 5000); console.log(JSON.stringify({ event: "starting" }))'], { readyTimeoutMs: 100, onLog: () => undefined });
  const err = await start.catch((e: unknown) => e);
  expect(err).toBeInstanceOf(Error);
  expect(err).not.toBeInstanceOf(ChildExitedError);
  expect((err as Error).message).toBe('sleepy did not become ready within 100 ms');
});
