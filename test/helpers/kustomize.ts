import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';

/** A Kubernetes object as a manifest holds it: plain JSON data. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [key: string]: unknown };
  [key: string]: unknown;
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonMap = { [key: string]: Json };

/**
 * The fields of a kustomization this renderer understands. Anything else (generators, JSON 6902
 * patches, `commonLabels`, `$patch` directives, ...) makes it throw rather than render something
 * other than what `kubectl kustomize` would.
 */
const KNOWN_FIELDS = new Set([
  'apiVersion',
  'kind',
  'resources',
  'components',
  'namespace',
  'labels',
  'images',
  'replicas',
  'patches',
]);

/** Kinds without a namespace: the namespace transformer leaves them alone (and renames a Namespace). */
const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
  'PersistentVolume',
  'StorageClass',
  'IngressClass',
  'PriorityClass',
  'RuntimeClass',
  'GatewayClass',
  'ValidatingWebhookConfiguration',
  'MutatingWebhookConfiguration',
  'APIService',
]);

/** Kinds whose `spec.replicas` the `replicas` field sets. */
const SCALABLE = new Set(['Deployment', 'StatefulSet', 'ReplicaSet', 'ReplicationController']);

/** File names kustomize looks for in a directory, in its order. */
const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];

/**
 * Renders a kustomization directory the way `kubectl kustomize DIR` does, for the subset of
 * kustomize that `k8s/` uses: `resources` (files and directories, recursively), `components`,
 * `namespace`, `labels` (metadata only: `includeSelectors` and `includeTemplates` off), `images`,
 * `replicas`, and `patches` given as a `path` to a strategic-merge patch with a `target` {kind, name}.
 *
 * Strategic merge: maps merge key by key (`null` deletes a key); lists of objects merge by their
 * Kubernetes merge key (`name` for containers, env, volumes; `containerPort` for container ports,
 * `port` for Service ports, `mountPath` for volume mounts, `topologyKey` for spread constraints);
 * items the base lacks go before the base's own. Any other list is replaced whole.
 *
 * @example
 * ```ts
 * const objects = renderKustomization('k8s/overlays/dev');
 * ```
 */
export function renderKustomization(dir: string): K8sObject[] {
  return build(path.resolve(dir), 'Kustomization');
}

function build(dir: string, expectedKind: 'Kustomization' | 'Component', parent: K8sObject[] = []): K8sObject[] {
  const file = KUSTOMIZATION_FILES.map((name) => path.join(dir, name)).find((candidate) => existsSync(candidate));
  if (file === undefined) throw new Error(`${dir}: no kustomization.yaml`);
  const k = loadYaml(file)[0] as JsonMap | undefined;
  if (k === undefined) throw new Error(`${file}: empty`);
  for (const field of Object.keys(k)) {
    if (!KNOWN_FIELDS.has(field)) throw new Error(`${file}: \`${field}\` is not supported by this renderer`);
  }
  const kind = (k.kind as string | undefined) ?? 'Kustomization';
  if (kind !== expectedKind) throw new Error(`${file}: expected kind ${expectedKind}, got ${kind}`);

  // A component works on what its parent has loaded so far, adding its own resources to it.
  let objects: K8sObject[] = [...parent];
  for (const entry of strings(k.resources, file, 'resources')) {
    const target = path.resolve(dir, entry);
    const loaded = statSync(target).isDirectory() ? build(target, 'Kustomization') : loadObjects(inside(dir, target));
    objects = addAll(objects, loaded, file);
  }
  for (const entry of strings(k.components, file, 'components')) {
    objects = build(path.resolve(dir, entry), 'Component', objects);
  }

  for (const patch of list(k.patches, file, 'patches')) applyPatch(objects, patch, dir, file);
  if (typeof k.namespace === 'string') setNamespace(objects, k.namespace);
  for (const entry of list(k.labels, file, 'labels')) addLabels(objects, entry, file);
  for (const entry of list(k.replicas, file, 'replicas')) setReplicas(objects, entry, file);
  for (const entry of list(k.images, file, 'images')) setImages(objects, entry, file);
  return objects;
}

/**
 * kustomize's load restriction: files (not kustomization directories) must be in or below the
 * kustomization's own directory.
 */
function inside(dir: string, file: string): string {
  const relative = path.relative(dir, file);
  if (relative.startsWith('..') || path.isAbsolute(relative)) throw new Error(`${file} is not in or below ${dir}`);
  return file;
}

