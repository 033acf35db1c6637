// The worker's metrics, named by OpenTelemetry's messaging and database conventions where one exists
// (the Prometheus exporter turns dots into underscores and adds unit and _total suffixes).
// Created after the SDK has started: the metrics API has no proxy for instruments made earlier.
import { metrics, type Attributes } from '@opentelemetry/api';
import type { OutcomeLabel } from '../messaging/engine/lifecycle.ts';
import { partitionKey } from '../messaging/engine/records.ts';

export interface PoolStats {
  totalCount: number;
  idleCount: number;
  waitingCount: number;
}

export interface PartitionWaiting {
  lane: string;
  topic: string;
  partition: number;
  waitingMs: number;
}

export interface WorkerMetrics {
  /** One processed message: its lane, topic, operation and outcome (success, error, duplicate, dead_letter). */
  processed(attributes: {
    lane: string;
    topic: string;
    partition: number;
    operation: string;
    outcome: OutcomeLabel;
    errorType?: string;
    durationMs: number;
  }): void;
  batch(topic: string, operation: string | undefined, size: number): void;
  /** A read answered DEADLINE_EXCEEDED: not run, or cancelled while it ran. */
  deadlineExceeded(lane: string, topic: string, operation: string): void;
  /** Offsets of a partition never read: the log no longer held them when the lane fetched there (0: the
   * partition was fetched, and its series starts). */
  skipped(lane: string, topic: string, partition: number, count: number): void;
  /** A failed try that will run again (`transient`, `permanent`) or a publish sent again (`publish`). */
  retry(
    lane: string,
    topic: string,
    partition: number | undefined,
    kind: 'transient' | 'permanent' | 'publish',
  ): void;
  inFlight(lane: string, delta: number): void;
  /** Units running and messages queued in a lane, and the lane's concurrency budget. */
  laneLoad(lane: string, running: number, queued: number): void;
  laneBudget(lane: string, concurrency: number): void;
  /** High watermark minus the first offset not done, per partition, as seen on the latest fetch. */
  lag(topic: string, partition: number, lag: number): void;
  /** A partition that went to another member: this process no longer says its lag. */
  forgetLag(topic: string, partition: number): void;
  /** Read when scraped: how long each partition's oldest unfinished message has held its commit point. */
  watchPartitions(source: () => readonly PartitionWaiting[]): void;
  watchPool(pool: PoolStats): void;
  /** Identity records whose result body was pruned, and the bytes of JSON that freed. */
  pruned(rows: number, bytes: number): void;
}

