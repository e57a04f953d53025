import { GatewayError } from '@openclaw/protocol';

/** What {@link McpToolClient} needs to POST: the SSRF-guarded, size-limited POST of the HTTP agent client. */
export type McpPost = (
  target: URL,
  body: string,
  headers: Record<string, string>,
  signal: AbortSignal,
) => Promise<{ status: number; text: string; headers: Record<string, string | string[] | undefined> }>;

/** A tool of an outside MCP server, as `tools/list` gives it. */
export interface McpTool {
  name: string;
  description?: string;
  inputSchema?: Record<string, unknown>;
}

/** The MCP protocol version this client asks for; servers answer with one they speak. */
const PROTOCOL_VERSION = '2025-06-18';
/** How many pages of `tools/list` are read at most. */
const MAX_TOOL_PAGES = 20;

interface Session {
  id: string | undefined;
  version: string;
}

/**
 * The gateway as an MCP client (Streamable HTTP) of an outside MCP server registered as an agent:
 * each of its tools is a task of the agent. One session per server URL, made on first use
 * (`initialize`, then `notifications/initialized`) and made again once when the server forgets it;
 * answers may come as JSON or as server-sent events. The POST is the HTTP agent client's, so the
 * same SSRF guard, response limit and deadline apply.
 */
export class McpToolClient {
  private readonly sessions = new Map<string, Promise<Session>>();
  private nextId = 1;

  constructor(private readonly post: McpPost) {}

  /** Every tool the server lists (all pages). */
  async listTools(target: URL, signal: AbortSignal): Promise<McpTool[]> {
    const tools: McpTool[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_TOOL_PAGES; page++) {
      const result = (await this.request(target, 'tools/list', cursor === undefined ? {} : { cursor }, signal)) as {
        tools?: unknown;
        nextCursor?: unknown;
      };
      if (!Array.isArray(result?.tools)) throw badAnswer('tools/list answered without a list of tools');
      for (const tool of result.tools as McpTool[]) {
        if (typeof tool?.name === 'string') tools.push(tool);
      }
      if (typeof result.nextCursor !== 'string' || result.nextCursor === '') return tools;
      cursor = result.nextCursor;
    }
    return tools;
  }

  /**
   * Calls tool `name` with `data` as its arguments. @returns the tool's structured content, else its
   * one text (parsed as JSON when it is JSON), else its content.
   * @throws {GatewayError} `AGENT_ERROR` for a tool error or a JSON-RPC error; `BAD_REQUEST` for data
   * that is not an object of arguments.
   */
  async callTool(target: URL, name: string, data: unknown, signal: AbortSignal): Promise<unknown> {
    if (data !== null && (typeof data !== 'object' || Array.isArray(data))) {
      throw new GatewayError('BAD_REQUEST', `MCP tool '${name}' takes an object of arguments as its data`, {
        details: [{ field: 'data', message: 'expected an object (or null for no arguments)' }],
      });
    }
    const result = (await this.request(target, 'tools/call', { name, arguments: data ?? {} }, signal)) as {
      content?: unknown;
      structuredContent?: unknown;
      isError?: unknown;
    };
    const content = Array.isArray(result?.content) ? (result.content as { type?: unknown; text?: unknown }[]) : [];
    const texts = content.filter((c) => c?.type === 'text' && typeof c.text === 'string').map((c) => c.text as string);
    if (result?.isError === true) {
      throw new GatewayError('AGENT_ERROR', texts.join('\n').slice(0, 4096) || `MCP tool '${name}' reported an error`, {
        retryable: false,
        details: { tool: name, content },
      });
    }
    if (result?.structuredContent !== undefined) return result.structuredContent;
    if (content.length === 1 && texts.length === 1) {
      try {
        return JSON.parse(texts[0]!);
      } catch {
        return texts[0];
      }
    }
    return content;
  }

  /** One JSON-RPC request on the server's session; a forgotten session is made again once. */
  private async request(target: URL, method: string, params: unknown, signal: AbortSignal): Promise<unknown> {
    for (let attempt = 1; ; attempt++) {
      const session = await this.session(target, signal);
      const id = this.nextId++;
      const answer = await this.exchange(target, { jsonrpc: '2.0', id, method, params }, session, signal);
      if (answer.status === 404 && session.id !== undefined && attempt === 1) {
        // The server ended the session (it restarted, or expired it): start another.
        this.sessions.delete(target.href);
        continue;
      }
      return resultOf(answer, id, method);
    }
  }