/** The objects of a YAML file with one or more documents (empty documents skipped). */
export function loadObjects(file: string): K8sObject[] {
  return loadYaml(file).map((doc, index) => {
    const object = doc as K8sObject;
    if (!isMap(doc) || typeof object.kind !== 'string' || typeof object.metadata?.name !== 'string') {
      throw new Error(`${file}: document ${index + 1} is not a Kubernetes object with a kind and a name`);
    }
    return object;
  });
}

/** Parses every document of a YAML stream into plain data. */
export function parseYamlStream(text: string, origin: string): Json[] {
  const out: Json[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${origin}: ${doc.errors[0]!.message}`);
    const value = doc.toJS() as Json | undefined;
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

function loadYaml(file: string): Json[] {
  return parseYamlStream(readFileSync(file, 'utf8'), file);
}

/** `apiVersion/kind/namespace/name`: what kustomize keeps unique, and what renderings are compared by. */
export function objectId(object: K8sObject): string {
  return `${object.apiVersion}/${object.kind}/${object.metadata.namespace ?? ''}/${object.metadata.name}`;
}

function addAll(objects: K8sObject[], more: K8sObject[], file: string): K8sObject[] {
  const seen = new Set(objects.map(objectId));
  for (const object of more) {
    const id = objectId(object);
    if (seen.has(id)) throw new Error(`${file}: ${id} is defined twice`);
    seen.add(id);
  }
  return [...objects, ...more];
}

function applyPatch(objects: K8sObject[], entry: JsonMap, dir: string, file: string): void {
  const { path: patchPath, target, ...rest } = entry;
  if (typeof patchPath !== 'string' || Object.keys(rest).length > 0) {
    throw new Error(`${file}: only patches with a \`path\` and a \`target\` are supported`);
  }
  if (!isMap(target) || typeof target.kind !== 'string' || typeof target.name !== 'string') {
    throw new Error(`${file}: patch ${patchPath} needs a target with a kind and a name`);
  }
  const docs = loadYaml(inside(dir, path.resolve(dir, patchPath)));
  if (docs.length !== 1 || !isMap(docs[0])) throw new Error(`${patchPath}: expected one strategic-merge patch`);
  const patch = structuredClone(docs[0]);
  // With a target, the patch applies to the target whatever name it gives itself.
  if (isMap(patch.metadata)) delete patch.metadata.name;
  const matches = objects.filter((o) => o.kind === target.kind && o.metadata.name === target.name);
  if (matches.length === 0) throw new Error(`${file}: patch ${patchPath} matches no ${target.kind} ${target.name}`);
  for (const object of matches) {
    const merged = strategicMerge(object as unknown as Json, patch, '') as unknown as K8sObject;
    objects[objects.indexOf(object)] = merged;
  }
}

/** Kubernetes' merge keys of the lists `k8s/` patches, by field name (and, for `ports`, by shape). */
function mergeKey(field: string, items: Json[]): string | undefined {
  switch (field) {
    case 'containers':
    case 'initContainers':
    case 'ephemeralContainers':
    case 'env':
    case 'volumes':
    case 'imagePullSecrets':
      return 'name';
    case 'volumeMounts':
      return 'mountPath';
    case 'topologySpreadConstraints':
      return 'topologyKey';
    case 'ports':
      return items.some((item) => isMap(item) && 'containerPort' in item) ? 'containerPort' : 'port';
    default:
      return undefined;
  }
}

/**
 * Strategic merge of `patch` into `base`, as described on {@link renderKustomization}.
 * @internal exported for the renderer's own tests.
 */
export function strategicMerge(base: Json | undefined, patch: Json, field: string): Json {
  if (isMap(patch)) {
    for (const key of Object.keys(patch)) {
      if (key.startsWith('$')) throw new Error(`strategic-merge directive ${key} is not supported by this renderer`);
    }
    const out: JsonMap = isMap(base) ? { ...base } : {};
    for (const [key, value] of Object.entries(patch)) {
      if (value === null) delete out[key];
      else out[key] = strategicMerge(out[key], value, key);
    }
    return out;
  }
  if (Array.isArray(patch) && Array.isArray(base)) {
    const key = mergeKey(field, [...base, ...patch]);
    const keyed = (items: Json[]) => key !== undefined && items.every((item) => isMap(item) && item[key] !== undefined);
    if (key === undefined || !keyed(base) || !keyed(patch)) return structuredClone(patch);
    const out = base.map((item) => structuredClone(item));
    const added: Json[] = [];
    for (const item of patch as JsonMap[]) {
      const at = out.findIndex((existing) => (existing as JsonMap)[key] === item[key]);
      if (at === -1) added.push(structuredClone(item));
      else out[at] = strategicMerge(out[at], item, '');
    }
    // Items the base does not have come first, in the patch's order, as kustomize places them.
    return [...added, ...out];
  }
  return structuredClone(patch);
}

