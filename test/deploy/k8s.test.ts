/**
 * The Kubernetes deployment in k8s/, checked offline: every rendering (the base, each overlay, and
 * the dev overlay with the Gateway API component) validates against the Kubernetes schemas, then
 * against what the schemas cannot see: probes on declared ports, grace periods that cover the
 * drain, locked-down pods, selectors that find their pods, network policies, documented settings.
 *
 * Each rendering comes from test/helpers/kustomize.ts and, where kubectl is installed, must equal
 * `kubectl kustomize`'s. A later block breaks the manifests in memory, one way at a time, and
 * expects the matching check to object: a check that cannot fail proves nothing.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { HTTPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Job } from 'kubernetes-models/batch/v1';
import { Ingress, NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service } from 'kubernetes-models/v1';
import {
  type Json,
  type K8sObject,
  kubectlAvailable,
  kubectlKustomize,
  objectId,
  podSpec,
  renderKustomization,
  strategicMerge,
} from '../helpers/kustomize';

const ROOT = path.resolve(__dirname, '../..');
const K8S = path.join(ROOT, 'k8s');

// ---------------------------------------------------------------------------------------------
// Shapes of the parts of objects the checks read (the schemas have validated the rest).

type Labels = Record<string, string>;
interface LabelSelector {
  matchLabels?: Labels;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}
interface Probe {
  httpGet?: { port: number | string; path?: string };
  tcpSocket?: { port: number | string };
  grpc?: { port: number };
  exec?: { command: string[] };
}
interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  privileged?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
  seccompProfile?: { type: string };
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    fieldRef?: { fieldPath: string };
  };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  ports?: { name?: string; containerPort: number }[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] }; sleep?: { seconds: number } } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: SecurityContext;
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: SecurityContext;
  terminationGracePeriodSeconds?: number;
  enableServiceLinks?: boolean;
  volumes?: { name: string }[];
}
interface NetworkPolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: { cidr: string };
}
interface NetworkPolicySpec {
  podSelector: LabelSelector;
  policyTypes?: string[];
  ingress?: { from?: NetworkPolicyPeer[]; ports?: { port?: number | string; endPort?: number }[] }[];
}

/** The role of a workload, from what its first container runs. */
type Role = 'gateway' | 'worker' | 'redis' | 'jaeger';

/** A Deployment or StatefulSet, with what the checks need of it. */
interface Workload {
  object: K8sObject;
  id: string;
  role: Role | undefined;
  namespace: string;
  labels: Labels;
  pod: PodSpec;
}

const WORKLOAD_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet']);

function workloads(objects: K8sObject[]): Workload[] {
  return objects
    .filter((o) => WORKLOAD_KINDS.has(o.kind))
    .map((object) => {
      const template = (object.spec as { template: { metadata?: { labels?: Labels } } }).template;
      const pod = podSpec(object) as unknown as PodSpec;
      return {
        object,
        id: `${object.kind} ${object.metadata.name}`,
        role: roleOf(pod),
        namespace: object.metadata.namespace ?? '',
        labels: template.metadata?.labels ?? {},
        pod,
      };
    });
}

function roleOf(pod: PodSpec): Role | undefined {
  const main = pod.containers[0];
  if (main === undefined) return undefined;
  const line = [...(main.command ?? []), ...(main.args ?? [])].join(' ');
  if (/\bgateway start\b/.test(line)) return 'gateway';
  if (/\bworker start\b/.test(line)) return 'worker';
  if (line.includes('redis-server') || /^(docker\.io\/)?(library\/)?redis[:@]/.test(main.image)) return 'redis';
  if (main.image.includes('jaeger')) return 'jaeger';
  return undefined;
}

/** Whether a Redis workload runs cluster nodes (`--cluster-enabled yes`). */
function isRedisCluster(w: Workload): boolean {
  const args = w.pod.containers[0]?.args ?? [];
  return args[args.indexOf('--cluster-enabled') + 1] === 'yes';
}

function byRole(objects: K8sObject[], role: Role): Workload {
  const found = workloads(objects).filter((w) => w.role === role);
  if (found.length !== 1) throw new Error(`expected one ${role} workload, found ${found.length}`);
  return found[0]!;
}

function containersOf(pod: PodSpec): Container[] {
  return [...pod.containers, ...(pod.initContainers ?? [])];
}

function ofKind<T>(objects: K8sObject[], kind: string): (K8sObject & { spec: T })[] {
  return objects.filter((o) => o.kind === kind) as (K8sObject & { spec: T })[];
}

function selectorMatches(selector: LabelSelector | undefined, labels: Labels): boolean {
  if (selector === undefined) return false;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (labels[key] !== value) return false;
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const has = key in labels;
    const ok =
      operator === 'In'
        ? has && values.includes(labels[key]!)
        : operator === 'NotIn'
          ? !has || !values.includes(labels[key]!)
          : operator === 'Exists'
            ? has
            : operator === 'DoesNotExist'
              ? !has
              : false;
    if (!ok) return false;
  }
  return true;
}

/** A container port by name or number, as probes, Services and NetworkPolicies name them. */
function containerPort(container: Container, port: number | string): number | undefined {
  const found = (container.ports ?? []).find((p) =>
    typeof port === 'number' ? p.containerPort === port : p.name === port,
  );
  return found?.containerPort;
}

