// The Helm chart, rendered and linted by Helm's own Go library (helm-java, no Helm CLI), with every
// rendered manifest validated against the Kubernetes API schemas. Warm: about 3 s (one JVM start plus
// schema compilation); cold: Maven downloads helm-java and the fabric8 model jars first.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { RULES_FILE, ruleGroupsOf, type RuleGroups } from '../../scripts/prometheus-rules.ts';
import { configSchema } from '../../src/config.ts';
import {
  CHART,
  kubernetesValidator,
  runChartCheck,
  type ChartCheckResult,
  type KubernetesValidator,
} from './support.ts';

type Obj = Record<string, unknown>;
interface Manifest extends Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Obj; annotations?: Record<string, string> };
  spec?: Obj;
  data?: Record<string, string>;
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string } }[];
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  resources?: { requests?: Obj; limits?: Obj };
  securityContext?: Obj;
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  containers: Container[];
  securityContext?: Obj;
  terminationGracePeriodSeconds?: number;
  serviceAccountName?: string;
  volumes?: { name: string; secret?: { secretName: string }; emptyDir?: Obj }[];
}

const fixture = (name: string) => join(import.meta.dirname, 'fixtures', name);
const VALID = {
  defaults: '-',
  production: join(CHART, 'ci', 'production-values.yaml'),
  saslPlain: fixture('sasl-plain-values.yaml'),
  monitoring: fixture('monitoring-values.yaml'),
  queries: fixture('queries-values.yaml'),
};
// Each invalid case changes one thing on top of the chart's defaults; the expected words of Helm's refusal.
const INVALID: Record<string, { file: string; message: RegExp }> = {
  badMechanism: { file: 'invalid-sasl-mechanism.yaml', message: /at '\/kafka\/sasl\/mechanism'/ },
  unknownKey: { file: 'invalid-unknown-key.yaml', message: /additional properties 'replicas' not allowed/ },
  badBrokers: { file: 'invalid-brokers.yaml', message: /at '\/kafka\/brokers'/ },
  runsAsRoot: { file: 'invalid-root.yaml', message: /at '\/podSecurityContext\/runAsNonRoot'/ },
  badMemory: { file: 'invalid-memory.yaml', message: /at '\/resources\/limits\/memory'/ },
  gracePeriod: {
    file: 'invalid-grace-period.yaml',
    message: /terminationGracePeriodSeconds \(20\) must be above/,
  },
  migrationSecret: {
    file: 'invalid-migration-secret.yaml',
    message: /migration\.existingSecret is required/,
  },
  tlsPair: { file: 'invalid-tls-pair.yaml', message: /certKey and kafka\.tls\.keyKey go together/ },
  unknownLane: { file: 'invalid-lanes.yaml', message: /at '\/worker\/lanes\/1'/ },
  alertDuration: {
    file: 'invalid-alert-duration.yaml',
    message: /at '\/metrics\/prometheusRule\/notReady\/for'/,
  },
};
const SCHEMA_CASES = [
  'badMechanism',
  'unknownKey',
  'badBrokers',
  'runsAsRoot',
  'badMemory',
  'alertDuration',
  'unknownLane',
];

// The variables the worker reads (src/config.ts), the Kafka TLS file settings being added beside them, and
// the standard OpenTelemetry ones.
const KAFKA_TLS_FILES = [
  'KAFKA_SSL_CA_FILE',
  'KAFKA_SSL_CERT_FILE',
  'KAFKA_SSL_KEY_FILE',
  'KAFKA_SSL_REJECT_UNAUTHORIZED',
];
const isWorkerVariable = (name: string) =>
  name in configSchema.shape ||
  KAFKA_TLS_FILES.includes(name) ||
  name.startsWith('OTEL_') ||
  name === 'NODE_OPTIONS';

let check: ChartCheckResult;
let k8s: KubernetesValidator;
const manifests = new Map<string, Manifest[]>();