function setNamespace(objects: K8sObject[], namespace: string): void {
  for (const object of objects) {
    if (object.kind === 'Namespace') object.metadata.name = namespace;
    else if (!CLUSTER_SCOPED.has(object.kind)) object.metadata.namespace = namespace;
  }
}

function addLabels(objects: K8sObject[], entry: JsonMap, file: string): void {
  const { pairs, includeSelectors, includeTemplates, ...rest } = entry;
  if (includeSelectors === true || includeTemplates === true || Object.keys(rest).length > 0 || !isMap(pairs)) {
    throw new Error(`${file}: only \`labels\` with \`pairs\` (no selectors, no templates) are supported`);
  }
  for (const object of objects) {
    object.metadata.labels = { ...object.metadata.labels, ...(pairs as Record<string, string>) };
  }
}

function setReplicas(objects: K8sObject[], entry: JsonMap, file: string): void {
  if (typeof entry.name !== 'string' || typeof entry.count !== 'number') {
    throw new Error(`${file}: each \`replicas\` entry needs a name and a count`);
  }
  for (const object of objects) {
    if (SCALABLE.has(object.kind) && object.metadata.name === entry.name) {
      object.spec = { ...(object.spec as JsonMap), replicas: entry.count };
    }
  }
}

function setImages(objects: K8sObject[], entry: JsonMap, file: string): void {
  const { name, newName, newTag, digest, ...rest } = entry;
  if (typeof name !== 'string' || Object.keys(rest).length > 0) {
    throw new Error(`${file}: each \`images\` entry needs a name (and newName, newTag or digest)`);
  }
  for (const object of objects) {
    for (const container of podContainers(object)) {
      if (typeof container.image !== 'string') continue;
      const image = splitImage(container.image);
      if (image.name !== name) continue;
      let reference = typeof newName === 'string' ? newName : image.name;
      if (typeof digest === 'string') reference += `@${digest}`;
      else if (newTag !== undefined && newTag !== null) reference += `:${String(newTag)}`;
      else reference += image.suffix;
      container.image = reference;
    }
  }
}

/** `registry:5000/a/b:tag@sha256:x` → name `registry:5000/a/b`, suffix `:tag@sha256:x`. */
function splitImage(image: string): { name: string; suffix: string } {
  const at = image.indexOf('@');
  const beforeDigest = at === -1 ? image : image.slice(0, at);
  const colon = beforeDigest.lastIndexOf(':');
  const end = colon > beforeDigest.lastIndexOf('/') ? colon : beforeDigest.length;
  return { name: image.slice(0, end), suffix: image.slice(end) };
}

/** The pod spec of a workload (Deployment, StatefulSet, Job, ...), a CronJob or a Pod. */
export function podSpec(object: K8sObject): JsonMap | undefined {
  const spec = object.spec as JsonMap | undefined;
  if (!isMap(spec)) return undefined;
  if (object.kind === 'Pod') return spec;
  const template = isMap(spec.jobTemplate) ? ((spec.jobTemplate.spec as JsonMap)?.template as Json) : spec.template;
  return isMap(template) && isMap(template.spec) ? template.spec : undefined;
}

function podContainers(object: K8sObject): JsonMap[] {
  const spec = podSpec(object);
  if (spec === undefined) return [];
  return [spec.containers, spec.initContainers].flatMap((items) => (Array.isArray(items) ? items.filter(isMap) : []));
}

function isMap(value: Json | undefined): value is JsonMap {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function list(value: Json | undefined, file: string, field: string): JsonMap[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every(isMap)) throw new Error(`${file}: \`${field}\` must be a list of maps`);
  return value;
}

function strings(value: Json | undefined, file: string, field: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    throw new Error(`${file}: \`${field}\` must be a list of paths`);
  }
  return value as string[];
}

/** Whether `kubectl` can be run here (it is optional: the renderer above works without it). */
export function kubectlAvailable(): boolean {
  const result = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8', timeout: 30_000 });
  return result.error === undefined && result.status === 0;
}

/** `kubectl kustomize DIR`, parsed. Throws with kubectl's message when it fails. */
export function kubectlKustomize(dir: string): K8sObject[] {
  const result = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8', timeout: 60_000 });
  if (result.error !== undefined) throw result.error;
  if (result.status !== 0) throw new Error(`kubectl kustomize ${dir} failed: ${result.stderr.trim()}`);
  return parseYamlStream(result.stdout, `kubectl kustomize ${dir}`) as unknown as K8sObject[];
}
