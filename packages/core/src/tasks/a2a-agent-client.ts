import { randomUUID } from 'node:crypto';
import { GatewayError } from '@openclaw/protocol';

/** An HTTP exchange, as the HTTP agent client makes it (SSRF guard, response limit, signal). */
export type A2aFetch = (
  method: 'GET' | 'POST',
  target: URL,
  body: string | undefined,
  headers: Record<string, string>,
  signal: AbortSignal,
) => Promise<{ status: number; text: string }>;

/** What the gateway keeps of an outside agent's Agent Card. */
export interface A2aAgentCard {
  name: string;
  /** Its JSON-RPC endpoint for A2A 1.0. */
  endpoint: string;
  skills: { id: string; name?: string; description?: string }[];
}

/** The A2A protocol version this client speaks. */
const A2A_VERSION = '1.0';
/** How long before a task the agent left running is read again: doubling from the first to the last. */
const POLL_FIRST_MS = 20;
const POLL_MAX_MS = 250;

const TERMINAL_FAILURES = new Set(['TASK_STATE_FAILED', 'TASK_STATE_REJECTED', 'TASK_STATE_CANCELED']);
const NEEDS_INPUT = new Set(['TASK_STATE_INPUT_REQUIRED', 'TASK_STATE_AUTH_REQUIRED']);

/**
 * The gateway as an A2A client (JSON-RPC binding, A2A 1.0) of an outside agent registered by its
 * Agent Card: a task is a `SendMessage` whose one part is the task's data (text for a string, data
 * otherwise) and whose metadata names the task (`openclaw/task`, the skill). The agent's answer (a
 * message, or a task's artifacts once it completed; a task it leaves running is read with `GetTask`
 * until it ends) is the output; a canceled call cancels its A2A task (`CancelTask`). Messages are sent
 * not blocking (`returnImmediately`), so the task's id is known from the start.
 */
export class A2aAgentClient {
  private nextId = 1;

  constructor(private readonly fetch: A2aFetch) {}

  /**
   * Reads an Agent Card. @returns the agent's name, its A2A 1.0 JSON-RPC endpoint and its skills.
   * @throws {GatewayError} `BAD_REQUEST` for a card without a 1.0 JSON-RPC interface, or not a card.
   */
  async card(cardUrl: URL, signal: AbortSignal): Promise<A2aAgentCard> {
    const answer = await this.fetch(
      'GET',
      cardUrl,
      undefined,
      { accept: 'application/json', 'a2a-version': A2A_VERSION },
      signal,
    );
    if (answer.status !== 200) {
      throw new GatewayError('BAD_REQUEST', `the Agent Card at ${cardUrl} could not be read: HTTP ${answer.status}`, {
        details: [{ field: 'url', message: `HTTP ${answer.status}` }],
      });
    }
    let card: {
      name?: unknown;
      supportedInterfaces?: { url?: unknown; protocolBinding?: unknown; protocolVersion?: unknown }[];
      skills?: { id?: unknown; name?: unknown; description?: unknown }[];
    };
    try {
      card = JSON.parse(answer.text) as typeof card;
    } catch {
      throw new GatewayError('BAD_REQUEST', `${cardUrl} does not hold JSON, so no Agent Card`, {
        details: [{ field: 'url', message: 'not JSON' }],
      });
    }
    const jsonRpc = (card.supportedInterfaces ?? []).find(
      (i) =>
        typeof i?.url === 'string' &&
        String(i.protocolBinding).toUpperCase() === 'JSONRPC' &&
        String(i.protocolVersion ?? A2A_VERSION) === A2A_VERSION,
    );
    if (!jsonRpc) {
      throw new GatewayError(
        'BAD_REQUEST',
        `the Agent Card at ${cardUrl} offers no A2A ${A2A_VERSION} JSON-RPC interface`,
        {
          details: [
            { field: 'url', message: 'expected supportedInterfaces with protocolBinding JSONRPC, protocolVersion 1.0' },
          ],
        },
      );
    }
    const skills = (card.skills ?? [])
      .filter((s) => typeof s?.id === 'string' && s.id !== '')
      .map((s) => ({
        id: s.id as string,
        ...(typeof s.name === 'string' ? { name: s.name } : {}),
        ...(typeof s.description === 'string' ? { description: s.description } : {}),
      }));
    return { name: typeof card.name === 'string' ? card.name : '', endpoint: String(jsonRpc.url), skills };
  }