const docs = (name: string) => manifests.get(name) ?? [];
const find = (name: string, kind: string, suffix = '') => {
  const found = docs(name).find((m) => m.kind === kind && m.metadata.name.endsWith(suffix));
  if (!found) throw new Error(`${name}: no ${kind}${suffix ? ` named *${suffix}` : ''} rendered`);
  return found;
};
/** The ConfigMap of settings (not the dashboard's). */
const settings = (name: string) => {
  const found = docs(name).find((m) => m.kind === 'ConfigMap' && !m.metadata.name.endsWith('-dashboard'));
  if (!found) throw new Error(`${name}: no settings ConfigMap rendered`);
  return found;
};
const podSpec = (m: Manifest) => (m.spec as { template: { spec: PodSpec } }).template.spec;
const env = (c: Container) => new Map((c.env ?? []).map((e) => [e.name, e]));

beforeAll(() => {
  const cases: Record<string, string> = { ...VALID };
  for (const [name, { file }] of Object.entries(INVALID)) cases[name] = fixture(file);
  check = runChartCheck(cases);
  k8s = kubernetesValidator(check.schemas);
  for (const [name, text] of check.rendered) {
    manifests.set(
      name,
      parseAllDocuments(text)
        .map((d) => d.toJS() as Manifest | null)
        .filter((m): m is Manifest => m !== null),
    );
  }
}, 600_000);

describe('helm lint and rendering', () => {
  it('helm lint --strict passes with no errors or warnings', () => {
    expect(check.lint.failed).toBe(false);
    expect(check.lint.messages.filter((m) => /\[(ERROR|WARNING)\]/.test(m))).toEqual([]);
  });

  it('renders the defaults, a production-like values file and a SASL/PLAIN variant', () => {
    for (const name of Object.keys(VALID)) expect(check.rejected.get(name)).toBeUndefined();
    expect(
      docs('defaults')
        .map((m) => m.kind)
        .sort(),
    ).toEqual(['ConfigMap', 'Deployment', 'Job', 'PodDisruptionBudget', 'Service', 'ServiceAccount'].sort());
    expect(
      docs('production')
        .map((m) => m.kind)
        .sort(),
    ).toEqual(
      [
        'ConfigMap',
        'ConfigMap',
        'Deployment',
        'Job',
        'Job',
        'PodDisruptionBudget',
        'PrometheusRule',
        'ScaledObject',
        'Service',
        'ServiceAccount',
        'ServiceMonitor',
        'TriggerAuthentication',
      ].sort(),
    );
  });

  it('every rendered manifest validates against the Kubernetes API schemas (KEDA checked below)', () => {
    let validated = 0;
    for (const [name, list] of manifests) {
      for (const m of list) {
        const errors = k8s.validate(m);
        if (m.apiVersion === 'keda.sh/v1alpha1') {
          expect(errors).toBeNull(); // no schema for KEDA's CRDs here; see the KEDA test
          continue;
        }
        expect(errors, `${name} ${m.kind} ${m.metadata.name}`).toEqual([]);
        validated++;
      }
    }
    expect(validated).toBe(33);
    expect(k8s.known.has('monitoring.coreos.com/v1/PrometheusRule')).toBe(true);
  });

  it('the Kubernetes schemas catch a misspelt field, a wrong type and a bad quantity', () => {
    const deployment = structuredClone(find('production', 'Deployment'));
    expect(k8s.validate(deployment)).toEqual([]);
    const pod = podSpec(deployment) as unknown as Obj & { containers: Obj[] };
    pod.terminationGracePeriodSecond = 30;
    (deployment.spec as Obj).replicas = 'two';
    (pod.containers[0] as { resources: { limits: Obj } }).resources.limits.cpu = { amount: 2 };
    const errors = k8s.validate(deployment)!.join('\n');
    expect(errors).toMatch(/terminationGracePeriodSecond/);
    expect(errors).toMatch(/\/spec\/replicas must be integer/);
    expect(errors).toMatch(/\/resources\/limits\/cpu must be string,number/);
  });
});

