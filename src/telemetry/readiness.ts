// What /readyz reports: every check must pass. Checks are set by the parts that know (consumer events,
// the database probe, migrations at start, shutdown).
export type ReadinessCheck = 'consumer' | 'database' | 'migrations' | 'running';

export class Readiness {
  readonly #checks = new Map<ReadinessCheck, { ok: boolean; detail: string }>([
    ['consumer', { ok: false, detail: 'not joined yet' }],
    ['database', { ok: false, detail: 'not checked yet' }],
    ['migrations', { ok: false, detail: 'not checked yet' }],
    ['running', { ok: true, detail: 'running' }],
  ]);

  set(check: ReadinessCheck, ok: boolean, detail: string): void {
    this.#checks.set(check, { ok, detail });
  }

  get ready(): boolean {
    for (const c of this.#checks.values()) if (!c.ok) return false;
    return true;
  }

  isOk(check: ReadinessCheck): boolean {
    return this.#checks.get(check)?.ok ?? false;
  }

  report(): { ready: boolean; checks: Record<string, { ok: boolean; detail: string }> } {
    return { ready: this.ready, checks: Object.fromEntries(this.#checks) };
  }
}
