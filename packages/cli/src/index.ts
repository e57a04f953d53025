/**
 * The `openclaw` command line, as a library.
 * @example
 * import { main } from '@openclaw/cli';
 * await main(process.argv);
 */

export { fetchJson, RemoteError, type RemoteOptions } from './http-client';
export { main } from './main';
export { formatDuration, renderTable } from './table';
