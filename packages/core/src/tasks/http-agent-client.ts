import { GatewayError } from '@openclaw/protocol';
import { checkAgentUrl } from './agent-url';

/** The JSON body POSTed to an HTTP agent. Documented in docs/http-agents.md. */
export interface HttpAgentRequest {
  taskId: string;
  task: string;
  data: unknown;
  /** Epoch milliseconds after which the gateway stops waiting. */
  deadline: number;
  from: { principal: string; agent?: string };
  attempt: number;
}

/** Options of {@link HttpAgentClient}. */
export interface HttpAgentClientOptions {
  /** Whether agent URLs may resolve to loopback or private addresses. */
  allowPrivate: boolean;
  /** Largest response body read, in bytes. */
  maxResponseBytes: number;
}

/**
 * Calls HTTP agents: one POST per task with a JSON body; the JSON response is the task's output.
 * Non-2xx responses, bodies that are not JSON, and timeouts become protocol errors.
 */
export class HttpAgentClient {
  constructor(private readonly options: HttpAgentClientOptions) {}

  /**
   * Runs a task on an HTTP agent.
   * @param signal aborts the call (the caller canceled); the deadline aborts it too.
   */
  async invoke(url: string, request: HttpAgentRequest, signal?: AbortSignal): Promise<unknown> {
    let target: URL;
    try {
      target = await checkAgentUrl(url, { allowPrivate: this.options.allowPrivate });
    } catch (error) {
      // Checked at registration; failing now means DNS changed or is down: the agent is unreachable.
      throw new GatewayError('AGENT_UNAVAILABLE', `HTTP agent URL cannot be used now: ${(error as Error).message}`, {
        cause: error,
      });
    }
    const remaining = request.deadline - Date.now();
    if (remaining <= 0) throw timeout(request);
    const deadline = AbortSignal.timeout(remaining);
    const combined = signal ? AbortSignal.any([deadline, signal]) : deadline;
    let response: Response;
    try {
      response = await fetch(target, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          'x-openclaw-task-id': request.taskId,
        },
        body: JSON.stringify(request),
        signal: combined,
        redirect: 'error',
      });
    } catch (error) {
      throw this.failure(error, request, deadline, signal);
    }
    let text: string;
    try {
      text = await readLimited(response, this.options.maxResponseBytes);
    } catch (error) {
      if (error instanceof GatewayError) throw error;
      throw this.failure(error, request, deadline, signal);
    }
    if (response.status < 200 || response.status > 299) {
      throw new GatewayError('AGENT_ERROR', `HTTP agent answered with status ${response.status}`, {
        retryable: response.status >= 500 || response.status === 429,
        details: { status: response.status, body: text.slice(0, 512) },
      });
    }
    try {
      return text.length === 0 ? null : JSON.parse(text);
    } catch {
      throw new GatewayError('AGENT_ERROR', 'HTTP agent answered with a body that is not JSON', {
        details: { status: response.status, body: text.slice(0, 512) },
      });
    }
  }

  private failure(
    error: unknown,
    request: HttpAgentRequest,
    deadline: AbortSignal,
    signal?: AbortSignal,
  ): GatewayError {
    if (signal?.aborted) return new GatewayError('CANCELED', 'the task was canceled');
    if (deadline.aborted) return timeout(request);
    return new GatewayError('AGENT_UNAVAILABLE', 'HTTP agent could not be reached', {
      cause: error,
      details: { reason: networkReason(error) },
    });
  }
}

function timeout(request: HttpAgentRequest): GatewayError {
  return new GatewayError('TIMEOUT', `HTTP agent did not answer task '${request.task}' before its deadline`);
}

async function readLimited(response: Response, limit: number): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > limit) {
    await response.body?.cancel();
    throw new GatewayError('AGENT_ERROR', `HTTP agent response is larger than ${limit} bytes`);
  }
  if (!response.body) return '';
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += (chunk as Uint8Array).byteLength;
    if (size > limit) throw new GatewayError('AGENT_ERROR', `HTTP agent response is larger than ${limit} bytes`);
    chunks.push(Buffer.from(chunk as Uint8Array));
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The system error code behind a failed fetch (`ECONNREFUSED`, `ENOTFOUND`, ...), if there is one. */
function networkReason(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('E')) return code;
    const inner = (current as { errors?: unknown[] }).errors?.[0];
    current = (current as { cause?: unknown }).cause ?? inner;
  }
  return 'network error';
}
