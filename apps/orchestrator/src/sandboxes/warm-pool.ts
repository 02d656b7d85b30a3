// The warm pool: sandboxes created ahead of demand, so "Start lab" hands one over instead of
// booting one. Pool sandboxes belong to nobody and are not in the database; after a restart they
// are orphans and the manager destroys them (the pool refills). The owner may make each one warmer
// still before it counts as ready (`warm`: the manager connects to its agent and starts the first
// shell, so the hand-over skips both); what that made is handed over with the sandbox, or given
// back to `cool` when the pool destroys it.
import { randomBytes } from "node:crypto";
import type { SandboxDriver, SandboxInfo, SandboxLimits } from "@berth/sandbox";
import type { Logger } from "pino";

export function newSandboxSpec(instance: string, limits: SandboxLimits) {
  const tag = randomBytes(6).toString("hex");
  return { id: `${instance}-${tag}`, hostname: `berth-${tag.slice(0, 6)}`, limits };
}

/** A hand-over that takes longer than this does not hold back the pool's refill. */
const REFILL_AT_LATEST_MS = 5_000;

/** A ready sandbox, with what the owner's `warm` made for it (undefined: nothing, or it failed). */
export interface PoolSandbox<W> {
  info: SandboxInfo;
  warm: W | undefined;
}

export interface WarmHooks<W> {
  /** Runs after a creation, before the sandbox counts as ready; a failure leaves it cold, not lost. */
  warm(info: SandboxInfo): Promise<W>;
  /** Releases what `warm` made, for a sandbox the pool destroys. */
  cool(w: W): void;
}

export class WarmPool<W = never> {
  private ready: PoolSandbox<W>[] = [];
  private filling = 0;
  private disposed = false;
  private readonly inflight = new Set<Promise<void>>();

  constructor(
    private readonly driver: SandboxDriver,
    private readonly instance: string,
    private readonly size: number,
    private readonly limits: SandboxLimits,
    private readonly log: Logger,
    private readonly hooks?: WarmHooks<W>,
  ) {}

  /**
   * Take a ready sandbox, if there is one, and make its replacement: once `refillAfter` settles
   * (the hand-over of the one taken: making a sandbox costs the host a CPU for a while, and the
   * learner waiting for their first prompt should not share it), or REFILL_AT_LATEST_MS after the
   * take, whichever comes first.
   */
  take(refillAfter?: Promise<unknown>): PoolSandbox<W> | undefined {
    const sb = this.ready.shift();
    if (!refillAfter) {
      void this.fill();
      return sb;
    }
    let timer: NodeJS.Timeout | undefined;
    const refill = () => {
      clearTimeout(timer);
      if (!this.disposed) void this.fill();
    };
    timer = setTimeout(refill, REFILL_AT_LATEST_MS);
    timer.unref();
    refillAfter.then(refill, refill);
    return sb;
  }

  get readyCount(): number {
    return this.ready.length;
  }

  /** Start creating sandboxes until the pool is full; returns when those under way are done. */
  fill(): Promise<void> {
    const work: Promise<void>[] = [];
    while (!this.disposed && this.ready.length + this.filling < this.size) {
      this.filling++;
      const spec = newSandboxSpec(this.instance, this.limits);
      const creation: Promise<void> = this.driver
        .create(spec)
        .then(async (info) => {
          const warm = this.disposed ? undefined : await this.hooks?.warm(info).catch((err: unknown) => {
            this.log.warn({ sandbox: info.id, err: String(err) }, "warm pool: sandbox left cold (its agent or first shell did not start)");
            return undefined;
          });
          if (this.disposed) {
            if (warm !== undefined) this.hooks?.cool(warm);
            await this.driver.destroy(info.id);
          } else this.ready.push({ info, warm });
        })
        .catch((err) => this.log.error({ err: String(err) }, "warm pool: could not create a sandbox"))
        .finally(() => {
          this.filling--;
          this.inflight.delete(creation);
        });
      this.inflight.add(creation);
      work.push(creation);
    }
    return Promise.all(work).then(() => undefined);
  }

  /** Destroy the sandboxes nobody took. */
  async dispose(): Promise<void> {
    this.disposed = true;
    // Creations under way destroy their sandbox themselves once they see `disposed`.
    await Promise.all([...this.inflight]);
    const left = this.ready;
    this.ready = [];
    for (const s of left) if (s.warm !== undefined) this.hooks?.cool(s.warm);
    await Promise.all(left.map((s) => this.driver.destroy(s.info.id).catch(() => undefined)));
  }
}
