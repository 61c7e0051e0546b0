// The deployment files users run (Dockerfile, docker-compose, Helm chart) cannot be run here: no
// Docker engine, no Kubernetes. These tests check what can be checked without them: the structure
// each file must have, that every TALLY_* variable is a setting Tally knows and its value parses,
// that the image holds every module `tally` imports, and that the chart's templates only use values
// that exist. With a `helm` binary on the PATH the chart is also rendered for real.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig, settings } from '../../src/config/config.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const read = (path: string): string => readFileSync(join(root, path), 'utf8');
const knownSettings = new Set(settings.map((setting) => setting.env));
const tallyRoles = ['migrate', 'collector', 'processor', 'query'] as const;

type Yaml = Record<string, any>;

/** The commands `tally` offers, as its help text lists them in src/cli/main.ts. */
function cliCommands(): Set<string> {
  const source = read('src/cli/main.ts');
  const commandsBlock = /Commands:\n([\s\S]*?)\n\n/.exec(source);
  assert.ok(commandsBlock, 'the help text of src/cli/main.ts has a Commands: block');
  return new Set([...commandsBlock[1]!.matchAll(/^ {2}([a-z]+)\b/gm)].map((match) => match[1]!));
}

/** A compose value with `${NAME:?…}` / `${NAME:-default}` interpolated the way compose would. */
function interpolate(value: string, env: Readonly<Record<string, string>>): string {
  return value.replace(/\$\{(\w+)(?::[-?]([^}]*))?\}/g, (_all, name: string, fallback: string | undefined) => env[name] ?? fallback ?? '');
}