function podPort(pod: PodSpec, port: number | string): number | undefined {
  for (const container of pod.containers) {
    const found = containerPort(container, port);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** Where a container's environment variable comes from. */
type EnvSource =
  | { from: 'value'; value: string }
  | { from: 'configMap'; name: string; value: string | undefined }
  | { from: 'secret'; name: string; key: string; optional: boolean }
  | { from: 'field'; path: string };

/**
 * The environment of a container as the kubelet builds it: `envFrom` ConfigMaps in order, then `env`
 * (which wins). ConfigMaps that do not exist in the rendering are reported in `missing`.
 */
function environment(objects: K8sObject[], namespace: string, container: Container) {
  const vars = new Map<string, EnvSource>();
  const missing: string[] = [];
  const configMap = (name: string) =>
    objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === name && o.metadata.namespace === namespace) as
      | (K8sObject & { data?: Record<string, string> })
      | undefined;
  for (const source of container.envFrom ?? []) {
    if (source.configMapRef !== undefined) {
      const map = configMap(source.configMapRef.name);
      if (map === undefined) missing.push(`ConfigMap ${source.configMapRef.name}`);
      for (const [key, value] of Object.entries(map?.data ?? {})) {
        vars.set(key, { from: 'configMap', name: source.configMapRef.name, value });
      }
    }
    if (source.secretRef !== undefined) missing.push(`envFrom Secret ${source.secretRef.name} (name the keys in env)`);
  }
  for (const v of container.env ?? []) {
    const ref = v.valueFrom;
    if (ref?.secretKeyRef !== undefined) {
      const { name, key, optional = false } = ref.secretKeyRef;
      vars.set(v.name, { from: 'secret', name, key, optional });
    } else if (ref?.configMapKeyRef !== undefined) {
      const map = configMap(ref.configMapKeyRef.name);
      if (map === undefined) missing.push(`ConfigMap ${ref.configMapKeyRef.name}`);
      vars.set(v.name, {
        from: 'configMap',
        name: ref.configMapKeyRef.name,
        value: map?.data?.[ref.configMapKeyRef.key],
      });
    } else if (ref?.fieldRef !== undefined) {
      vars.set(v.name, { from: 'field', path: ref.fieldRef.fieldPath });
    } else {
      vars.set(v.name, { from: 'value', value: v.value ?? '' });
    }
  }
  const value = (name: string): string | undefined => {
    const source = vars.get(name);
    return source?.from === 'value' || source?.from === 'configMap' ? source.value : undefined;
  };
  return { vars, missing, value };
}

/** The seconds a preStop hook sleeps: `sleep N` (exec, or through `sh -c`) or the sleep action. */
function preStopSeconds(container: Container): number {
  const hook = container.lifecycle?.preStop;
  if (hook === undefined) return 0;
  if (hook.sleep !== undefined) return hook.sleep.seconds;
  const line = (hook.exec?.command ?? []).join(' ');
  const match = /(?:^|\s|\/)sleep\s+(\d+(?:\.\d+)?)\b/.exec(line);
  if (match === null) throw new Error(`preStop of ${container.name} does not sleep: ${line}`);
  return Number(match[1]);
}

/** Kubernetes quantities to numbers (bytes or cores), for comparisons. */
function quantity(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(m|k|Ki|M|Mi|G|Gi|T|Ti)?$/.exec(text);
  if (match === null) throw new Error(`not a quantity: ${text}`);
  const unit: Record<string, number> = {
    '': 1,
    m: 1e-3,
    k: 1e3,
    Ki: 1024,
    M: 1e6,
    Mi: 1024 ** 2,
    G: 1e9,
    Gi: 1024 ** 3,
    T: 1e12,
    Ti: 1024 ** 4,
  };
  return Number(match[1]) * unit[match[2] ?? '']!;
}

/** Redis `maxmemory` values (`384mb`, `3gb`, bytes) to bytes. */
function redisBytes(text: string): number {
  const match = /^(\d+)(b|k|kb|m|mb|g|gb)?$/i.exec(text);
  if (match === null) throw new Error(`not a Redis memory size: ${text}`);
  const unit: Record<string, number> = { '': 1, b: 1, k: 1e3, kb: 1024, m: 1e6, mb: 1024 ** 2, g: 1e9, gb: 1024 ** 3 };
  return Number(match[1]) * unit[(match[2] ?? '').toLowerCase()]!;
}

/** Names in the first cell of each table row of a markdown file ("| `NAME` | ..."). */
function documentedNames(file: string): Set<string> {
  const names = new Set<string>();
  for (const line of readFileSync(path.join(ROOT, file), 'utf8').split('\n')) {
    if (!line.startsWith('| `')) continue;
    const cell = line.slice(1, line.indexOf('|', 1));
    for (const match of cell.matchAll(/`([A-Za-z0-9_]+)`/g)) names.add(match[1]!);
  }
  return names;
}

// ---------------------------------------------------------------------------------------------
// Schema validation.

type Validate = (object: K8sObject) => void;
function model<T>(Model: new (data: T) => { validate(): void }): Validate {
  return (object) => new Model(object as unknown as T).validate();
}

const MODELS: Record<string, Validate> = {
  'v1/Namespace': model(Namespace),
  'v1/ConfigMap': model(ConfigMap),
  'v1/Secret': model(Secret),
  'v1/Service': model(Service),
  'v1/PersistentVolumeClaim': model(PersistentVolumeClaim),
  'apps/v1/Deployment': model(Deployment),
  'apps/v1/StatefulSet': model(StatefulSet),
  'batch/v1/Job': model(Job),
  'autoscaling/v2/HorizontalPodAutoscaler': model(HorizontalPodAutoscaler),
  'policy/v1/PodDisruptionBudget': model(PodDisruptionBudget),
  'networking.k8s.io/v1/Ingress': model(Ingress),
  'networking.k8s.io/v1/NetworkPolicy': model(NetworkPolicy),
  'monitoring.coreos.com/v1/ServiceMonitor': model(ServiceMonitor),
  'gateway.networking.k8s.io/v1/HTTPRoute': model(HTTPRoute),
};

// ---------------------------------------------------------------------------------------------
// The checks. Each returns its problems, one sentence each; none means the rendering passes.

type Check = (objects: K8sObject[]) => string[];

const CHECKS = {
  schema: {
    title: 'every object validates against its Kubernetes schema',
    run: (objects) => {
      const problems: string[] = [];
      for (const object of objects) {
        const validate = MODELS[`${object.apiVersion}/${object.kind}`];
        if (validate === undefined) {
          problems.push(`${objectId(object)}: no schema to validate it against`);
          continue;
        }
        try {
          validate(object);
        } catch (error) {
          problems.push(`${objectId(object)}: ${(error as Error).message}`);
        }
      }
      return problems;
    },
  },

  probes: {
    title: 'every container has readiness and liveness probes on ports it declares',
    run: (objects) => {
      const problems: string[] = [];
      for (const w of workloads(objects)) {
        for (const c of w.pod.containers) {
          for (const kind of ['readinessProbe', 'livenessProbe', 'startupProbe'] as const) {
            const probe = c[kind];
            if (probe === undefined) {
              if (kind !== 'startupProbe') problems.push(`${w.id}/${c.name}: no ${kind}`);
              continue;
            }
            const port = probe.httpGet?.port ?? probe.tcpSocket?.port ?? probe.grpc?.port;
            if (port === undefined && probe.exec === undefined)
              problems.push(`${w.id}/${c.name}: ${kind} checks nothing`);
            if (port !== undefined && containerPort(c, port) === undefined) {
              problems.push(`${w.id}/${c.name}: ${kind} uses port ${port}, which the container does not declare`);
            }
          }
        }
        // The gateway's and the worker's probes have their own endpoints: readiness follows Redis, liveness must not.
        if (w.role === 'gateway' || w.role === 'worker') {
          const main = w.pod.containers[0]!;
          if (main.readinessProbe?.httpGet?.path !== '/readyz') problems.push(`${w.id}: readiness is not GET /readyz`);
          if (main.livenessProbe?.httpGet?.path !== '/healthz') problems.push(`${w.id}: liveness is not GET /healthz`);
        }
      }
      return problems;
    },
  },

  grace: {
    title: 'grace periods cover the preStop sleep, the drain and a margin of 5 s',
    run: (objects) => {
      const problems: string[] = [];
      for (const w of workloads(objects)) {
        if (w.role !== 'gateway' && w.role !== 'worker') continue;
        const main = w.pod.containers[0]!;
        const variable = w.role === 'gateway' ? 'OPENCLAW_DRAIN_MS' : 'OPENCLAW_WORKER_DRAIN_MS';
        const drainText = environment(objects, w.namespace, main).value(variable);
        if (drainText === undefined) {
          problems.push(
            `${w.id}: ${variable} is not set from a ConfigMap or a value (it must be visible to this check)`,
          );
          continue;
        }
        const drainSeconds = Number(drainText) / 1000;
        const sleep = preStopSeconds(main);
        const grace = w.pod.terminationGracePeriodSeconds ?? 30;
        if (!(grace >= sleep + drainSeconds + 5)) {
          problems.push(
            `${w.id}: terminationGracePeriodSeconds ${grace} < preStop ${sleep} s + drain ${drainSeconds} s + 5 s`,
          );
        }
        // Endpoints must be updated before SIGTERM turns the replica away.
        if (w.role === 'gateway' && sleep < 3) problems.push(`${w.id}: preStop sleeps ${sleep} s, less than 3 s`);
      }
      return problems;
    },
  },

  security: {
    title: 'every pod runs non-root, read-only, without privilege escalation or capabilities',
    run: (objects) => {
      const problems: string[] = [];
      for (const w of workloads(objects)) {
        const pod = w.pod.securityContext ?? {};
        for (const c of containersOf(w.pod)) {
          const sc = c.securityContext ?? {};
          const at = `${w.id}/${c.name}`;
          if ((sc.runAsNonRoot ?? pod.runAsNonRoot) !== true) problems.push(`${at}: runAsNonRoot is not true`);
          const user = sc.runAsUser ?? pod.runAsUser;
          if (user === undefined || user === 0)
            problems.push(`${at}: runAsUser is ${user ?? 'unset'}, not a non-root uid`);
          if (sc.readOnlyRootFilesystem !== true) problems.push(`${at}: readOnlyRootFilesystem is not true`);
          if (sc.allowPrivilegeEscalation !== false) problems.push(`${at}: allowPrivilegeEscalation is not false`);
          if (sc.privileged === true) problems.push(`${at}: privileged`);
          if (!(sc.capabilities?.drop ?? []).includes('ALL')) problems.push(`${at}: capabilities do not drop ALL`);
          if ((sc.capabilities?.add ?? []).length > 0) problems.push(`${at}: adds capabilities`);
          if ((sc.seccompProfile ?? pod.seccompProfile)?.type !== 'RuntimeDefault') {
            problems.push(`${at}: seccompProfile is not RuntimeDefault`);
          }
        }
        // Service links would inject e.g. OPENCLAW_WORKER_PORT=tcp://... into the settings parser's input.
        if (w.pod.enableServiceLinks !== false) problems.push(`${w.id}: enableServiceLinks is not false`);
      }
      return problems;
    },
  },

  resources: {
    title: 'every container has CPU and memory requests and limits, requests within limits',
    run: (objects) => {
      const problems: string[] = [];
      for (const w of workloads(objects)) {
        for (const c of containersOf(w.pod)) {
          for (const resource of ['cpu', 'memory']) {
            const request = c.resources?.requests?.[resource];
            const limit = c.resources?.limits?.[resource];
            if (request === undefined) problems.push(`${w.id}/${c.name}: no ${resource} request`);
            if (limit === undefined) problems.push(`${w.id}/${c.name}: no ${resource} limit`);
            if (request !== undefined && limit !== undefined && quantity(request) > quantity(limit)) {
              problems.push(`${w.id}/${c.name}: ${resource} request ${request} above its limit ${limit}`);
            }
          }
        }
      }
      return problems;
    },
  },

  selectors: {
    title: 'Services, PodDisruptionBudgets and ServiceMonitors select what they mean to',
    run: (objects) => {
      const problems: string[] = [];
      const all = workloads(objects);
      const selected = (namespace: string, selector: LabelSelector) =>
        all.filter((w) => w.namespace === namespace && selectorMatches(selector, w.labels));
      for (const service of ofKind<{
        selector?: Labels;
        ports: { name?: string; port: number; targetPort?: number | string }[];
      }>(objects, 'Service')) {
        const at = `Service ${service.metadata.name}`;
        const found = selected(service.metadata.namespace ?? '', { matchLabels: service.spec.selector ?? {} });
        if (service.spec.selector === undefined || found.length !== 1) {
          problems.push(
            `${at}: selects ${found.length} workloads (${found.map((w) => w.id).join(', ')}), not exactly one`,
          );
          continue;
        }
        for (const port of service.spec.ports) {
          const target = port.targetPort ?? port.port;
          if (podPort(found[0]!.pod, target) === undefined) {
            problems.push(`${at}: targetPort ${target} is not a port of ${found[0]!.id}`);
          }
        }
      }
      for (const pdb of ofKind<{
        selector?: LabelSelector;
        maxUnavailable?: number | string;
        minAvailable?: number | string;
      }>(objects, 'PodDisruptionBudget')) {
        const at = `PodDisruptionBudget ${pdb.metadata.name}`;
        const found = selected(pdb.metadata.namespace ?? '', pdb.spec.selector ?? {});
        if (pdb.spec.selector === undefined || found.length !== 1) {
          problems.push(
            `${at}: selects ${found.length} workloads (${found.map((w) => w.id).join(', ')}), not exactly one`,
          );
        }
        if (pdb.spec.maxUnavailable === undefined && pdb.spec.minAvailable === undefined) {
          problems.push(`${at}: neither maxUnavailable nor minAvailable`);
        }
        if (pdb.spec.maxUnavailable === 0 || pdb.spec.maxUnavailable === '0%') {
          problems.push(`${at}: maxUnavailable 0 blocks every node drain`);
        }
      }
      for (const role of ['gateway', 'worker'] as const) {
        const w = byRole(objects, role);
        const covered = ofKind<{ selector?: LabelSelector }>(objects, 'PodDisruptionBudget').some((pdb) =>
          selectorMatches(pdb.spec.selector, w.labels),
        );
        if (!covered) problems.push(`${w.id}: no PodDisruptionBudget`);
      }
      const services = ofKind<{ ports: { name?: string }[] }>(objects, 'Service');
      for (const monitor of ofKind<{ selector: LabelSelector; endpoints: { port?: string; path?: string }[] }>(
        objects,
        'ServiceMonitor',
      )) {
        const at = `ServiceMonitor ${monitor.metadata.name}`;
        const found = services.filter(
          (s) =>
            s.metadata.namespace === monitor.metadata.namespace &&
            selectorMatches(monitor.spec.selector, s.metadata.labels ?? {}),
        );
        if (found.length !== 1) {
          problems.push(`${at}: selects ${found.length} Services, not exactly one`);
          continue;
        }
        for (const endpoint of monitor.spec.endpoints) {
          if (!found[0]!.spec.ports.some((p) => p.name === endpoint.port)) {
            problems.push(`${at}: port ${endpoint.port} is not a port of Service ${found[0]!.metadata.name}`);
          }
          if (endpoint.path !== '/metrics') problems.push(`${at}: scrapes ${endpoint.path}, not /metrics`);
        }
      }
      for (const role of ['gateway', 'worker'] as const) {
        const w = byRole(objects, role);
        const scraped = ofKind<{ selector: LabelSelector }>(objects, 'ServiceMonitor').some((m) =>
          services.some(
            (s) =>
              selectorMatches(m.spec.selector, s.metadata.labels ?? {}) &&
              selectorMatches({ matchLabels: (s.spec as { selector?: Labels }).selector ?? {} }, w.labels),
          ),
        );
        if (!scraped) problems.push(`${w.id}: no ServiceMonitor scrapes it`);
      }
      return problems;
    },
  },

  autoscalers: {
    title: 'autoscalers target existing Deployments, on documented metrics, and scale down gently',
    run: (objects) => {
      const problems: string[] = [];
      type Metric = {
        type: string;
        pods?: { metric: { name: string }; target?: { averageValue?: string | number } };
        external?: { metric: { name: string; selector?: LabelSelector } };
        resource?: { name: string };
      };
      type Hpa = {
        scaleTargetRef: { apiVersion?: string; kind: string; name: string };
        minReplicas?: number;
        maxReplicas: number;
        metrics?: Metric[];
        behavior?: {
          scaleDown?: { stabilizationWindowSeconds?: number; policies?: { type: string; value: number }[] };
        };
      };
      const documented = documentedNames('docs/observability.md');
      const hpas = ofKind<Hpa>(objects, 'HorizontalPodAutoscaler');
      for (const hpa of hpas) {
        const at = `HorizontalPodAutoscaler ${hpa.metadata.name}`;
        const ref = hpa.spec.scaleTargetRef;
        const target = objects.find(
          (o) =>
            o.kind === ref.kind &&
            o.apiVersion === (ref.apiVersion ?? o.apiVersion) &&
            o.metadata.name === ref.name &&
            o.metadata.namespace === hpa.metadata.namespace,
        );
        if (ref.kind !== 'Deployment' || target === undefined) {
          problems.push(`${at}: scaleTargetRef ${ref.kind} ${ref.name} is not a Deployment of the rendering`);
        }
        if ((hpa.spec.minReplicas ?? 1) > hpa.spec.maxReplicas) problems.push(`${at}: minReplicas above maxReplicas`);
        const down = hpa.spec.behavior?.scaleDown;
        if ((down?.stabilizationWindowSeconds ?? 300) < 300) problems.push(`${at}: scale-down window under 300 s`);
        if (!(down?.policies ?? []).some((p) => p.type === 'Percent' && p.value <= 25)) {
          problems.push(`${at}: no scale-down policy of at most 25 % per period`);
        }
        for (const metric of hpa.spec.metrics ?? []) {
          const name = metric.pods?.metric.name ?? metric.external?.metric.name;
          if (name !== undefined && !documented.has(name)) {
            problems.push(`${at}: metric ${name} is not in docs/observability.md`);
          }
        }
      }
      const scaling = (role: Role) => {
        const w = byRole(objects, role);
        return hpas.find((h) => h.spec.scaleTargetRef.name === w.object.metadata.name);
      };
      const gateway = scaling('gateway');
      if (gateway === undefined) problems.push('the gateway Deployment has no autoscaler');
      else {
        if (!gateway.spec.metrics?.some((m) => m.type === 'Pods' && m.pods?.metric.name === 'openclaw_connections')) {
          problems.push('the gateway autoscaler does not follow openclaw_connections per pod');
        }
        if (!gateway.spec.metrics?.some((m) => m.type === 'Resource' && m.resource?.name === 'cpu')) {
          problems.push('the gateway autoscaler does not follow CPU');
        }
        // Scale out before replicas refuse upgrades at their connection cap.
        const w = byRole(objects, 'gateway');
        const env = environment(objects, w.namespace, w.pod.containers[0]!);
        const cap = Number(env.value('OPENCLAW_MAX_CONNECTIONS') ?? 10_000);
        for (const m of gateway.spec.metrics ?? []) {
          const target = m.pods?.metric.name === 'openclaw_connections' ? m.pods.target?.averageValue : undefined;
          if (target !== undefined && !(quantity(String(target)) < cap)) {
            problems.push(`the gateway autoscaler targets ${target} connections per pod, not below the cap ${cap}`);
          }
        }
      }
      const worker = scaling('worker');
      const waiting = worker?.spec.metrics?.find(
        (m) => m.type === 'External' && m.external?.metric.name === 'openclaw_queue_jobs',
      );
      if (waiting?.external?.metric.selector?.matchLabels?.state !== 'waiting') {
        problems.push('the worker autoscaler does not follow openclaw_queue_jobs{state="waiting"}');
      }
      return problems;
    },
  },

  edge: {
    title: 'Ingresses and HTTPRoutes reach the gateway Service and keep WebSockets open an hour',
    run: (objects) => {
      const problems: string[] = [];
      const servicePort = (namespace: string | undefined, name: string, port: number | string | undefined) => {
        const service = objects.find(
          (o) => o.kind === 'Service' && o.metadata.name === name && o.metadata.namespace === namespace,
        ) as (K8sObject & { spec: { ports: { name?: string; port: number }[] } }) | undefined;
        return service?.spec.ports.some((p) => p.name === port || p.port === port) ?? false;
      };
      type Backend = { service: { name: string; port: { name?: string; number?: number } } };
      for (const ingress of ofKind<{ ingressClassName?: string; rules: { http: { paths: { backend: Backend }[] } }[] }>(
        objects,
        'Ingress',
      )) {
        const at = `Ingress ${ingress.metadata.name}`;
        const annotations = (ingress.metadata.annotations ?? {}) as Record<string, string>;
        for (const key of ['proxy-read-timeout', 'proxy-send-timeout']) {
          const value = Number(annotations[`nginx.ingress.kubernetes.io/${key}`]);
          if (!(value >= 3600))
            problems.push(`${at}: ${key} is ${annotations[`nginx.ingress.kubernetes.io/${key}`]}, under 3600 s`);
        }
        if (ingress.spec.ingressClassName !== 'nginx') problems.push(`${at}: ingressClassName is not nginx`);
        for (const rule of ingress.spec.rules) {
          for (const { backend } of rule.http.paths) {
            const port = backend.service.port.name ?? backend.service.port.number;
            if (!servicePort(ingress.metadata.namespace, backend.service.name, port)) {
              problems.push(`${at}: backend ${backend.service.name}:${port} is not a Service port`);
            }
          }
        }
      }
      for (const route of ofKind<{ rules: { backendRefs?: { kind?: string; name: string; port?: number }[] }[] }>(
        objects,
        'HTTPRoute',
      )) {
        for (const rule of route.spec.rules) {
          for (const ref of rule.backendRefs ?? []) {
            if ((ref.kind ?? 'Service') !== 'Service' || !servicePort(route.metadata.namespace, ref.name, ref.port)) {
              problems.push(`HTTPRoute ${route.metadata.name}: backend ${ref.name}:${ref.port} is not a Service port`);
            }
          }
        }
      }
      return problems;
    },
  },

  network: {
    title:
      'network policies: default deny, agents reach only the gateway port, Redis and Jaeger only gateways and workers',
    run: (objects) => {
      const problems: string[] = [];
      const policies = ofKind<NetworkPolicySpec>(objects, 'NetworkPolicy');
      const all = workloads(objects);
      const namespaces = new Set(all.map((w) => w.namespace));
      for (const namespace of namespaces) {
        const denies = policies.some(
          (p) =>
            p.metadata.namespace === namespace &&
            Object.keys(p.spec.podSelector.matchLabels ?? {}).length === 0 &&
            (p.spec.podSelector.matchExpressions ?? []).length === 0 &&
            (p.spec.policyTypes ?? []).includes('Ingress') &&
            (p.spec.ingress ?? []).length === 0,
        );
        if (!denies) problems.push(`namespace ${namespace}: no default-deny ingress policy`);
      }

      /** Who may open a connection to this port of this workload: 'any', or the peers allowed. */
      const admitted = (w: Workload, port: number): 'any' | NetworkPolicyPeer[] => {
        const name = w.pod.containers.flatMap((c) => c.ports ?? []).find((p) => p.containerPort === port)?.name;
        const selecting = policies.filter(
          (p) =>
            p.metadata.namespace === w.namespace &&
            selectorMatches(p.spec.podSelector, w.labels) &&
            (p.spec.policyTypes ?? ['Ingress']).includes('Ingress'),
        );
        if (selecting.length === 0) return 'any';
        const peers: NetworkPolicyPeer[] = [];
        for (const rule of selecting.flatMap((p) => p.spec.ingress ?? [])) {
          const ports = rule.ports ?? [];
          const covers =
            ports.length === 0 ||
            ports.some(
              (p) =>
                p.port === undefined ||
                p.port === name ||
                p.port === port ||
                (typeof p.port === 'number' && p.endPort !== undefined && p.port <= port && port <= p.endPort),
            );
          if (!covers) continue;
          if ((rule.from ?? []).length === 0) return 'any';
          peers.push(...rule.from!);
        }
        return peers;
      };
      /** The workloads of the namespace a list of peers admits; undefined when a peer reaches beyond them. */
      const onlyPods = (w: Workload, peers: NetworkPolicyPeer[]): Set<Workload> | undefined => {
        const found = new Set<Workload>();
        for (const peer of peers) {
          if (peer.namespaceSelector !== undefined || peer.ipBlock !== undefined || peer.podSelector === undefined)
            return;
          for (const other of all) {
            if (other.namespace === w.namespace && selectorMatches(peer.podSelector, other.labels)) found.add(other);
          }
        }
        return found;
      };

      const gateway = byRole(objects, 'gateway');
      const worker = byRole(objects, 'worker');
      for (const w of all) {
        for (const p of w.pod.containers.flatMap((c) => c.ports ?? [])) {
          const peers = admitted(w, p.containerPort);
          const gatewayPort = w.id === gateway.id && p.name === 'http';
          if (peers === 'any' && !gatewayPort) problems.push(`${w.id}: port ${p.containerPort} is open to any source`);
          if (gatewayPort && peers !== 'any') problems.push(`${w.id}: agents cannot reach port ${p.containerPort}`);
        }
      }
      const onlyGatewaysAndWorkers = (role: Role, port: number) => {
        const w = byRole(objects, role);
        const peers = admitted(w, port);
        const found = peers === 'any' ? undefined : onlyPods(w, peers);
        const names = found === undefined ? 'sources beyond its pods' : [...found].map((x) => x.id).join(', ');
        const ids = new Set([...(found ?? [])].map((x) => x.id));
        // The nodes of a Redis Cluster replicate from each other and move slots between them.
        if (role === 'redis' && isRedisCluster(w)) ids.delete(w.id);
        if (found === undefined || ids.size !== 2 || !ids.has(gateway.id) || !ids.has(worker.id)) {
          problems.push(`${w.id}: port ${port} admits ${names}, not exactly the gateways and the workers`);
        }
      };
      onlyGatewaysAndWorkers('redis', 6379);
      onlyGatewaysAndWorkers('jaeger', 4318);
      // A Redis Cluster's nodes talk to each other on the cluster bus, and nothing else does.
      const redis = byRole(objects, 'redis');
      const bus = redis.pod.containers[0]!.ports?.find((p) => p.name === 'cluster-bus');
      if (bus !== undefined) {
        const peers = admitted(redis, bus.containerPort);
        const found = peers === 'any' ? undefined : onlyPods(redis, peers);
        const ids = new Set([...(found ?? [])].map((x) => x.id));
        if (found === undefined || ids.size !== 1 || !ids.has(redis.id)) {
          problems.push(`${redis.id}: the cluster bus port ${bus.containerPort} admits not exactly the Redis nodes`);
        }
      }

      const monitoring = { 'kubernetes.io/metadata.name': 'monitoring' };
      for (const w of [gateway, worker]) {
        const port = w.pod.containers[0]!.ports![0]!.containerPort;
        const peers = admitted(w, port);
        const reached =
          peers === 'any' ||
          peers.some((peer) => peer.podSelector === undefined && selectorMatches(peer.namespaceSelector, monitoring));
        if (!reached) problems.push(`${w.id}: Prometheus (namespace monitoring) cannot reach port ${port}`);
      }
      return problems;
    },
  },

  settings: {
    title: 'settings the workloads read are documented in docs/configuration.md and fit a pod',
    run: (objects) => {
      const problems: string[] = [];
      const documented = documentedNames('docs/configuration.md');
      for (const w of workloads(objects)) {
        for (const c of w.pod.containers) {
          const env = environment(objects, w.namespace, c);
          for (const missing of env.missing) problems.push(`${w.id}/${c.name}: ${missing} is not in the rendering`);
          if (w.role !== 'gateway' && w.role !== 'worker') continue;
          for (const name of env.vars.keys()) {
            if (/^(OPENCLAW_|OTEL_)/.test(name) || name === 'REDIS_URL') {
              if (!documented.has(name)) problems.push(`${w.id}/${c.name}: ${name} is not in docs/configuration.md`);
            }
          }
          const port = c.ports?.[0]?.containerPort;
          const [hostVar, portVar] =
            w.role === 'gateway'
              ? ['OPENCLAW_HOST', 'OPENCLAW_PORT']
              : ['OPENCLAW_WORKER_HOST', 'OPENCLAW_WORKER_PORT'];
          if (env.value(hostVar) !== '0.0.0.0')
            problems.push(`${w.id}: ${hostVar} is ${env.value(hostVar)}, not 0.0.0.0`);
          if (Number(env.value(portVar)) !== port) {
            problems.push(`${w.id}: ${portVar} is ${env.value(portVar)}, the container port ${port}`);
          }
          if (!(env.vars.get('REDIS_URL')?.from === 'secret'))
            problems.push(`${w.id}: REDIS_URL does not come from a Secret`);
          if (w.role === 'gateway' && (env.value('OPENCLAW_AUTH') ?? 'apikey') === 'none') {
            problems.push(`${w.id}: OPENCLAW_AUTH is none`);
          }
          const idVar = w.role === 'gateway' ? 'OPENCLAW_REPLICA_ID' : 'OPENCLAW_WORKER_ID';
          const id = env.vars.get(idVar);
          if (id?.from !== 'field' || id.path !== 'metadata.name')
            problems.push(`${w.id}: ${idVar} is not the pod name`);
        }
      }
      return problems;
    },
  },

  redis: {
    title: 'Redis keeps an AOF on a volume, never evicts, and has a headless Service',
    run: (objects) => {
      const problems: string[] = [];
      const redis = byRole(objects, 'redis');
      const container = redis.pod.containers[0]!;
      const args = [...(container.command ?? []), ...(container.args ?? [])];
      const option = (name: string) => {
        const at = args.indexOf(`--${name}`);
        return at === -1 ? undefined : args[at + 1];
      };
      if (redis.object.kind !== 'StatefulSet') problems.push(`${redis.id}: not a StatefulSet`);
      if (option('appendonly') !== 'yes') problems.push(`${redis.id}: appendonly is ${option('appendonly')}, not yes`);
      if (option('maxmemory-policy') !== 'noeviction') problems.push(`${redis.id}: maxmemory-policy is not noeviction`);
      const maxmemory = option('maxmemory');
      const limit = container.resources?.limits?.memory;
      if (maxmemory === undefined || limit === undefined || redisBytes(maxmemory) >= quantity(limit)) {
        problems.push(`${redis.id}: maxmemory ${maxmemory} is not below the memory limit ${limit}`);
      }
      const claims = (redis.object.spec as { volumeClaimTemplates?: { metadata: { name: string } }[] })
        .volumeClaimTemplates;
      const mount = container.volumeMounts?.find((m) => m.mountPath === (option('dir') ?? '/data'));
      if (mount === undefined || !(claims ?? []).some((claim) => claim.metadata.name === mount.name)) {
        problems.push(`${redis.id}: its data directory is not on a volumeClaimTemplate`);
      }
      const serviceName = (redis.object.spec as { serviceName?: string }).serviceName;
      const service = ofKind<{ clusterIP?: string }>(objects, 'Service').find((s) => s.metadata.name === serviceName);
      if (service?.spec.clusterIP !== 'None')
        problems.push(`${redis.id}: serviceName ${serviceName} is not a headless Service`);
      return problems;
    },
  },
} satisfies Record<string, { title: string; run: Check }>;

/** Secret keys the workloads read: name → whether some reader needs it (not optional). */
function secretKeys(objects: K8sObject[]): Map<string, { secret: string; required: boolean }> {
  const keys = new Map<string, { secret: string; required: boolean }>();
  for (const w of workloads(objects)) {
    for (const c of w.pod.containers) {
      for (const source of environment(objects, w.namespace, c).vars.values()) {
        if (source.from !== 'secret') continue;
        const required = (keys.get(source.key)?.required ?? false) || !source.optional;
        keys.set(source.key, { secret: source.name, required });
      }
    }
  }
  return keys;
}

const gatewayReplicas = (objects: K8sObject[]) =>
  (byRole(objects, 'gateway').object.spec as { replicas?: number }).replicas ?? 1;
const gatewayHpa = (objects: K8sObject[]) =>
  ofKind<{ scaleTargetRef: { name: string }; minReplicas?: number; maxReplicas: number }>(
    objects,
    'HorizontalPodAutoscaler',
  ).find((h) => h.spec.scaleTargetRef.name === byRole(objects, 'gateway').object.metadata.name);
const isExampleSecret = (o: K8sObject) =>
  o.kind === 'Secret' && (o.metadata.annotations as Record<string, string> | undefined)?.example !== undefined;

/** What only production must satisfy. */
const PROD_CHECK: Check = (objects) => {
  const problems: string[] = [];
  if (gatewayReplicas(objects) < 3) problems.push(`gateway replicas ${gatewayReplicas(objects)}, fewer than 3`);
  const hpa = gatewayHpa(objects);
  if ((hpa?.spec.minReplicas ?? 1) < 3)
    problems.push(`gateway autoscaler minReplicas ${hpa?.spec.minReplicas}, below 3`);
  for (const secret of objects.filter((o) => o.kind === 'Secret')) {
    problems.push(`${objectId(secret)}: production Secrets are created out of band, not rendered`);
  }
  for (const w of workloads(objects)) {
    for (const c of containersOf(w.pod)) {
      if (!/[:@]/.test(c.image.slice(c.image.lastIndexOf('/') + 1)) || c.image.endsWith(':latest')) {
        problems.push(`${w.id}/${c.name}: image ${c.image} is not pinned to a tag or digest`);
      }
    }
  }
  return problems;
};

/** What only development must satisfy: one gateway, and an example Secret with every key read. */
const DEV_CHECK: Check = (objects) => {
  const problems: string[] = [];
  if (gatewayReplicas(objects) !== 1) problems.push(`gateway replicas ${gatewayReplicas(objects)}, not 1`);
  const secrets = objects.filter((o) => o.kind === 'Secret') as (K8sObject & { stringData?: Labels; data?: Labels })[];
  for (const [key, { secret, required }] of secretKeys(objects)) {
    const found = secrets.find((s) => s.metadata.name === secret);
    if (found === undefined) problems.push(`Secret ${secret} is not in the rendering`);
    else if (required && found.stringData?.[key] === undefined && found.data?.[key] === undefined) {
      problems.push(`Secret ${secret} has no ${key}`);
    }
  }
  if (!secrets.every(isExampleSecret)) problems.push('a Secret of the dev overlay is not marked as an example');
  // The gateway refuses to start with shorter values (docs/configuration.md).
  const minimum: Record<string, number> = {
    OPENCLAW_API_KEY_SECRET: 32,
    OPENCLAW_AUDIT_SECRET: 32,
    OPENCLAW_METRICS_TOKEN: 16,
    OPENCLAW_API_KEYS: 16,
  };
  for (const secret of secrets) {
    for (const [key, value] of Object.entries(secret.stringData ?? {})) {
      // OPENCLAW_API_KEYS is a comma-separated list; each key must be long enough.
      const values = key === 'OPENCLAW_API_KEYS' ? value.split(',') : [value];
      const short = values.find((v) => v.trim().length < (minimum[key] ?? 0));
      if (short !== undefined) problems.push(`Secret ${secret.metadata.name}: ${key} is shorter than ${minimum[key]}`);
    }
  }
  return problems;
};

// ---------------------------------------------------------------------------------------------
// The renderings.

/** An overlay plus a component, from a scratch kustomization of its own (relative paths only). */
function withComponent(scratch: string, overlay: string, component: string): string {
  const dir = path.join(scratch, path.basename(component));
  mkdirSync(dir, { recursive: true });
  const rel = (to: string) => path.relative(dir, path.join(K8S, to)).split(path.sep).join('/');
  writeFileSync(
    path.join(dir, 'kustomization.yaml'),
    [
      'apiVersion: kustomize.config.k8s.io/v1beta1',
      'kind: Kustomization',
      'resources:',
      `  - ${rel(overlay)}`,
      'components:',
      `  - ${rel(component)}`,
      '',
    ].join('\n'),
  );
  return dir;
}

const scratch = mkdtempSync(path.join(tmpdir(), 'openclaw-k8s-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const TARGETS: Record<string, string> = {
  base: path.join(K8S, 'base'),
  dev: path.join(K8S, 'overlays/dev'),
  prod: path.join(K8S, 'overlays/prod'),
  'dev + Gateway API': withComponent(scratch, 'overlays/dev', 'components/gateway-api'),
  'prod + Redis Cluster': withComponent(scratch, 'overlays/prod', 'components/redis-cluster'),
};

const rendered = new Map<string, K8sObject[]>();
function render(name: string): K8sObject[] {
  if (!rendered.has(name)) rendered.set(name, renderKustomization(TARGETS[name]!));
  return structuredClone(rendered.get(name)!);
}

const KUBECTL = kubectlAvailable();
// Where kubectl is missing, the renderer stands alone: say so, do not fail.
const withKubectl = KUBECTL ? test : test.skip;
beforeAll(() => {
  if (!KUBECTL) console.info('kubectl is not installed: renderings are not compared with `kubectl kustomize`');
});

describe.each(Object.keys(TARGETS))('k8s: %s', (name) => {
  withKubectl('renders the same objects as kubectl kustomize', () => {
    const ours = render(name);
    const theirs = kubectlKustomize(TARGETS[name]!);
    const index = (objects: K8sObject[]) => new Map(objects.map((o) => [objectId(o), o]));
    expect([...index(ours).keys()].sort()).toEqual([...index(theirs).keys()].sort());
    const mine = index(ours);
    for (const [id, object] of index(theirs)) expect({ id, object: mine.get(id) }).toEqual({ id, object });
  });

  test.each(Object.values(CHECKS).map((check) => [check.title, check.run] as const))('%s', (_title, run) => {
    expect(run(render(name))).toEqual([]);
  });

  test('the Secret keys the workloads read are documented in k8s/README.md', () => {
    const readme = readFileSync(path.join(K8S, 'README.md'), 'utf8');
    const undocumented = [...secretKeys(render(name)).keys()].filter((key) => !readme.includes(`\`${key}\``));
    expect(undocumented).toEqual([]);
  });
});

describe('k8s: environments', () => {
  test('the Redis Cluster component runs six cluster nodes under stable names, joined once by a Job', () => {
    const objects = render('prod + Redis Cluster');
    const redis = byRole(objects, 'redis');
    const args = redis.pod.containers[0]!.args ?? [];
    const option = (name: string) => args[args.indexOf(`--${name}`) + 1];
    expect((redis.object.spec as { replicas?: number }).replicas).toBe(6);
    expect(isRedisCluster(redis)).toBe(true);
    expect(option('cluster-config-file')).toBe('/data/nodes.conf');
    expect(option('cluster-announce-hostname')).toBe('$(POD_NAME).redis');
    expect(option('cluster-preferred-endpoint-type')).toBe('hostname');
    expect(redis.pod.containers[0]!.env).toContainEqual({
      name: 'POD_NAME',
      valueFrom: { fieldRef: { fieldPath: 'metadata.name' } },
    });
    const jobs = objects.filter((o) => o.kind === 'Job');
    expect(jobs.map((j) => j.metadata.name)).toEqual(['redis-cluster-create']);
    const script = JSON.stringify(podSpec(jobs[0]!));
    expect(script).toContain('--cluster create');
    expect(script).toContain('--cluster-replicas 1');
    for (const name of ['base', 'dev', 'prod']) expect(render(name).some((o) => o.kind === 'Job')).toBe(false);
  });

  test('prod runs at least three gateways, pins its image and renders no Secret', () => {
    expect(PROD_CHECK(render('prod'))).toEqual([]);
    expect(render('prod').some(isExampleSecret)).toBe(false);
  });

  test('dev runs one gateway and carries the example Secret with every key read', () => {
    expect(DEV_CHECK(render('dev'))).toEqual([]);
    expect(
      render('dev')
        .filter(isExampleSecret)
        .map((o) => o.metadata.name),
    ).toEqual(['openclaw-secrets']);
  });

  test('the base renders no Secret, and dev scales no higher than prod', () => {
    expect(render('base').filter((o) => o.kind === 'Secret')).toEqual([]);
    expect(gatewayHpa(render('dev'))!.spec.maxReplicas).toBeLessThan(gatewayHpa(render('prod'))!.spec.maxReplicas);
  });

  test('the Gateway API route is only in the rendering that asks for it', () => {
    for (const name of ['base', 'dev', 'prod']) expect(render(name).some((o) => o.kind === 'HTTPRoute')).toBe(false);
    expect(render('dev + Gateway API').filter((o) => o.kind === 'HTTPRoute')).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------------------------
// Each check catches what it is for: the dev rendering, broken in memory one way at a time.

type Mutation = [description: string, check: Check, breakIt: (objects: K8sObject[]) => void];
const breaks = (...mutation: Mutation): Mutation => mutation;

function find(objects: K8sObject[], kind: string, name: string): K8sObject & { [key: string]: unknown } {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (found === undefined) throw new Error(`no ${kind} ${name}`);
  return found;
}
const main = (objects: K8sObject[], role: Role) => byRole(objects, role).pod.containers[0]!;
const data = (objects: K8sObject[], name: string) => find(objects, 'ConfigMap', name).data as Record<string, string>;
const spec = <T>(objects: K8sObject[], kind: string, name: string) => find(objects, kind, name).spec as T;
const { schema, probes, grace, security, resources, selectors, autoscalers, edge, network, settings, redis } = CHECKS;

const MUTATIONS: Mutation[] = [
  breaks('a container port that is not a number', schema.run, (o) => {
    main(o, 'gateway').ports![0]!.containerPort = 'http' as never;
  }),
  breaks('an autoscaler without maxReplicas', schema.run, (o) => {
    delete spec<{ maxReplicas?: number }>(o, 'HorizontalPodAutoscaler', 'openclaw-worker').maxReplicas;
  }),
  breaks('a Service port that is not a number', schema.run, (o) => {
    spec<{ ports: { port: unknown }[] }>(o, 'Service', 'redis').ports[0]!.port = '6379';
  }),
  breaks('an object of a kind nothing validates', schema.run, (o) => {
    o.push({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } });
  }),
  breaks('no readiness probe on the gateway', probes.run, (o) => {
    delete main(o, 'gateway').readinessProbe;
  }),
  breaks('no liveness probe on Redis', probes.run, (o) => {
    delete main(o, 'redis').livenessProbe;
  }),
  breaks('a worker probe on a port it does not declare', probes.run, (o) => {
    main(o, 'worker').livenessProbe!.httpGet!.port = 'http';
  }),
  breaks('gateway liveness on /readyz (Redis)', probes.run, (o) => {
    main(o, 'gateway').livenessProbe!.httpGet!.path = '/readyz';
  }),
  breaks('a gateway grace period of 10 s', grace.run, (o) => {
    byRole(o, 'gateway').pod.terminationGracePeriodSeconds = 10;
  }),
  breaks('a gateway drain of 30 s', grace.run, (o) => {
    data(o, 'openclaw-gateway').OPENCLAW_DRAIN_MS = '30000';
  }),
  breaks('a worker drain of 60 s', grace.run, (o) => {
    data(o, 'openclaw-worker').OPENCLAW_WORKER_DRAIN_MS = '60000';
  }),
  breaks('a gateway without preStop', grace.run, (o) => {
    delete main(o, 'gateway').lifecycle;
  }),
  breaks('a writable root filesystem', security.run, (o) => {
    main(o, 'worker').securityContext!.readOnlyRootFilesystem = false;
  }),
  breaks('Redis as root', security.run, (o) => {
    byRole(o, 'redis').pod.securityContext!.runAsUser = 0;
    delete main(o, 'redis').securityContext!.runAsUser;
  }),
  breaks('privilege escalation in Jaeger', security.run, (o) => {
    delete main(o, 'jaeger').securityContext!.allowPrivilegeEscalation;
  }),
  breaks('capabilities kept', security.run, (o) => {
    main(o, 'gateway').securityContext!.capabilities = { drop: ['NET_RAW'] };
  }),
  breaks('service links on', security.run, (o) => {
    delete byRole(o, 'worker').pod.enableServiceLinks;
  }),
  breaks('no memory limit on the gateway', resources.run, (o) => {
    delete main(o, 'gateway').resources!.limits!.memory;
  }),
  breaks('no requests on Jaeger', resources.run, (o) => {
    delete main(o, 'jaeger').resources!.requests;
  }),
  breaks('a request above its limit', resources.run, (o) => {
    main(o, 'worker').resources!.requests!.cpu = '4';
  }),
  breaks('a Service selector with a typo', selectors.run, (o) => {
    spec<{ selector: Labels }>(o, 'Service', 'openclaw-gateway').selector['app.kubernetes.io/component'] = 'gateways';
  }),
  breaks('a Service targetPort that no container has', selectors.run, (o) => {
    spec<{ ports: { targetPort: string }[] }>(o, 'Service', 'openclaw-worker-metrics').ports[0]!.targetPort = 'http';
  }),
  breaks('a PDB selecting gateways and workers', selectors.run, (o) => {
    const selector = spec<{ selector: LabelSelector }>(o, 'PodDisruptionBudget', 'openclaw-gateway').selector;
    delete selector.matchLabels!['app.kubernetes.io/component'];
  }),
  breaks('a PDB that allows no eviction', selectors.run, (o) => {
    spec<{ maxUnavailable: number }>(o, 'PodDisruptionBudget', 'openclaw-worker').maxUnavailable = 0;
  }),
  breaks('a ServiceMonitor on a port the Service lacks', selectors.run, (o) => {
    spec<{ endpoints: { port: string }[] }>(o, 'ServiceMonitor', 'openclaw-worker').endpoints[0]!.port = 'http';
  }),
  breaks('an HPA on a Deployment that does not exist', autoscalers.run, (o) => {
    spec<{ scaleTargetRef: { name: string } }>(o, 'HorizontalPodAutoscaler', 'openclaw-worker').scaleTargetRef.name =
      'worker';
  }),
  breaks('a hasty scale-down', autoscalers.run, (o) => {
    spec<{ behavior: unknown }>(o, 'HorizontalPodAutoscaler', 'openclaw-gateway').behavior = {};
  }),
  breaks('a metric name that the gateway does not export', autoscalers.run, (o) => {
    const hpa = spec<{ metrics: { pods?: { metric: { name: string } } }[] }>(
      o,
      'HorizontalPodAutoscaler',
      'openclaw-gateway',
    );
    hpa.metrics[0]!.pods!.metric.name = 'openclaw_connection_count';
  }),
  breaks("a connection target above the replicas' cap", autoscalers.run, (o) => {
    data(o, 'openclaw-gateway').OPENCLAW_MAX_CONNECTIONS = '1000';
  }),
  breaks('the queue depth of every state', autoscalers.run, (o) => {
    const hpa = spec<{ metrics: { external: { metric: { selector?: unknown } } }[] }>(
      o,
      'HorizontalPodAutoscaler',
      'openclaw-worker',
    );
    delete hpa.metrics[0]!.external.metric.selector;
  }),
  breaks('the default 60 s proxy timeout', edge.run, (o) => {
    const annotations = find(o, 'Ingress', 'openclaw-gateway').metadata.annotations as Labels;
    annotations['nginx.ingress.kubernetes.io/proxy-read-timeout'] = '60';
  }),
  breaks('an Ingress to a port the Service lacks', edge.run, (o) => {
    type Rules = { rules: { http: { paths: { backend: { service: { port: { name: string } } } }[] } }[] };
    spec<Rules>(o, 'Ingress', 'openclaw-gateway').rules[0]!.http.paths[0]!.backend.service.port.name = 'metrics';
  }),
  breaks('no default deny', network.run, (o) => {
    o.splice(o.indexOf(find(o, 'NetworkPolicy', 'default-deny-ingress')), 1);
  }),
  breaks('Redis open to every pod of the namespace', network.run, (o) => {
    spec<NetworkPolicySpec>(o, 'NetworkPolicy', 'redis-from-openclaw').ingress![0]!.from!.push({ podSelector: {} });
  }),
  breaks('Redis open to another namespace', network.run, (o) => {
    spec<NetworkPolicySpec>(o, 'NetworkPolicy', 'redis-from-openclaw').ingress![0]!.from!.push({
      namespaceSelector: {},
    });
  }),
  breaks('Redis closed to the workers', network.run, (o) => {
    spec<NetworkPolicySpec>(o, 'NetworkPolicy', 'redis-from-openclaw').ingress![0]!.from!.pop();
  }),
  breaks('Jaeger open to any source', network.run, (o) => {
    spec<NetworkPolicySpec>(o, 'NetworkPolicy', 'jaeger-from-openclaw').ingress!.push({});
  }),
  breaks('every port of every pod open to any source', network.run, (o) => {
    const policy = spec<NetworkPolicySpec>(o, 'NetworkPolicy', 'gateway-from-anywhere');
    policy.podSelector = {};
    delete policy.ingress![0]!.ports;
  }),
  breaks('the worker port open to any source', network.run, (o) => {
    spec<NetworkPolicySpec>(o, 'NetworkPolicy', 'gateway-from-anywhere').ingress![0]!.ports!.push({ port: 18790 });
    spec<NetworkPolicySpec>(o, 'NetworkPolicy', 'gateway-from-anywhere').podSelector = {};
  }),
  breaks('Prometheus shut out of the workers', network.run, (o) => {
    o.splice(o.indexOf(find(o, 'NetworkPolicy', 'metrics-from-monitoring')), 1);
  }),
  breaks('an undocumented setting', settings.run, (o) => {
    data(o, 'openclaw-common').OPENCLAW_TURBO = 'true';
  }),
  breaks('the gateway on the loopback address', settings.run, (o) => {
    data(o, 'openclaw-gateway').OPENCLAW_HOST = '127.0.0.1';
  }),
  breaks('the worker port apart from its container port', settings.run, (o) => {
    data(o, 'openclaw-worker').OPENCLAW_WORKER_PORT = '9000';
  }),
  breaks('a ConfigMap that does not exist', settings.run, (o) => {
    main(o, 'worker').envFrom![0]!.configMapRef!.name = 'openclaw';
  }),
  breaks('authentication off', settings.run, (o) => {
    data(o, 'openclaw-gateway').OPENCLAW_AUTH = 'none';
  }),
  breaks('one replica id for every gateway', settings.run, (o) => {
    const env = main(o, 'gateway').env!;
    env[env.findIndex((v) => v.name === 'OPENCLAW_REPLICA_ID')] = { name: 'OPENCLAW_REPLICA_ID', value: 'gw' };
  }),
  breaks('Redis without AOF', redis.run, (o) => {
    const args = main(o, 'redis').args!;
    args[args.indexOf('--appendonly') + 1] = 'no';
  }),
  breaks('Redis evicting keys', redis.run, (o) => {
    const args = main(o, 'redis').args!;
    args[args.indexOf('--maxmemory-policy') + 1] = 'allkeys-lru';
  }),
  breaks('Redis maxmemory above its limit', redis.run, (o) => {
    main(o, 'redis').resources!.limits!.memory = '256Mi';
  }),
  breaks('Redis data off its volume claim', redis.run, (o) => {
    spec<{ volumeClaimTemplates: unknown[] }>(o, 'StatefulSet', 'redis').volumeClaimTemplates = [];
  }),
  breaks('two gateways in prod', PROD_CHECK, (o) => {
    (byRole(o, 'gateway').object.spec as { replicas: number }).replicas = 2;
  }),
  breaks('a prod autoscaler down to one gateway', PROD_CHECK, (o) => {
    gatewayHpa(o)!.spec.minReplicas = 1;
  }),
  breaks('a Secret in prod', PROD_CHECK, (o) => {
    o.push(...render('dev').filter(isExampleSecret));
  }),
  breaks('an unpinned image in prod', PROD_CHECK, (o) => {
    main(o, 'gateway').image = 'ghcr.io/openclaw/gateway';
  }),
  breaks('a dev metrics token too short for the gateway', DEV_CHECK, (o) => {
    (o.find(isExampleSecret) as K8sObject & { stringData: Labels }).stringData.OPENCLAW_METRICS_TOKEN = 'short';
  }),
  breaks('a dev Secret missing a key', DEV_CHECK, (o) => {
    delete (o.find(isExampleSecret) as K8sObject & { stringData: Labels }).stringData.OPENCLAW_AUDIT_SECRET;
  }),
];

describe('k8s: the checks catch broken manifests', () => {
  test.each(MUTATIONS)('%s', (_description, check, breakIt) => {
    const target = check === PROD_CHECK ? 'prod' : 'dev';
    expect(check(render(target))).toEqual([]);
    const broken = render(target);
    breakIt(broken);
    expect(check(broken)).not.toEqual([]);
  });
});

describe('k8s: the checks catch a broken Redis Cluster', () => {
  const gatewayPeer = {
    podSelector: { matchLabels: { 'app.kubernetes.io/name': 'openclaw', 'app.kubernetes.io/component': 'gateway' } },
  };
  test.each([
    [
      'the cluster bus open to the gateways',
      (o: K8sObject[]) =>
        spec<NetworkPolicySpec>(o, 'NetworkPolicy', 'redis-from-openclaw').ingress![1]!.from!.push(gatewayPeer),
    ],
    [
      'the nodes open to every pod of the namespace',
      (o: K8sObject[]) =>
        spec<NetworkPolicySpec>(o, 'NetworkPolicy', 'redis-from-openclaw').ingress![0]!.from!.push({ podSelector: {} }),
    ],
    [
      'the nodes closed to each other on the cluster bus',
      (o: K8sObject[]) => void spec<NetworkPolicySpec>(o, 'NetworkPolicy', 'redis-from-openclaw').ingress!.pop(),
    ],
  ] as const)('%s', (_description, breakIt) => {
    expect(network.run(render('prod + Redis Cluster'))).toEqual([]);
    const broken = render('prod + Redis Cluster');
    breakIt(broken);
    expect(network.run(broken)).not.toEqual([]);
  });
});

describe('k8s: the renderer', () => {
  test('merges maps, lists of containers and env by name, and replaces other lists', () => {
    const base: Json = {
      spec: {
        replicas: 2,
        args: ['a', 'b'],
        containers: [
          {
            name: 'one',
            image: 'x',
            env: [
              { name: 'A', value: '1' },
              { name: 'B', value: '2' },
            ],
          },
          { name: 'two', image: 'y' },
        ],
      },
    };
    const patch: Json = {
      spec: {
        args: ['c'],
        containers: [
          {
            name: 'one',
            env: [
              { name: 'B', value: '3' },
              { name: 'C', value: '4' },
            ],
          },
          { name: 'three' },
        ],
        replicas: null,
      },
    };
    expect(strategicMerge(base, patch, '')).toEqual({
      spec: {
        args: ['c'],
        containers: [
          { name: 'three' },
          {
            name: 'one',
            image: 'x',
            env: [
              { name: 'C', value: '4' },
              { name: 'A', value: '1' },
              { name: 'B', value: '3' },
            ],
          },
          { name: 'two', image: 'y' },
        ],
      },
    });
  });

  test('refuses kustomize features it does not implement', () => {
    const dir = mkdtempSync(path.join(scratch, 'generator-'));
    writeFileSync(path.join(dir, 'kustomization.yaml'), 'configMapGenerator:\n  - name: x\n    literals: [a=b]\n');
    expect(() => renderKustomization(dir)).toThrow('`configMapGenerator` is not supported');
  });
});
