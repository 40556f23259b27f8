/**
 * The parts a process started, in order, each with how to stop it. `stop()` stops them in reverse (the last started
 * first), once, and goes on past a part whose stop fails; a start that throws stops what was already started.
 */
export class Lifecycle {
  private readonly stops: Array<{ name: string; stop: () => Promise<unknown> }> = [];
  private stopping?: Promise<void>;

  constructor(private readonly onStopError: (err: unknown, part: string) => void) {}

  /** Starts a part and registers its stop. */
  async start<T>(name: string, start: () => Promise<T> | T, stop: (part: T) => Promise<unknown> | unknown): Promise<T> {
    const part = await start();
    this.defer(name, () => stop(part));
    return part;
  }

  /** Registers the stop of something already started. */
  defer(name: string, stop: () => Promise<unknown> | unknown): void {
    this.stops.push({ name, stop: async () => stop() });
  }

  /** Runs `build`; if it throws, stops whatever it had started and rethrows. */
  async build<T>(build: (life: this) => Promise<T>): Promise<T> {
    try {
      return await build(this);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const { name, stop } of this.stops.splice(0).reverse()) {
        await stop().catch((err: unknown) => this.onStopError(err, name));
      }
    })();
    return this.stopping;
  }
}
