import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as vm from 'node:vm';

/** How a child process ended: an exit code, or the signal that killed it. */
export interface ExitStatus {
  /** Exit code, or null if a signal ended the process. */
  code: number | null;
  /** The signal that ended the process, or null if it exited by itself. */
  signal: NodeJS.Signals | null;
}

interface Reaper {
  children: Map<ChildProcess, string>;
  paths: Set<string>;
}

const REAPER_KEY = Symbol.for('openclaw.test.child-reaper');

/**
 * The process that really exits. Jest hands each test file its own copy of `process` (also what
 * `import 'node:process'` returns there), and that copy never emits `'exit'`; code evaluated in the
 * host context sees the real one.
 */
function hostProcess(): NodeJS.Process {
  return vm.runInThisContext('process') as NodeJS.Process;
}

/**
 * One reaper per host process, stored on the host process itself: jest evaluates this module
 * again for every test file, and one `'exit'` listener per file would pile up.
 */
function reaper(): Reaper {
  const host = hostProcess() as NodeJS.Process & { [REAPER_KEY]?: Reaper };
  const existing = host[REAPER_KEY];
  if (existing) return existing;
  const created: Reaper = { children: new Map(), paths: new Set() };
  host[REAPER_KEY] = created;
  host.on('exit', () => reap(host, created));
  return created;
}

/** Runs inside `'exit'`, so everything here is synchronous. */
function reap(host: NodeJS.Process, state: Reaper): void {
  for (const [child, label] of state.children) {
    if (!isRunning(child)) continue;
    child.kill('SIGKILL');
    host.stderr.write(`test harness: killed leaked ${label} (pid ${child.pid}); a test did not stop it\n`);
    // A leak is a defect the suite must report, even though the process is cleaned up here.
    if (!host.exitCode) host.exitCode = 1;
  }
  state.children.clear();
  for (const path of state.paths) fs.rmSync(path, { recursive: true, force: true });
  state.paths.clear();
}

/** True while `child` has neither exited nor been killed. @internal */
export function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/**
 * Puts `child` under the harness's safety net until it exits: if the test process exits first, the
 * child gets SIGKILL and the leak is reported on stderr and in the exit code. The child and its
 * pipes are unreferenced, so a forgotten child cannot keep the test process alive (which would
 * otherwise hang a jest run with open-handle detection until CI times out).
 *
 * @internal
 */
export function trackChild(child: ChildProcess, label: string): void {
  const state = reaper();
  state.children.set(child, label);
  const untrack = (): void => {
    state.children.delete(child);
  };
  // A child that failed to spawn emits 'close' without 'exit'.
  child.once('exit', untrack).once('close', untrack);
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) {
    if (stream && 'unref' in stream && typeof stream.unref === 'function') stream.unref();
  }
}

/** Removes `path` (recursively) when the test process exits, unless {@link releasePath} ran first. @internal */
export function trackPath(path: string): void {
  reaper().paths.add(path);
}

/** Removes `path` now and takes it off the exit list. @internal */
export async function releasePath(path: string): Promise<void> {
  reaper().paths.delete(path);
  await fs.promises.rm(path, { recursive: true, force: true });
}

/**
 * Resolves when `child` has exited and its output pipes have drained, so the last lines it wrote are
 * captured. Waits for the pipes at most `drainMs` after the exit, since a grandchild that inherited
 * them could hold them open indefinitely.
 *
 * @internal
 */
export function exitOf(child: ChildProcess, drainMs = 500): Promise<ExitStatus> {
  return new Promise((resolve) => {
    const status = (): ExitStatus => ({ code: child.exitCode, signal: child.signalCode });
    let timer: NodeJS.Timeout | undefined;
    const done = (): void => {
      clearTimeout(timer);
      resolve(status());
    };
    child.once('close', done);
    const afterExit = (): void => {
      timer = setTimeout(done, drainMs);
    };
    if (isRunning(child)) child.once('exit', afterExit);
    else afterExit();
  });
}