describe('the worker Deployment', () => {
  it('probes /healthz and /readyz, has requests and limits, and runs non-root on a read-only root', () => {
    const deployment = find('defaults', 'Deployment');
    const pod = podSpec(deployment);
    const [worker] = pod.containers;
    expect(worker!.args).toEqual(['worker']);
    expect(worker!.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(worker!.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(Object.keys(worker!.resources?.requests ?? {}).sort()).toEqual(['cpu', 'memory']);
    expect(Object.keys(worker!.resources?.limits ?? {}).sort()).toEqual(['cpu', 'memory']);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
    expect(worker!.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    // The only writable path is an emptyDir at /tmp.
    expect(worker!.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
    expect(deployment.spec?.replicas).toBe(2);
    // A rolling update: one new replica at a time, serving for minReadySeconds before the next old one stops.
    expect(deployment.spec?.strategy).toEqual({
      type: 'RollingUpdate',
      rollingUpdate: { maxSurge: 1, maxUnavailable: 0 },
    });
    expect(deployment.spec?.minReadySeconds).toBe(5);
  });

  it('terminationGracePeriodSeconds is above the worker shutdown bound in every rendering', () => {
    for (const name of Object.keys(VALID)) {
      const deployment = find(name, 'Deployment');
      const config = settings(name);
      const boundSeconds = Number(config.data?.WORKER_SHUTDOWN_TIMEOUT_MS) / 1000;
      expect(podSpec(deployment).terminationGracePeriodSeconds, name).toBeGreaterThan(boundSeconds);
    }
    expect(podSpec(find('production', 'Deployment')).terminationGracePeriodSeconds).toBe(45);
  });

  it('runs every lane by default, and the lanes worker.lanes names', () => {
    expect(settings('defaults').data?.WORKER_LANES).toBe('writes,reads,analytics');
    expect(settings('queries').data?.WORKER_LANES).toBe('reads,analytics');
    expect(configSchema.shape.WORKER_LANES.parse(settings('queries').data?.WORKER_LANES)).toEqual([
      'reads',
      'analytics',
    ]);
  });

  it('settings come from the ConfigMap under the worker variable names; secrets only by reference', () => {
    for (const name of Object.keys(VALID)) {
      expect(
        docs(name).some((m) => m.kind === 'Secret'),
        name,
      ).toBe(false);
      const config = settings(name);
      const unknown = Object.keys(config.data ?? {}).filter((k) => !isWorkerVariable(k));
      expect(unknown, name).toEqual([]);
      const deployment = find(name, 'Deployment');
      const [worker] = podSpec(deployment).containers;
      expect(worker!.envFrom).toEqual([{ configMapRef: { name: config.metadata.name } }]);
      for (const e of worker!.env ?? []) {
        expect(isWorkerVariable(e.name), e.name).toBe(true);
        expect(e.value, `${name} ${e.name} must come from a Secret`).toBeUndefined();
      }
      // A config change rolls the pods.
      const annotations = (deployment.spec as { template: { metadata: { annotations: Obj } } }).template
        .metadata.annotations;
      expect(annotations['checksum/config']).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  it('wires Kafka SCRAM and mutual TLS, and PostgreSQL TLS, from existing Secrets', () => {
    const config = settings('production').data!;
    expect(config).toMatchObject({
      KAFKA_BROKERS: 'kafka-0.kafka.data:9093,kafka-1.kafka.data:9093,kafka-2.kafka.data:9093',
      TOPIC_PREFIX: 'prod.',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SSL: 'true',
      KAFKA_SSL_REJECT_UNAUTHORIZED: 'true',
      KAFKA_SSL_CA_FILE: '/etc/pattern-worker/kafka-tls/ca.crt',
      KAFKA_SSL_CERT_FILE: '/etc/pattern-worker/kafka-tls/tls.crt',
      KAFKA_SSL_KEY_FILE: '/etc/pattern-worker/kafka-tls/tls.key',
      WORKER_MAX_MESSAGE_BYTES: '1048576',
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector.observability:4318',
    });
    const pod = podSpec(find('production', 'Deployment'));
    const vars = env(pod.containers[0]!);
    expect(vars.get('DATABASE_URL')?.valueFrom?.secretKeyRef).toEqual({
      name: 'pattern-worker-db-worker',
      key: 'url',
    });
    expect(vars.get('KAFKA_SASL_USERNAME')?.valueFrom?.secretKeyRef).toEqual({
      name: 'pattern-worker-kafka-user',
      key: 'username',
    });
    expect(vars.get('KAFKA_SASL_PASSWORD')?.valueFrom?.secretKeyRef?.name).toBe('pattern-worker-kafka-user');
    const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v.secret?.secretName]));
    expect(volumes.get('kafka-tls')).toBe('pattern-worker-kafka-tls');
    expect(volumes.get('postgres-tls')).toBe('pattern-worker-db-ca');
    const mounts = new Map((pod.containers[0]!.volumeMounts ?? []).map((m) => [m.name, m.mountPath]));
    expect(mounts.get('kafka-tls')).toBe('/etc/pattern-worker/kafka-tls');
    expect(mounts.get('postgres-tls')).toBe('/etc/pattern-worker/postgres-tls');

    // Defaults: no SASL, no TLS material, no OTLP export.
    const defaults = settings('defaults').data!;
    expect(defaults.KAFKA_SSL).toBe('false');
    expect(defaults.KAFKA_SASL_MECHANISM).toBeUndefined();
    expect(defaults.KAFKA_SSL_CA_FILE).toBeUndefined();
    expect(defaults.OTEL_TRACES_EXPORTER).toBe('none');
    // TLS with the system CAs: no file settings, no volume.
    const plain = settings('saslPlain').data!;
    expect(plain).toMatchObject({ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SSL: 'true' });
    expect(plain.KAFKA_SSL_CA_FILE).toBeUndefined();
    expect(podSpec(find('saslPlain', 'Deployment')).serviceAccountName).toBe('workers');
  });

  it('a Service for the HTTP port, a PodDisruptionBudget, and a ServiceMonitor for /metrics', () => {
    const service = find('production', 'Service');
    expect(service.spec).toMatchObject({ ports: [{ name: 'http', port: 8080, targetPort: 'http' }] });
    const pdb = find('production', 'PodDisruptionBudget');
    expect(pdb.spec).toMatchObject({ maxUnavailable: 1 });
    const labels = (find('production', 'Deployment').spec as { selector: { matchLabels: Obj } }).selector
      .matchLabels;
    expect((pdb.spec as { selector: { matchLabels: Obj } }).selector.matchLabels).toEqual(labels);
    const monitor = find('production', 'ServiceMonitor');
    expect(monitor.spec).toMatchObject({ endpoints: [{ port: 'http', path: '/metrics', interval: '15s' }] });
    expect(monitor.metadata.labels).toMatchObject({ release: 'prometheus' });
    expect(docs('defaults').some((m) => m.kind === 'ServiceMonitor')).toBe(false);
  });
});

describe('alerts and the Grafana dashboard', () => {
  type Rule = { alert: string; expr: string; for: string; labels: Record<string, string> };
  const rules = (name: string) =>
    ruleGroupsOf(check.rendered.get(name) ?? '').groups.flatMap((g) => g.rules as unknown as Rule[]);

  it('are off by default', () => {
    expect(docs('defaults').some((m) => m.kind === 'PrometheusRule')).toBe(false);
    expect(docs('defaults').filter((m) => m.kind === 'ConfigMap')).toHaveLength(1);
  });

  it('with the default thresholds, the PrometheusRule has the rules of deploy/prometheus', () => {
    const plain = parse(readFileSync(RULES_FILE, 'utf8')) as RuleGroups;
    expect(
      ruleGroupsOf(check.rendered.get('monitoring') ?? ''),
      `${RULES_FILE} is stale: run node scripts/prometheus-rules.ts`,
    ).toEqual(plain);
    expect(rules('monitoring').map((r) => r.alert)).toEqual([
      'PatternWorkerConsumerLagGrowing',
      'PatternWorkerDeadLetters',
      'PatternWorkerRetries',
      'PatternWorkerNotReady',
      'PatternWorkerNotConsuming',
      'PatternWorkerPartitionHeld',
      'PatternWorkerMessagesSkipped',
    ]);
  });

  it('takes thresholds, rule labels and alert labels from values', () => {
    const rule = find('production', 'PrometheusRule');
    expect(rule.metadata.labels).toMatchObject({
      release: 'prometheus',
      'app.kubernetes.io/name': 'pattern-worker',
    });
    const byName = new Map(rules('production').map((r) => [r.alert, r]));
    expect(byName.get('PatternWorkerConsumerLagGrowing')?.expr).toMatch(/\)\s+> 5000\s/);
    expect(byName.get('PatternWorkerDeadLetters')?.expr).toMatch(/\* 60\s+> 5\s*$/);
    expect(byName.get('PatternWorkerDeadLetters')?.for).toBe('2m');
    for (const r of byName.values()) {
      expect(r.labels.team, r.alert).toBe('patterns');
      expect(['warning', 'critical']).toContain(r.labels.severity);
    }
  });

  it('ships the dashboard JSON in a ConfigMap with the sidecar label, where the values say', () => {
    const dashboard = find('production', 'ConfigMap', '-dashboard');
    expect(dashboard.metadata.labels).toMatchObject({ grafana_dashboard: '1' });
    expect(dashboard.metadata.annotations).toEqual({ grafana_folder: 'Streaming' });
    expect((dashboard.metadata as { namespace?: string }).namespace).toBe('monitoring');
    const json = readFileSync(join(CHART, 'dashboards', 'pattern-worker.json'), 'utf8');
    expect(JSON.parse(dashboard.data?.['pattern-worker.json'] ?? '')).toEqual(JSON.parse(json));
    const namespace = (find('monitoring', 'ConfigMap', '-dashboard').metadata as { namespace?: string })
      .namespace;
    expect(namespace).toBe('patterns');
  });
});

describe('hook Jobs', () => {
  // helm-java returns no hook resources, so the checker renders a copy whose hook annotations are renamed.
  const HOOK = 'rendered-hook.invalid/hook';

  it('migrations run before install and upgrade under their own secret, with no Kafka credentials', () => {
    const job = find('production', 'Job', '-migrate');
    expect(job.metadata.annotations?.[HOOK]).toBe('pre-install,pre-upgrade');
    expect(job.metadata.annotations?.[`${HOOK}-delete-policy`]).toBe('before-hook-creation,hook-succeeded');
    const pod = podSpec(job);
    const [migrate] = pod.containers;
    expect(migrate!.args).toEqual(['migrate']);
    const vars = env(migrate!);
    expect(vars.get('DATABASE_URL')?.valueFrom?.secretKeyRef).toEqual({
      name: 'pattern-worker-db-owner',
      key: 'url',
    });
    expect(vars.has('KAFKA_SASL_PASSWORD')).toBe(false);
    expect(migrate!.securityContext).toMatchObject({ readOnlyRootFilesystem: true });
    // Hooks run before the chart's ConfigMap exists, so nothing may refer to it.
    expect(migrate!.envFrom).toBeUndefined();
    for (const e of migrate!.env ?? []) expect(isWorkerVariable(e.name), e.name).toBe(true);
    // The worker's own secret differs: the worker role has no DDL rights.
    const worker = env(podSpec(find('production', 'Deployment')).containers[0]!);
    expect(worker.get('DATABASE_URL')?.valueFrom?.secretKeyRef?.name).not.toBe('pattern-worker-db-owner');
  });

  it('topics are created after the migration, with the Kafka credentials but no database URL', () => {
    const migrate = find('production', 'Job', '-migrate');
    const topics = find('production', 'Job', '-topics');
    expect(Number(topics.metadata.annotations?.[`${HOOK}-weight`])).toBeGreaterThan(
      Number(migrate.metadata.annotations?.[`${HOOK}-weight`]),
    );
    const [container] = podSpec(topics).containers;
    expect(container!.args).toEqual([
      'topics',
      'create',
      '--partitions=12',
      '--result-partitions=12',
      '--replication-factor=3',
    ]);
    const vars = env(container!);
    expect(vars.has('DATABASE_URL')).toBe(false);
    expect(vars.get('KAFKA_SASL_PASSWORD')?.valueFrom?.secretKeyRef?.name).toBe('pattern-worker-kafka-user');
    expect(
      docs('defaults')
        .filter((m) => m.kind === 'Job')
        .map((m) => m.metadata.name),
    ).toEqual(['pw-pattern-worker-migrate']);
    expect(docs('saslPlain').some((m) => m.kind === 'Job')).toBe(false);
  });
});

describe('KEDA autoscaling on consumer lag', () => {
  it('one Kafka trigger per request topic, never more replicas than partitions, credentials by reference', () => {
    const scaled = find('production', 'ScaledObject');
    const deployment = find('production', 'Deployment');
    const spec = scaled.spec as {
      scaleTargetRef: { name: string };
      minReplicaCount: number;
      maxReplicaCount: number;
      triggers: { type: string; metadata: Record<string, string>; authenticationRef?: { name: string } }[];
    };
    expect(spec.scaleTargetRef.name).toBe(deployment.metadata.name);
    expect(spec).toMatchObject({ minReplicaCount: 2, maxReplicaCount: 12 });
    // KEDA owns the replica count.
    expect(deployment.spec?.replicas).toBeUndefined();
    expect(spec.triggers.map((t) => t.metadata.topic)).toEqual([
      'prod.pattern.insert',
      'prod.pattern.search.request',
      'prod.pattern.usage',
      'prod.pattern.analytics.compute',
    ]);
    // Each topic's lag is its lane's group's.
    expect(spec.triggers.map((t) => t.metadata.consumerGroup)).toEqual([
      'pattern-worker.writes',
      'pattern-worker.reads',
      'pattern-worker.writes',
      'pattern-worker.analytics',
    ]);
    for (const t of spec.triggers) {
      expect(t.type).toBe('kafka');
      expect(t.metadata).toMatchObject({
        lagThreshold: '200',
        allowIdleConsumers: 'false',
        sasl: 'scram_sha512',
        tls: 'enable',
      });
      expect(t.authenticationRef?.name).toBe(scaled.metadata.name);
      expect(Object.values(t.metadata).every((v) => typeof v === 'string')).toBe(true);
    }
    const auth = find('production', 'TriggerAuthentication').spec as {
      secretTargetRef: { parameter: string; name: string; key: string }[];
    };
    expect(auth.secretTargetRef.map((r) => `${r.parameter}=${r.name}/${r.key}`)).toEqual([
      'username=pattern-worker-kafka-user/username',
      'password=pattern-worker-kafka-user/password',
      'ca=pattern-worker-kafka-tls/ca.crt',
      'cert=pattern-worker-kafka-tls/tls.crt',
      'key=pattern-worker-kafka-tls/tls.key',
    ]);
    // A release that runs only the reads and analytics lanes scales on the lag of their topics alone.
    const queries = find('queries', 'ScaledObject').spec as typeof spec;
    expect(queries.triggers.map((t) => [t.metadata.topic, t.metadata.consumerGroup])).toEqual([
      ['pattern.search.request', 'pattern-worker.reads'],
      ['pattern.analytics.compute', 'pattern-worker.analytics'],
    ]);
    const plain = find('saslPlain', 'ScaledObject').spec as typeof spec;
    expect(plain.triggers[0]!.metadata).toMatchObject({
      sasl: 'plaintext',
      tls: 'enable',
      topic: 'pattern.insert',
    });
  });
});

describe('invalid values fail at install time', () => {
  it.each(Object.keys(INVALID))('%s is refused', (name) => {
    expect(check.rendered.has(name), `${name} rendered`).toBe(false);
    const message = check.rejected.get(name) ?? '';
    expect(message).toMatch(INVALID[name]!.message);
    if (SCHEMA_CASES.includes(name))
      expect(message).toMatch(/values don't meet the specifications of the schema/);
  });
});
