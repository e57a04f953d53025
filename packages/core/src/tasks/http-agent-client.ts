import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { DEFAULT_LIMITS, GatewayError, nestingProblem } from '@openclaw/protocol';
import { SpanKind } from '@opentelemetry/api';
import { inSpan, traceparentOf } from '../telemetry/tracing';
import { type A2aAgentCard, A2aAgentClient } from './a2a-agent-client';
import { agentProtocol, checkAgentUrl, isPrivateAddress } from './agent-url';
import { type McpTool, McpToolClient } from './mcp-tool-client';

/** The JSON body POSTed to an HTTP agent. Documented in docs/http-agents.md. */
export interface HttpAgentRequest {
  taskId: string;
  task: string;
  data: unknown;
  /** Epoch milliseconds after which the gateway stops waiting. */
  deadline: number;
  from: { principal: string; agent?: string; onBehalfOf?: string; chain?: string[] };
  attempt: number;
  /** The memory thread of the conversation, if the call has one. */
  thread?: string;
}

/** Options of {@link HttpAgentClient}. */
export interface HttpAgentClientOptions {
  /** Whether agent URLs may resolve to loopback or private addresses. */
  allowPrivate: boolean;
  /** Largest response body read, in bytes. */
  maxResponseBytes: number;
  /** Deepest nesting of an answer (OPENCLAW_MAX_JSON_DEPTH); a deeper one fails the call. Default 64. */
  maxJsonDepth?: number;
}

/** Set on the error of a connection refused because its host resolved to a private address. */
const PRIVATE_TARGET = 'EPRIVATETARGET';

/**
 * A DNS lookup that refuses private addresses. It runs when the socket connects, so the address
 * checked is the address used: a DNS server cannot answer one thing to a check and another to the
 * connection (rebinding).
 */
function guardedLookup(): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, '', 0);
      const list = addresses as unknown as LookupAddress[];
      if (list.length === 0 || list.some((a) => isPrivateAddress(a.address))) {
        const refused = Object.assign(new Error(`${hostname} resolves to a private address`), { code: PRIVATE_TARGET });
        return callback(refused, '', 0);
      }
      if ((options as { all?: boolean }).all)
        return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
      return callback(null, list[0]!.address, list[0]!.family);
    });
  };
}

/** An answer to a POST. */
interface Posted {
  status: number;
  text: string;
  headers: Record<string, string | string[] | undefined>;
}

/**
 * Calls HTTP agents: one POST per task with a JSON body; the JSON response is the task's output.
 * Non-2xx responses, bodies that are not JSON, and timeouts become protocol errors. Connections are
 * kept alive between calls. An agent whose URL starts with `mcp+` is an outside MCP server: a task is
 * a `tools/call` of the tool of its name ({@link McpToolClient}); one starting with `a2a+` an outside
 * A2A agent: a task is a `SendMessage` ({@link A2aAgentClient}); both over the same guarded exchange.
 */