  /** Runs `task` with `data` on the agent at `endpoint`. @returns its output. */
  async send(endpoint: URL, task: string, data: unknown, signal: AbortSignal): Promise<unknown> {
    const part =
      typeof data === 'string'
        ? { text: data, mediaType: 'text/plain' }
        : { data: data ?? null, mediaType: 'application/json' };
    const result = (await this.rpc(
      endpoint,
      'SendMessage',
      {
        message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [part], metadata: { 'openclaw/task': task } },
        // Not blocking: a task comes back at once with its id, so a canceled call can cancel it.
        configuration: { returnImmediately: true },
      },
      signal,
    )) as { message?: A2aMessage; task?: A2aTask };
    if (result?.message) return outputOf(result.message.parts);
    if (!result?.task?.id) throw badAnswer('SendMessage answered with neither a message nor a task');
    let current = result.task;
    const taskId = current.id;
    let pause = POLL_FIRST_MS;
    try {
      for (;;) {
        const state = current.status?.state ?? '';
        if (state === 'TASK_STATE_COMPLETED') {
          const parts = (current.artifacts ?? []).flatMap((a) => a.parts ?? []);
          return outputOf(parts.length > 0 ? parts : (current.status?.message?.parts ?? []));
        }
        if (TERMINAL_FAILURES.has(state) || NEEDS_INPUT.has(state)) {
          const said = textOf(current.status?.message?.parts ?? []);
          throw new GatewayError(
            'AGENT_ERROR',
            NEEDS_INPUT.has(state)
              ? `the A2A agent asks for more input (${state}), which a gateway call cannot give${said ? `: ${said}` : ''}`
              : `the A2A agent's task ended ${state}${said ? `: ${said}` : ''}`,
            { retryable: false, details: { a2aTaskId: taskId, state } },
          );
        }
        await sleep(pause, signal);
        pause = Math.min(POLL_MAX_MS, pause * 2);
        current = (await this.rpc(endpoint, 'GetTask', { id: taskId }, signal)) as A2aTask;
      }
    } catch (error) {
      // The call ended first (canceled, or its deadline): the agent's task is canceled too.
      if (signal.aborted) {
        void this.rpc(endpoint, 'CancelTask', { id: taskId }, AbortSignal.timeout(2000)).catch(() => undefined);
      }
      throw error;
    }
  }

  private async rpc(endpoint: URL, method: string, params: unknown, signal: AbortSignal): Promise<unknown> {
    const id = this.nextId++;
    const answer = await this.fetch(
      'POST',
      endpoint,
      JSON.stringify({ jsonrpc: '2.0', id, method, params }),
      { accept: 'application/json', 'a2a-version': A2A_VERSION },
      signal,
    );
    let response: { id?: unknown; result?: unknown; error?: { code?: unknown; message?: unknown } };
    try {
      response = JSON.parse(answer.text) as typeof response;
    } catch {
      throw new GatewayError('AGENT_ERROR', `the A2A agent answered ${method} with HTTP ${answer.status} and no JSON`, {
        retryable: answer.status >= 500 || answer.status === 429,
        details: { status: answer.status, body: answer.text.slice(0, 512) },
      });
    }
    if (response?.error) {
      throw new GatewayError(
        'AGENT_ERROR',
        `A2A ${method}: ${String(response.error.message ?? 'error')}`.slice(0, 4096),
        {
          retryable: false,
          details: { a2aCode: typeof response.error.code === 'number' ? response.error.code : null, method },
        },
      );
    }
    if (answer.status < 200 || answer.status > 299 || response?.id !== id) {
      throw badAnswer(`the A2A agent answered ${method} with HTTP ${answer.status} and no result for it`);
    }
    return response.result;
  }
}

interface A2aPart {
  text?: string;
  data?: unknown;
  url?: string;
}
interface A2aMessage {
  parts?: A2aPart[];
}
interface A2aTask {
  id: string;
  status?: { state?: string; message?: A2aMessage };
  artifacts?: { parts?: A2aPart[] }[];
}

/** The output of an answer's parts: one part's text or data as it is; several as a list. */
function outputOf(parts: A2aPart[] | undefined): unknown {
  const values = (parts ?? []).map((p) => (p.data !== undefined ? p.data : p.text !== undefined ? p.text : p));
  return values.length === 1 ? values[0] : values;
}

function textOf(parts: A2aPart[]): string {
  return parts
    .map((p) => p.text)
    .filter((t): t is string => typeof t === 'string')
    .join(' ')
    .slice(0, 1024);
}

function badAnswer(message: string): GatewayError {
  return new GatewayError('AGENT_ERROR', message, { retryable: false });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
