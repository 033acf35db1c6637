// Progress of a long run, per topic: bars with rate and ETA on a terminal, the same figures as log
// lines (every few seconds) when stderr is not a TTY.
import cliProgress from 'cli-progress';

export interface ProgressItem {
  name: string;
  total: number;
}

export interface Progress {
  update(name: string, done: number): void;
  stop(): void;
}

function formatRate(perSecond: number): string {
  return perSecond >= 1000 ? `${(perSecond / 1000).toFixed(1)}k` : perSecond.toFixed(0);
}

function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--';
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  const m = Math.floor(seconds / 60);
  return m < 60
    ? `${m}m${String(Math.ceil(seconds % 60)).padStart(2, '0')}s`
    : `${Math.floor(m / 60)}h${m % 60}m`;
}

class Meter {
  readonly total: number;
  done = 0;
  #started: number | undefined;

  constructor(total: number) {
    this.total = total;
  }

  set(done: number): void {
    if (this.#started === undefined && done > 0) this.#started = performance.now();
    this.done = done;
  }

  get rate(): number {
    if (this.#started === undefined) return 0;
    const seconds = (performance.now() - this.#started) / 1000;
    return seconds > 0 ? this.done / seconds : 0;
  }

  get eta(): number {
    const left = this.total - this.done;
    if (left <= 0) return 0;
    return this.rate > 0 ? left / this.rate : Number.POSITIVE_INFINITY;
  }
}

export function createProgress(
  items: ProgressItem[],
  stream: NodeJS.WriteStream = process.stderr,
  intervalMs = 2000,
): Progress {
  const meters = new Map(items.map((i) => [i.name, new Meter(i.total)]));
  const width = Math.max(...items.map((i) => i.name.length), 5);

  if (stream.isTTY) {
    const multi = new cliProgress.MultiBar(
      {
        stream,
        format: `{name} {bar} {value}/{total} {percentage}% | {rate} msg/s | ETA {eta}`,
        barCompleteChar: '█',
        barIncompleteChar: '░',
        hideCursor: true,
        clearOnComplete: false,
        fps: 5,
      },
      cliProgress.Presets.shades_grey,
    );
    const bars = new Map(
      items.map((i) => [
        i.name,
        multi.create(Math.max(i.total, 1), 0, { name: i.name.padEnd(width), rate: '0', eta: '--' }),
      ]),
    );
    return {
      update(name, done) {
        const meter = meters.get(name);
        if (!meter) return;
        meter.set(done);
        bars.get(name)?.update(done, { rate: formatRate(meter.rate), eta: formatEta(meter.eta) });
      },
      stop: () => multi.stop(),
    };
  }

  const line = (name: string, meter: Meter) => {
    const pct = meter.total === 0 ? 100 : (100 * meter.done) / meter.total;
    stream.write(
      `${name.padEnd(width)} ${meter.done}/${meter.total} ${pct.toFixed(1)}% | ` +
        `${formatRate(meter.rate)} msg/s | ETA ${formatEta(meter.eta)}\n`,
    );
  };
  const reported = new Map<string, number>();
  const timer = setInterval(() => {
    for (const [name, meter] of meters) {
      // Only topics that moved since the last line, so an idle topic doesn't repeat itself.
      if (reported.get(name) !== meter.done && meter.done > 0) {
        reported.set(name, meter.done);
        line(name, meter);
      }
    }
  }, intervalMs);
  timer.unref();
  return {
    update(name, done) {
      meters.get(name)?.set(done);
    },
    stop() {
      clearInterval(timer);
      for (const [name, meter] of meters) if (reported.get(name) !== meter.done) line(name, meter);
    },
  };
}