describe('deploy/docker-compose.yml', () => {
  const compose = parse(read('deploy/docker-compose.yml'), { merge: true }) as Yaml;
  const services = compose.services as Record<string, Yaml>;

  test('runs the three engines from their official images, each with a healthcheck', () => {
    assert.equal(services.kafka?.image, 'apache/kafka:4.1.0');
    assert.equal(services.cassandra?.image, 'cassandra:5.0');
    assert.equal(services.redis?.image, 'redis:7-alpine');
    for (const engine of ['kafka', 'cassandra', 'redis']) {
      const check = services[engine]!.healthcheck as Yaml | undefined;
      assert.ok(Array.isArray(check?.test) && check.test.length >= 2, `${engine} has a healthcheck command`);
      assert.notEqual(check!.test[0], 'NONE', `${engine}'s healthcheck is not disabled`);
    }
    const kafka = services.kafka!.environment as Yaml;
    assert.equal(kafka.KAFKA_PROCESS_ROLES, 'broker,controller', 'a single KRaft node is broker and controller');
    assert.equal(kafka.KAFKA_AUTO_CREATE_TOPICS_ENABLE, 'false', 'topics come from tally migrate only');
  });

  test('each Tally service runs one role of the image; the roles wait for migrate', () => {
    const commands = cliCommands();
    for (const role of tallyRoles) {
      const service = services[role];
      assert.ok(service, `a ${role} service`);
      assert.deepEqual(service.command, [role], `${role} runs \`tally ${role}\``);
      assert.ok(commands.has(role), `\`tally ${role}\` is a command of src/cli/main.ts`);
      assert.equal(service.build?.dockerfile, 'Dockerfile');
      assert.equal(resolve(root, 'deploy', service.build.context), root, 'built from the repository root');
    }
    assert.equal(services.migrate!.restart, 'no', 'migrate runs once');
    assert.deepEqual(services.migrate!.depends_on, {
      kafka: { condition: 'service_healthy' },
      cassandra: { condition: 'service_healthy' },
    });
    for (const role of ['collector', 'processor', 'query']) {
      assert.deepEqual(services[role]!.depends_on.migrate, { condition: 'service_completed_successfully' }, `${role} waits for migrate`);
    }
    assert.deepEqual(services.collector!.ports, ['8080:8080']);
    assert.deepEqual(services.query!.ports, ['8081:8080']);
    assert.equal(services.processor!.deploy?.replicas, 2);
  });

  test('every TALLY_* variable is a known setting, and the whole environment loads', () => {
    const adminToken = 'compose-test-token-of-enough-length';
    for (const role of tallyRoles) {
      const raw = services[role]!.environment as Record<string, string | number>;
      const env = Object.fromEntries(Object.entries(raw).map(([name, value]) => [name, interpolate(String(value), { TALLY_ADMIN_TOKEN: adminToken })]));
      for (const name of Object.keys(env)) assert.ok(knownSettings.has(name), `${role}: ${name} is a setting of src/config/config.ts`);
      const config = loadConfig(env);
      assert.deepEqual(config.kafkaBrokers, ['kafka:9092']);
      assert.deepEqual(config.cassandraContactPoints, ['cassandra:9042']);
      assert.equal(config.redisUrl, 'redis://redis:6379');
      assert.equal(config.adminToken, adminToken);
      // One Kafka broker and one Cassandra node: anything above 1 could never be satisfied.
      assert.equal(config.kafkaReplicationFactor, 1);
      assert.equal(config.kafkaMinInsyncReplicas, 1);
      assert.deepEqual(config.cassandraReplication, { '': 1 });
      assert.ok(services.processor!.deploy.replicas <= config.eventsPartitions, 'no more processors than partitions');
    }
  });

  test('the engines are configured to match what Tally is told', () => {
    const tally = services.collector!.environment as Yaml;
    const kafka = services.kafka!.environment as Yaml;
    assert.equal(kafka.KAFKA_ADVERTISED_LISTENERS, `PLAINTEXT://${tally.TALLY_KAFKA_BROKERS}`);
    assert.equal((services.cassandra!.environment as Yaml).CASSANDRA_DC, tally.TALLY_CASSANDRA_DC);
    assert.ok(services.redis!.command.includes('allkeys-lru'), 'Redis evicts like a cache');
  });

  test('the admin token comes from the environment and is required', () => {
    const raw = (services.collector!.environment as Yaml).TALLY_ADMIN_TOKEN as string;
    assert.match(raw, /^\$\{TALLY_ADMIN_TOKEN:\?/);
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const stages: { from: string; name: string | null; lines: string[] }[] = [];
  for (const line of instructions) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) stages.push({ from: from[1]!, name: from[2] ?? null, lines: [] });
    else stages.at(-1)?.lines.push(line);
  }
  const nodeImage = /^ARG NODE_IMAGE=(\S+)/m.exec(dockerfile)?.[1];
  const runtime = stages.at(-1)!;

  test('is multi-stage: production dependencies installed in one stage, copied into a Node 24 runtime', () => {
    assert.ok(stages.length >= 2, 'at least two stages');
    const deps = stages.find((stage) => stage.lines.some((line) => /^RUN .*npm ci --omit=dev/.test(line)));
    assert.ok(deps?.name, 'a named stage runs npm ci --omit=dev');
    assert.ok(runtime.lines.some((line) => line.startsWith(`COPY --from=${deps.name} /app/node_modules`)), 'the runtime copies its node_modules');
    assert.ok(!runtime.lines.some((line) => /npm (ci|install)/.test(line)), 'the runtime installs nothing itself');
    const runtimeImage = runtime.from === '${NODE_IMAGE}' ? nodeImage : runtime.from;
    assert.match(runtimeImage ?? '', /^node:24-(slim|alpine)$/);
  });

  test('runs as a non-root user, in production mode, listening on all interfaces', () => {
    const users = runtime.lines.filter((line) => line.startsWith('USER '));
    assert.equal(users.length, 1);
    assert.doesNotMatch(users[0]!, /^USER (root|0)(:|$)/);
    const env = runtime.lines.filter((line) => line.startsWith('ENV ')).join(' ');
    assert.match(env, /NODE_ENV=production/);
    assert.match(env, /TALLY_HOST=0\.0\.0\.0/);
    assert.ok(runtime.lines.includes('EXPOSE 8080'));
  });

  test('the entrypoint is the tally CLI, the default command `start`, the healthcheck Node’s own fetch', () => {
    assert.ok(runtime.lines.includes('ENTRYPOINT ["node", "src/cli/main.ts"]'));
    assert.ok(runtime.lines.includes('CMD ["start"]'));
    const healthcheck = runtime.lines.find((line) => line.startsWith('HEALTHCHECK '));
    assert.ok(healthcheck, 'a HEALTHCHECK');
    assert.match(healthcheck, /CMD \["node", "-e", ".*fetch\(.*\/healthz/);
    assert.doesNotMatch(healthcheck, /curl|wget/, 'slim images have neither');
  });

  test('the image holds every module `node src/cli/main.ts` loads, and npm ci --omit=dev provides every package', () => {
    const copied = runtime.lines.flatMap((line) => {
      const copy = /^COPY (?!--from)(.+)$/.exec(line);
      if (!copy) return [];
      const paths = copy[1]!.split(/\s+/);
      return paths.slice(0, -1);
    });
    assert.ok(copied.includes('package.json'), 'package.json ("type": "module") is copied');
    const { dependencies } = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
    const { files, packages } = moduleGraph(join(root, 'src/cli/main.ts'));
    assert.ok(files.size > 20, `the graph was walked (${files.size} files)`);
    for (const file of files) {
      const path = relative(root, file);
      assert.ok(copied.some((source) => path === source || path.startsWith(`${source.replace(/\/$/, '')}/`)), `${path} is copied into the image`);
    }
    for (const name of packages) assert.ok(name in dependencies, `${name} is a production dependency (npm ci --omit=dev)`);
  });

  test('.dockerignore lets in what the image copies', () => {
    const ignore = read('.dockerignore').split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));
    if (ignore.includes('*')) {
      for (const needed of ['package.json', 'package-lock.json', 'src']) assert.ok(ignore.includes(`!${needed}`), `.dockerignore re-includes ${needed}`);
    }
    assert.ok(!ignore.some((pattern) => /^(src|package(-lock)?\.json)\/?$/.test(pattern)), 'nothing the build needs is ignored');
  });
});

/** Local files and packages reachable from an entry point through runtime imports (type-only ones are erased). */
function moduleGraph(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const pending = [entry];
  const specifiers = [
    /^\s*import\s+(?!type\s)(?:[^'"]*?\sfrom\s+)?['"]([^'"]+)['"]/gm,
    /^\s*export\s+(?!type\s)[^'"]*?\sfrom\s+['"]([^'"]+)['"]/gm,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
    /new URL\(\s*['"](\.[^'"]+)['"]\s*,\s*import\.meta\.url\s*\)/g,
  ];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    const source = readFileSync(file, 'utf8');
    for (const pattern of specifiers) {
      for (const match of source.matchAll(pattern)) {
        const specifier = match[1]!;
        if (specifier.startsWith('node:')) continue;
        if (specifier.startsWith('.')) {
          const target = resolve(dirname(file), specifier);
          assert.ok(existsSync(target), `${relative(root, file)} imports ${specifier}, which exists`);
          pending.push(target);
        } else {
          const parts = specifier.split('/');
          packages.add(specifier.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!);
        }
      }
    }
  }
  return { files, packages };
}

describe('deploy/helm/tally', () => {
  const chartDir = 'deploy/helm/tally';
  const chart = parse(read(`${chartDir}/Chart.yaml`)) as Yaml;
  const values = parse(read(`${chartDir}/values.yaml`)) as Yaml;
  const templateNames = readdirSync(join(root, chartDir, 'templates'));
  const templates = new Map(templateNames.map((name) => [name, read(`${chartDir}/templates/${name}`)]));
  const allTemplates = [...templates.values()].join('\n');

  test('Chart.yaml is a v2 application chart named tally', () => {
    assert.equal(chart.apiVersion, 'v2');
    assert.equal(chart.name, 'tally');
    assert.equal(chart.type, 'application');
    assert.match(String(chart.version), /^\d+\.\d+\.\d+$/);
    assert.equal(String(chart.appVersion), (JSON.parse(read('package.json')) as { version: string }).version, 'appVersion is the package version');
  });

  test('values.yaml defaults are production’s: replicated engines, hardened pods, a drain window', () => {
    assert.equal(values.kafka.replicationFactor, 3);
    assert.equal(values.kafka.minInsyncReplicas, 2);
    assert.equal(String(values.cassandra.replication), '3');
    assert.equal(values.cassandra.consistency, 'LOCAL_QUORUM');
    assert.ok(values.processor.replicas <= values.kafka.eventsPartitions, 'the default processors fit the partitions');
    assert.equal(values.podSecurityContext.runAsNonRoot, true);
    assert.notEqual(values.podSecurityContext.runAsUser, 0);
    assert.equal(values.securityContext.readOnlyRootFilesystem, true);
    assert.equal(values.securityContext.allowPrivilegeEscalation, false);
    assert.ok(values.terminationGracePeriodSeconds > 30, 'longer than the 30 s request timeout, so in-flight requests finish');
    for (const role of ['collector', 'query', 'processor']) {
      assert.ok(values[role].resources.requests.cpu && values[role].resources.limits.memory, `${role} has requests and limits`);
      const budget = values[role].podDisruptionBudget as Yaml;
      assert.ok(budget.maxUnavailable === 1 || budget.minAvailable === 1, `${role} has a disruption budget`);
    }
    assert.equal(values.adminToken.value, '', 'no token ships in the chart');
    assert.equal(values.adminToken.existingSecret, '');
  });

  test('every template has balanced {{ }} and uses only values that exist in values.yaml', () => {
    for (const [name, text] of templates) {
      assert.equal(text.split('{{').length, text.split('}}').length, `${name}: as many {{ as }}`);
      assert.doesNotMatch(text.replace(/\{\{[\s\S]*?\}\}/g, ''), /\{\{|\}\}/, `${name}: every {{ closes before the next opens`);
      for (const match of text.matchAll(/\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
        const path = match[1]!.slice(1).split('.');
        let node: unknown = values;
        for (const key of path) {
          assert.ok(node !== null && typeof node === 'object' && key in node, `${name}: .Values.${path.join('.')} is in values.yaml`);
          node = (node as Yaml)[key];
        }
      }
    }
  });

  test('every TALLY_* variable the chart sets is a known setting', () => {
    const names = new Set([...allTemplates.matchAll(/name: (TALLY_[A-Z0-9_]+)/g)].map((match) => match[1]!));
    assert.ok(names.size >= 10, `found ${names.size} settings`);
    for (const name of names) assert.ok(knownSettings.has(name), `${name} is a setting of src/config/config.ts`);
    for (const required of ['TALLY_KAFKA_BROKERS', 'TALLY_CASSANDRA_CONTACT_POINTS', 'TALLY_CASSANDRA_REPLICATION', 'TALLY_KAFKA_REPLICATION_FACTOR', 'TALLY_KAFKA_MIN_INSYNC_REPLICAS', 'TALLY_ADMIN_TOKEN', 'TALLY_REDIS_URL', 'TALLY_EVENTS_PARTITIONS']) {
      assert.ok(names.has(required), `the chart sets ${required}`);
    }
  });

  test('the roles, their probes and the migrate hook are all there', () => {
    const deployments = templates.get('deployments.yaml') ?? '';
    for (const role of ['collector', 'query', 'processor']) assert.match(deployments, new RegExp(`"${role}"`), `a ${role} Deployment`);
    assert.match(deployments, /kind: Deployment/);
    assert.match(deployments, /livenessProbe:\s+httpGet:\s+path: \/healthz/);
    assert.match(deployments, /readinessProbe:\s+httpGet:\s+path: \/readyz/);
    assert.match(deployments, /terminationGracePeriodSeconds: \{\{ \$\.Values\.terminationGracePeriodSeconds \}\}/);
    const services = templates.get('services.yaml') ?? '';
    assert.match(services, /kind: Service/);
    assert.match(services, /list "collector" "query"/, 'Services for collector and query');
    assert.match(templates.get('poddisruptionbudgets.yaml') ?? '', /kind: PodDisruptionBudget/);
    const secret = templates.get('secret.yaml') ?? '';
    assert.match(secret, /kind: Secret/);
    assert.match(secret, /if not \.Values\.adminToken\.existingSecret/, 'no Secret when an existing one is named');
    const job = templates.get('migrate-job.yaml') ?? '';
    assert.match(job, /kind: Job/);
    assert.match(job, /"helm\.sh\/hook": pre-install,pre-upgrade/);
    assert.match(job, /args: \["migrate"\]/);
    assert.doesNotMatch(job, /TALLY_ADMIN_TOKEN|adminTokenSecret/, 'a pre-install hook cannot read the chart’s own Secret: it is not created yet');
  });

  test('more processors than events partitions is refused at render time', () => {
    const helpers = templates.get('_helpers.tpl') ?? '';
    assert.match(helpers, /if gt \(int \.Values\.processor\.replicas\) \(int \.Values\.kafka\.eventsPartitions\)/);
    assert.match(helpers, /fail \(printf "processor\.replicas/);
    assert.match(templates.get('deployments.yaml') ?? '', /include "tally\.checkProcessorReplicas" \./);
  });

  const helm = spawnSync('helm', ['version', '--short'], { encoding: 'utf8' });
  const helmMissing = helm.error ? 'no helm binary on the PATH: the chart is checked statically only' : false;

  test('helm template renders every resource, and fails on too many processors', { skip: helmMissing }, () => {
    const render = (...sets: string[]) =>
      spawnSync('helm', ['template', 'demo', join(root, chartDir), '--set', 'adminToken.value=helm-test-token-of-enough-length', ...sets.flatMap((set) => ['--set', set])], { encoding: 'utf8' });
    const rendered = render();
    assert.equal(rendered.status, 0, rendered.stderr);
    const documents = parseAllDocuments(rendered.stdout).map((document) => document.toJS() as Yaml | null).filter((document) => document !== null);
    const kinds = documents.map((document) => `${document.kind}/${document.metadata.name}`).sort();
    assert.deepEqual(kinds, [
      'Deployment/demo-tally-collector', 'Deployment/demo-tally-processor', 'Deployment/demo-tally-query',
      'Job/demo-tally-migrate',
      'PodDisruptionBudget/demo-tally-collector', 'PodDisruptionBudget/demo-tally-processor', 'PodDisruptionBudget/demo-tally-query',
      'Secret/demo-tally-admin-token',
      'Service/demo-tally-collector', 'Service/demo-tally-query',
    ]);
    for (const document of documents.filter((document) => document.kind === 'Deployment')) {
      const container = document.spec.template.spec.containers[0];
      const env = Object.fromEntries((container.env as Yaml[]).filter((entry) => 'value' in entry).map((entry) => [entry.name, String(entry.value)]));
      const config = loadConfig({ ...env, TALLY_ADMIN_TOKEN: 'helm-test-token-of-enough-length' });
      assert.equal(config.kafkaReplicationFactor, 3);
      assert.ok(document.spec.replicas <= config.eventsPartitions || container.args[0] !== 'processor');
    }
    const tooMany = render(`processor.replicas=${values.kafka.eventsPartitions + 1}`);
    assert.notEqual(tooMany.status, 0);
    assert.match(tooMany.stderr, /processor\.replicas/);
  });
});
