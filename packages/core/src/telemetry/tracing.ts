import {
  type Context,
  context,
  INVALID_SPAN_CONTEXT,
  propagation,
  ROOT_CONTEXT,
  type Span,
  type SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';

/**
 * Traces: OpenTelemetry spans for connections, actions, bus hops, queue jobs, validators, approval
 * waits and HTTP agent calls, with the W3C trace context carried in bus envelopes, BullMQ job data
 * and `task` events, so one request is one trace across replicas, workers and agents. The SDK is
 * started by the process entry point ({@link startTracing}) when the `OTEL_*` environment asks for an
 * exporter; otherwise every span here is a no-op that costs next to nothing. Payloads never go into
 * spans.
 */
export const tracer = trace.getTracer('openclaw');

interface Sdk {
  start(): void;
  shutdown(): Promise<void>;
}

let sdk: Sdk | undefined;

/** The span given to {@link inSpan}'s function when this process does not trace. */
const NO_SPAN: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/**
 * Whether the environment asks for traces: an OTLP endpoint, or `OTEL_TRACES_EXPORTER`, and neither
 * `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none`.
 */
export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '').split(',').map((s) => s.trim());
  if (exporters.includes('none')) return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_TRACES_EXPORTER);
}

/**
 * Starts the OpenTelemetry SDK for this process if the environment asks for it (see
 * {@link tracingRequested}); configured by the standard `OTEL_*` variables (endpoint, protocol,
 * sampler, resource attributes, batch delays). Must run before ioredis is loaded, so Redis commands
 * get spans (only under a parent span: background polling makes none). @returns whether it started.
 */
export function startTracing(serviceName: string): boolean {
  if (sdk || !tracingRequested()) return false;
  // Loaded only when used: the SDK and its exporters are large.
  const { NodeSDK } = require('@opentelemetry/sdk-node') as typeof import('@opentelemetry/sdk-node');
  const { IORedisInstrumentation } =
    require('@opentelemetry/instrumentation-ioredis') as typeof import('@opentelemetry/instrumentation-ioredis');
  const started = new NodeSDK({
    serviceName: process.env.OTEL_SERVICE_NAME || serviceName,
    instrumentations: [
      new IORedisInstrumentation({
        requireParentSpan: true,
        // The command only: arguments carry payloads (a script's, a hash's fields), which never go in spans.
        dbStatementSerializer: (command) => command,
      }),
    ],
    metricReaders: [],
    logRecordProcessors: [],
  });
  started.start();
  sdk = started;
  return true;
}

/**
 * Whether this process traces (its SDK started). Without it, bus envelopes still carry trace ids of
 * their own (replica to replica), but nothing is sent to agents as if a trace existed.
 */
export function tracingActive(): boolean {
  return sdk !== undefined;
}

/** Flushes and stops the SDK (on exit: spans still buffered are sent). */
export async function stopTracing(): Promise<void> {
  const current = sdk;
  sdk = undefined;
  await current?.shutdown().catch(() => undefined);
}

/** The context a W3C `traceparent` continues (the root context when it is absent or malformed). */
export function contextOf(traceparent: string | undefined, base: Context = ROOT_CONTEXT): Context {
  if (traceparent === undefined) return base;
  return propagation.extract(base, { traceparent });
}

/** The `traceparent` of a context's span (the active one by default), if tracing is on. */
export function traceparentOf(ctx: Context = context.active()): string | undefined {
  const carrier: { traceparent?: string } = {};
  propagation.inject(ctx, carrier);
  return carrier.traceparent;
}

/** Options of {@link inSpan}. */
export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Record<string, string | number | boolean | undefined>;
  /** The parent: a context, or a `traceparent`; default the active context. */
  parent?: Context | string;
}

/**
 * Runs `fn` in a new span (active inside it); the span ends when `fn` settles and records an error
 * it throws (by code, never a payload).
 */
export function inSpan<T>(name: string, options: SpanOptions, fn: (span: Span) => T): T {
  // Without an SDK every span is a no-op and no context is kept: skip making one (and its promise
  // chain), which on the request path costs more than the work of some actions.
  if (sdk === undefined) return fn(NO_SPAN);
  const parent =
    typeof options.parent === 'string'
      ? contextOf(options.parent, context.active())
      : (options.parent ?? context.active());
  const span = tracer.startSpan(name, { kind: options.kind, attributes: clean(options.attributes) }, parent);
  const failed = (error: unknown): void => {
    const code = (error as { code?: unknown }).code;
    span.setStatus({ code: SpanStatusCode.ERROR, message: typeof code === 'string' ? code : 'error' });
    if (typeof code === 'string') span.setAttribute('openclaw.error.code', code);
  };
  let result: T;
  try {
    result = context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (error) {
    failed(error);
    span.end();
    throw error;
  }
  if (result instanceof Promise) {
    return result.then(
      (value) => {
        span.end();
        return value;
      },
      (error: unknown) => {
        failed(error);
        span.end();
        throw error;
      },
    ) as T;
  }
  span.end();
  return result;
}

function clean(
  attributes: Record<string, string | number | boolean | undefined> | undefined,
): Record<string, string | number | boolean> | undefined {
  if (!attributes) return undefined;
  const out: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(attributes)) if (v !== undefined) out[k] = v;
  return out;
}