/** `groupOf`: the consumer group that reads a topic (each lane has its own). */
export function createWorkerMetrics(groupOf: (topic: string) => string): WorkerMetrics {
  const meter = metrics.getMeter('pattern-worker');
  // Counted here and observed when scraped: a Counter's add hashed its eight attributes for every
  // message (1.2 µs and about 3 KB of garbage each, a tenth of a usage event's). Still a counter.
  const consumed = new Map<
    string,
    { attributes: Attributes; durationAttributes: Attributes; count: number }
  >();
  meter
    .createObservableCounter('messaging.client.consumed.messages', {
      description: 'Messages processed, by topic, operation and outcome',
      unit: '{message}',
    })
    .addCallback((result) => {
      for (const series of consumed.values()) result.observe(series.count, series.attributes);
    });
  const duration = meter.createHistogram('messaging.process.duration', {
    description: 'Time from taking a message to having its result ready, per message',
    unit: 's',
    advice: {
      explicitBucketBoundaries: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    },
  });
  const deadLetters = meter.createCounter('pattern_worker.dead_letters', {
    description: 'Messages sent to a dead-letter topic',
    unit: '{message}',
  });
  const duplicates = meter.createCounter('pattern_worker.duplicates', {
    description: 'Messages whose effect was already applied (redelivered, replayed or re-sent)',
    unit: '{message}',
  });
  const retries = meter.createCounter('pattern_worker.retries', {
    description: 'Failed tries run again: transient (outage, deadlock), permanent (bounded), publish',
    unit: '{retry}',
  });
  const batchSize = meter.createHistogram('messaging.batch.message_count', {
    description: 'Messages applied in one transaction (a batch) or one unit',
    unit: '{message}',
    advice: { explicitBucketBoundaries: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500] },
  });
  const skippedOffsets = meter.createCounter('pattern_worker.skipped_offsets', {
    description:
      'Offsets never read because the log no longer held them when the lane fetched there (retention or ' +
      'delete-records below unfinished work): their messages got no result',
    unit: '{offset}',
  });
  const deadlines = meter.createCounter('pattern_worker.deadline_exceeded', {
    description:
      "Reads not run, or cancelled while running, because their caller's deadline (pattern-deadline-ms) passed",
    unit: '{message}',
  });
  const inFlight = meter.createUpDownCounter('pattern_worker.in_flight', {
    description: 'Messages being processed now',
    unit: '{message}',
  });
  const prunedRows = meter.createCounter('pattern_worker.identity.pruned', {
    description: 'Identity records whose result body was pruned past WORKER_RESULT_RETENTION',
    unit: '{record}',
  });
  const prunedBytes = meter.createCounter('pattern_worker.identity.pruned_bytes', {
    description: 'Bytes of result JSON freed by pruning',
    unit: 'By',
  });
  // Counters the alerts take rate() of start at 0 once their series is known, so that the first dead
  // letter or retry is an increase and not the first sample of a new series (which rate() cannot see).
  const started = new Set<string>();
  const startAtZero = (key: string, start: () => void) => {
    if (started.has(key)) return;
    started.add(key);
    start();
  };
  const retryAttributes = (laneName: string, topic: string, partition: number | undefined, kind: string) => ({
    'pattern.lane': laneName,
    'pattern.retry.kind': kind,
    'messaging.destination.name': topic,
    ...(partition === undefined ? {} : { 'messaging.destination.partition.id': String(partition) }),
  });
  const startDeadLetters = (topic: string) =>
    startAtZero(`dead:${topic}`, () => deadLetters.add(0, { 'messaging.destination.name': topic }));
  const startTopic = (laneName: string, topic: string, partition: number) => {
    startDeadLetters(topic);
    startAtZero(`retry:${laneName}:${topic}:${partition}`, () => {
      for (const kind of ['transient', 'permanent'])
        retries.add(0, retryAttributes(laneName, topic, partition, kind));
    });
  };
  const lanes = new Map<string, { running: number; queued: number; concurrency: number }>();
  const lane = (name: string) => {
    let l = lanes.get(name);
    if (!l) lanes.set(name, (l = { running: 0, queued: 0, concurrency: 0 }));
    return l;
  };
  meter
    .createObservableGauge('pattern_worker.lane.units', {
      description: 'Units running and messages queued per lane',
      unit: '{unit}',
    })
    .addCallback((result) => {
      for (const [name, l] of lanes) {
        result.observe(l.running, { 'pattern.lane': name, 'pattern.state': 'running' });
        result.observe(l.queued, { 'pattern.lane': name, 'pattern.state': 'queued' });
      }
    });
  meter
    .createObservableGauge('pattern_worker.lane.concurrency', {
      description: 'Concurrency budget per lane (WORKER_WRITES_CONCURRENCY, ...)',
      unit: '{unit}',
    })
    .addCallback((result) => {
      for (const [name, l] of lanes) result.observe(l.concurrency, { 'pattern.lane': name });
    });
  const lags = new Map<string, { topic: string; partition: number; lag: number }>();
  meter
    .createObservableGauge('messaging.kafka.consumer.lag', {
      description:
        'Messages between the first one not done (effect and result) and the end of the partition, as the latest fetch or a read of its end every 2 s said',
      unit: '{message}',
    })
    .addCallback((result) => {
      for (const { topic, partition, lag } of lags.values()) {
        result.observe(lag, {
          'messaging.destination.name': topic,
          'messaging.destination.partition.id': String(partition),
          'messaging.consumer.group.name': groupOf(topic),
        });
      }
    });
  let partitionSources: (() => readonly PartitionWaiting[])[] = [];
  meter
    .createObservableGauge('pattern_worker.partition.waiting', {
      description:
        "How long the partition's oldest unfinished message has held its commit point (0: nothing unfinished)",
      unit: 's',
    })
    .addCallback((result) => {
      for (const source of partitionSources) {
        for (const w of source()) {
          result.observe(w.waitingMs / 1000, {
            'pattern.lane': w.lane,
            'messaging.destination.name': w.topic,
            'messaging.destination.partition.id': String(w.partition),
            'messaging.consumer.group.name': groupOf(w.topic),
          });
        }
      }
    });
  let pools: PoolStats[] = [];
  meter
    .createObservableGauge('db.client.connection.count', {
      description: 'Connections in the pool, by state',
      unit: '{connection}',
    })
    .addCallback((result) => {
      for (const pool of pools) {
        result.observe(pool.idleCount, { 'db.client.connection.state': 'idle' });
        result.observe(pool.totalCount - pool.idleCount, { 'db.client.connection.state': 'used' });
      }
    });
  meter
    .createObservableGauge('db.client.connection.pending_requests', {
      description: 'Requests waiting for a connection',
      unit: '{request}',
    })
    .addCallback((result) => {
      for (const pool of pools) result.observe(pool.waitingCount);
    });

  return {
    processed({ lane, topic, partition, operation, outcome, errorType, durationMs }) {
      // Bounded: the lanes' topics and partitions, the operations and error codes of the contract.
      const key = `${lane}\n${topic}\n${partition}\n${operation}\n${outcome}\n${errorType ?? ''}`;
      let series = consumed.get(key);
      if (!series) {
        const durationAttributes: Attributes = {
          'messaging.system': 'kafka',
          'pattern.lane': lane,
          'messaging.destination.name': topic,
          'messaging.consumer.group.name': groupOf(topic),
          'pattern.operation': operation,
          'pattern.outcome': outcome,
          ...(errorType ? { 'error.type': errorType } : {}),
        };
        const attributes = { ...durationAttributes, 'messaging.destination.partition.id': String(partition) };
        consumed.set(key, (series = { attributes, durationAttributes, count: 0 }));
        startTopic(lane, topic, partition);
      }
      series.count++;
      duration.record(durationMs / 1000, series.durationAttributes);
      if (outcome === 'dead_letter') deadLetters.add(1, { 'messaging.destination.name': topic });
      if (outcome === 'duplicate') duplicates.add(1, { 'messaging.destination.name': topic });
    },
    deadlineExceeded(laneName, topic, operation) {
      deadlines.add(1, {
        'pattern.lane': laneName,
        'messaging.destination.name': topic,
        'pattern.operation': operation,
      });
    },
    skipped(laneName, topic, partition, count) {
      const attributes = () => ({
        'pattern.lane': laneName,
        'messaging.consumer.group.name': groupOf(topic),
        'messaging.destination.name': topic,
        'messaging.destination.partition.id': String(partition),
      });
      // 0: the partition was fetched; its series starts at 0 so that the alert sees the first skip.
      if (count === 0)
        startAtZero(`skipped:${laneName}:${topic}:${partition}`, () => skippedOffsets.add(0, attributes()));
      else skippedOffsets.add(count, attributes());
    },
    batch(topic, operation, size) {
      batchSize.record(size, {
        'messaging.destination.name': topic,
        ...(operation ? { 'pattern.operation': operation } : {}),
      });
    },
    retry(laneName, topic, partition, kind) {
      retries.add(1, retryAttributes(laneName, topic, partition, kind));
    },
    inFlight(laneName, delta) {
      inFlight.add(delta, { 'pattern.lane': laneName });
    },
    laneLoad(name, running, queued) {
      const l = lane(name);
      l.running = running;
      l.queued = queued;
    },
    laneBudget(name, concurrency) {
      lane(name).concurrency = concurrency;
      startAtZero(`publish:${name}`, () => retries.add(0, retryAttributes(name, '', undefined, 'publish')));
    },
    forgetLag(topic, partition) {
      lags.delete(partitionKey(topic, partition));
    },
    lag(topic, partition, lag) {
      // A fetch comes before any outcome of its messages.
      startDeadLetters(topic);

      lags.set(partitionKey(topic, partition), { topic, partition, lag: Math.max(0, lag) });
    },
    pruned(rows, bytes) {
      prunedRows.add(rows);
      prunedBytes.add(bytes);
    },
    watchPool(pool) {
      pools = [...pools, pool];
    },
    watchPartitions(source) {
      partitionSources = [...partitionSources, source];
    },
  };
}
