// Runs the Python tests (the Python SDK's own, then the cross-language ones in test/python) with
// pytest, under a Python 3.11+ that has websockets, pytest, pytest-asyncio, pip and setuptools (a
// test installs the SDK with pip, as its docs say): OPENCLAW_PYTHON if
// set, else `python3` on PATH, else Debian's /usr/bin/python3. With --check it only finds one, and
// stops with the apt-get line to run when there is none (npm test checks before the long jest run).
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const probe =
  'import sys, importlib.util as u, websockets, pytest, pytest_asyncio; ' +
  "sys.exit(0 if sys.version_info >= (3, 11) and u.find_spec('pip') and u.find_spec('setuptools') else 1)";
const candidates = [process.env.OPENCLAW_PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean);
const python = candidates.find((command) => spawnSync(command, ['-c', probe], { stdio: 'ignore' }).status === 0);

if (!python) {
  console.error(
    'The Python tests need Python 3.11 or later with websockets, pytest, pytest-asyncio, pip and setuptools, and found none ' +
      `(tried ${candidates.join(', ')}).\n` +
      'Install with: sudo apt-get install python3-websockets python3-pytest python3-pytest-asyncio python3-pip python3-setuptools\n' +
      'or set OPENCLAW_PYTHON to an interpreter that has them, or run `bash .ci/run`.',
  );
  process.exit(1);
}
if (process.argv.includes('--check')) process.exit(0);

// Each folder in a run of its own: both have a conftest.py, which their tests import by name.
// A run that hangs is interrupted after RUN_LIMIT_MS (a folder takes about a minute; pytest then
// prints where it was stuck), and killed if it is still there half a minute later: a stuck test
// fails the run instead of holding CI until its own time limit.
const RUN_LIMIT_MS = 10 * 60_000;
const env = { ...process.env, PYTHONPATH: join(root, 'packages', 'sdk-python') };
for (const folder of ['packages/sdk-python/tests', 'test/python']) {
  const args = ['-m', 'pytest', '-o', 'asyncio_mode=auto', folder, ...process.argv.slice(2)];
  const child = spawn(python, args, { cwd: root, env, stdio: 'inherit' });
  let stuck = false;
  const interrupt = setTimeout(() => {
    stuck = true;
    console.error(
      `\nThe Python tests in ${folder} still run after ${RUN_LIMIT_MS / 60_000} minutes: interrupting them.`,
    );
    child.kill('SIGINT');
    setTimeout(() => child.kill('SIGKILL'), 30_000).unref();
  }, RUN_LIMIT_MS);
  const [status, signal] = await once(child, 'exit');
  clearTimeout(interrupt);
  if (stuck) process.exit(1);
  if (status !== 0) process.exit(status ?? (signal ? 1 : 0));
}