  private session(target: URL, signal: AbortSignal): Promise<Session> {
    let session = this.sessions.get(target.href);
    if (!session) {
      session = this.initialize(target, signal);
      this.sessions.set(target.href, session);
      session.catch(() => this.sessions.delete(target.href));
    }
    return session;
  }

  private async initialize(target: URL, signal: AbortSignal): Promise<Session> {
    const id = this.nextId++;
    const answer = await this.exchange(
      target,
      {
        jsonrpc: '2.0',
        id,
        method: 'initialize',
        params: {
          protocolVersion: PROTOCOL_VERSION,
          capabilities: {},
          clientInfo: { name: 'openclaw-gateway', version: '1' },
        },
      },
      undefined,
      signal,
    );
    const result = resultOf(answer, id, 'initialize') as { protocolVersion?: unknown };
    const header = answer.headers['mcp-session-id'];
    const session: Session = {
      id: typeof header === 'string' && header !== '' ? header : undefined,
      version: typeof result?.protocolVersion === 'string' ? result.protocolVersion : PROTOCOL_VERSION,
    };
    // A notification: the server answers 202 with no body; what it answers does not matter.
    await this.exchange(target, { jsonrpc: '2.0', method: 'notifications/initialized' }, session, signal);
    return session;
  }

  private async exchange(
    target: URL,
    message: Record<string, unknown>,
    session: Session | undefined,
    signal: AbortSignal,
  ): Promise<{ status: number; messages: Record<string, unknown>[]; headers: Record<string, unknown> }> {
    const headers: Record<string, string> = { accept: 'application/json, text/event-stream' };
    if (session) {
      headers['mcp-protocol-version'] = session.version;
      if (session.id !== undefined) headers['mcp-session-id'] = session.id;
    }
    const response = await this.post(target, JSON.stringify(message), headers, signal);
    const type = String(response.headers['content-type'] ?? '');
    return { status: response.status, messages: parseMessages(type, response.text), headers: response.headers };
  }
}

/** The messages of an answer: one JSON body, or the `data` of each server-sent event. */
function parseMessages(contentType: string, text: string): Record<string, unknown>[] {
  if (text.trim() === '') return [];
  const parse = (json: string): Record<string, unknown>[] => {
    try {
      const value = JSON.parse(json) as unknown;
      const list = Array.isArray(value) ? value : [value];
      return list.filter((m): m is Record<string, unknown> => m !== null && typeof m === 'object');
    } catch {
      return [];
    }
  };
  if (!contentType.includes('text/event-stream')) return parse(text);
  return text
    .split(/\r?\n\r?\n/)
    .map((event) =>
      event
        .split(/\r?\n/)
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).replace(/^ /, ''))
        .join('\n'),
    )
    .filter((data) => data !== '')
    .flatMap(parse);
}

/** The result of request `id` in an answer. @throws {GatewayError} `AGENT_ERROR` otherwise. */
function resultOf(
  answer: { status: number; messages: Record<string, unknown>[] },
  id: number,
  method: string,
): unknown {
  if (answer.status < 200 || answer.status > 299) {
    throw new GatewayError('AGENT_ERROR', `the MCP server answered ${method} with HTTP ${answer.status}`, {
      retryable: answer.status >= 500 || answer.status === 429,
      details: { status: answer.status, method },
    });
  }
  const response = answer.messages.find((m) => m.id === id);
  if (!response) throw badAnswer(`the MCP server sent no answer to ${method}`);
  const error = response.error as { code?: unknown; message?: unknown } | undefined;
  if (error) {
    throw new GatewayError('AGENT_ERROR', `MCP ${method}: ${String(error.message ?? 'error')}`.slice(0, 4096), {
      retryable: false,
      details: { mcpCode: typeof error.code === 'number' ? error.code : null, method },
    });
  }
  return response.result;
}

function badAnswer(message: string): GatewayError {
  return new GatewayError('AGENT_ERROR', message, { retryable: false });
}
