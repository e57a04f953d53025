import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

/** What the integration tests run for real, and the Debian package that provides it. */
const tools = (): readonly { name: string; command: string; debian: string }[] => [
  { name: 'redis-server', command: 'redis-server', debian: 'redis-server' },
  { name: 'nginx', command: 'nginx', debian: 'nginx-light' },
  { name: 'promtool', command: 'promtool', debian: 'prometheus' },
  { name: 'chromium', command: process.env.OPENCLAW_TEST_CHROMIUM ?? '/usr/bin/chromium', debian: 'chromium' },
];

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Whether a command can be run: a path that is executable, or a name found on PATH (or in /usr/sbin). */
function found(command: string): boolean {
  if (isAbsolute(command)) return executable(command);
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin'].filter(Boolean);
  return dirs.some((dir) => executable(join(dir, command)));
}

/**
 * Global setup of the integration tests: stops the run at once, with one message naming what to
 * install, when a tool they need is missing, instead of failing hundreds of tests one by one.
 */
export default function requiredTools(): void {
  const missing = tools().filter((t) => !found(t.command));
  if (missing.length === 0) return;
  const names = missing.map((t) => (t.name === t.command ? t.name : `${t.name} (${t.command})`)).join(', ');
  const packages = missing.map((t) => t.debian).join(' ');
  throw new Error(
    `The integration tests need ${names}, which ${missing.length === 1 ? 'is' : 'are'} not installed.\n` +
      `Install with: sudo apt-get install ${packages}\n` +
      'or run `bash .ci/run`, which installs what is missing and then runs the tests.',
  );
}