export class HttpAgentClient {
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  private readonly httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 256 });
  private readonly lookup: LookupFunction | undefined;
  private readonly mcp = new McpToolClient((target, body, headers, signal) =>
    this.exchange('POST', target, body, headers, signal),
  );
  private readonly a2a = new A2aAgentClient((method, target, body, headers, signal) =>
    this.exchange(method, target, body, headers, signal),
  );

  constructor(private readonly options: HttpAgentClientOptions) {
    this.lookup = options.allowPrivate ? undefined : guardedLookup();
  }

  /**
   * The Agent Card of an outside A2A agent, to register it as an agent.
   * @throws {GatewayError} `AGENT_UNAVAILABLE` when it cannot be read in `timeoutMs`; `BAD_REQUEST`
   * when it is not a card with an A2A 1.0 JSON-RPC interface.
   */
  a2aCard(cardUrl: string, timeoutMs: number): Promise<A2aAgentCard> {
    return this.readAtRegistration(cardUrl, timeoutMs, 'the Agent Card could not be read in time', (target, signal) =>
      this.a2a.card(target, signal),
    );
  }

  /**
   * The tools of an outside MCP server (`mcp+http(s)://...`), to register it as an agent.
   * @throws {GatewayError} `AGENT_UNAVAILABLE` when it cannot be reached in `timeoutMs`; `AGENT_ERROR`
   * when it does not answer as an MCP server.
   */
  mcpTools(url: string, timeoutMs: number): Promise<McpTool[]> {
    return this.readAtRegistration(url, timeoutMs, 'the MCP server did not answer in time', (target, signal) =>
      this.mcp.listTools(target, signal),
    );
  }

  /** What registering an outside agent reads of it, within `timeoutMs`, as protocol errors. */
  private async readAtRegistration<T>(
    url: string,
    timeoutMs: number,
    late: string,
    read: (target: URL, signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const target = await this.target(url);
    const deadline = AbortSignal.timeout(timeoutMs);
    try {
      return await read(target, deadline);
    } catch (error) {
      throw this.failure(error, undefined, deadline, () => new GatewayError('AGENT_UNAVAILABLE', late));
    }
  }

  /**
   * Runs a task on an HTTP agent.
   * @param signal aborts the call (the caller canceled); the deadline aborts it too.
   */
  invoke(url: string, request: HttpAgentRequest, signal?: AbortSignal): Promise<unknown> {
    return inSpan(
      'http agent call',
      { kind: SpanKind.CLIENT, attributes: { 'http.request.method': 'POST', 'openclaw.task': request.task } },
      () => this.call(url, request, signal),
    );
  }

  private async call(url: string, request: HttpAgentRequest, signal?: AbortSignal): Promise<unknown> {
    const target = await this.target(url);
    const remaining = request.deadline - Date.now();
    if (remaining <= 0) throw timeout(request);
    const deadline = AbortSignal.timeout(remaining);
    const combined = signal ? AbortSignal.any([deadline, signal]) : deadline;
    const { protocol } = agentProtocol(url);
    if (protocol !== 'http') {
      try {
        return protocol === 'mcp'
          ? await this.mcp.callTool(target, request.task, request.data, combined)
          : await this.a2a.send(target, request.task, request.data, combined);
      } catch (error) {
        throw this.failure(error, signal, deadline, () => timeout(request));
      }
    }
    const body = JSON.stringify(request);
    let response: Posted;
    try {
      response = await this.exchange(
        'POST',
        target,
        body,
        { accept: 'application/json', 'x-openclaw-task-id': request.taskId },
        combined,
      );
    } catch (error) {
      throw this.failure(error, signal, deadline, () => timeout(request));
    }
    if (response.status < 200 || response.status > 299) {
      throw new GatewayError('AGENT_ERROR', `HTTP agent answered with status ${response.status}`, {
        retryable: response.status >= 500 || response.status === 429,
        details: { status: response.status, body: response.text.slice(0, 512) },
      });
    }
    let output: unknown;
    try {
      output = response.text.length === 0 ? null : JSON.parse(response.text);
    } catch {
      throw new GatewayError('AGENT_ERROR', 'HTTP agent answered with a body that is not JSON', {
        details: { status: response.status, body: response.text.slice(0, 512) },
      });
    }
    const maxDepth = this.options.maxJsonDepth ?? DEFAULT_LIMITS.maxJsonDepth;
    if (nestingProblem(output, maxDepth)) {
      throw new GatewayError('AGENT_ERROR', `HTTP agent answered with JSON nested deeper than ${maxDepth} levels`, {
        details: { status: response.status },
      });
    }
    return output;
  }

  /** The URL to POST to, checked again now (it may resolve elsewhere than at registration). */
  private async target(url: string): Promise<URL> {
    try {
      return await checkAgentUrl(agentProtocol(url).url, { allowPrivate: this.options.allowPrivate, resolve: false });
    } catch (error) {
      throw new GatewayError('AGENT_UNAVAILABLE', `HTTP agent URL cannot be used now: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  /** A failed exchange as a protocol error: the agent's own, a cancel, the deadline, or the network. */
  private failure(
    error: unknown,
    signal: AbortSignal | undefined,
    deadline: AbortSignal,
    late: () => GatewayError,
  ): GatewayError {
    if (error instanceof GatewayError) return error;
    if (signal?.aborted) return new GatewayError('CANCELED', 'the task was canceled');
    if (deadline.aborted) return late();
    const reason = (error as { code?: string }).code ?? 'network error';
    return new GatewayError(
      'AGENT_UNAVAILABLE',
      reason === PRIVATE_TARGET
        ? 'HTTP agent URL now resolves to a private address'
        : 'HTTP agent could not be reached',
      { cause: error, details: { reason } },
    );
  }

  /** Closes kept-alive connections. */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  /** One HTTP exchange (a POST with a JSON body, or a GET), through the guarded lookup, size-limited. */
  private exchange(
    method: 'GET' | 'POST',
    target: URL,
    body: string | undefined,
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<Posted> {
    const limit = this.options.maxResponseBytes;
    const secure = target.protocol === 'https:';
    const traceparent = traceparentOf();
    return new Promise((resolve, reject) => {
      const req = (secure ? https : http).request(
        target,
        {
          method,
          agent: secure ? this.httpsAgent : this.httpAgent,
          lookup: this.lookup,
          signal,
          headers: {
            ...headers,
            ...(body === undefined
              ? {}
              : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }),
            // The call's trace continues in the agent, if it reads W3C trace context.
            ...(traceparent === undefined ? {} : { traceparent }),
          },
        },
        (res: IncomingMessage) => {
          const declared = Number(res.headers['content-length'] ?? '0');
          if (declared > limit) {
            res.destroy();
            reject(new GatewayError('AGENT_ERROR', `HTTP agent response is larger than ${limit} bytes`));
            return;
          }
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > limit) {
              res.destroy();
              reject(new GatewayError('AGENT_ERROR', `HTTP agent response is larger than ${limit} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          res.once('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              text: Buffer.concat(chunks).toString('utf8'),
              headers: res.headers,
            }),
          );
          res.once('error', reject);
        },
      );
      req.once('error', reject);
      req.end(body);
    });
  }
}

function timeout(request: HttpAgentRequest): GatewayError {
  return new GatewayError('TIMEOUT', `HTTP agent did not answer task '${request.task}' before its deadline`);
}
