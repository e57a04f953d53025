import type { GlobalConfig } from 'jest';

/** How long the run may go on after the last test before it is ended as a failure. */
const GRACE_MS = 60_000;

/**
 * Global teardown: ends the run as a failure if jest has not exited a minute after the last test.
 *
 * With open-handle detection on, jest waits for whatever a test left open (a socket, an ioredis
 * client that reconnects forever to a Redis the test has stopped). A test that fails half way can
 * leave one behind; without this, the run would then wait until CI's own time limit, with every
 * result already printed. The timer is unreferenced: a run that has nothing left open exits at once,
 * as it would without it.
 */
export default function exitWatchdog(globalConfig: GlobalConfig): void {
  if (globalConfig.watch || globalConfig.watchAll) return;
  const timer = setTimeout(() => {
    process.stderr.write(
      `\ntest harness: jest was still running ${GRACE_MS / 1000} s after the last test: something a test ` +
        'opened and did not close keeps it alive (see the open handles listed above). Ending the run as failed.\n',
    );
    process.exit(1);
  }, GRACE_MS);
  timer.unref();
}
