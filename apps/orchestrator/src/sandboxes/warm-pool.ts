// The warm pool: sandboxes created ahead of demand, so "Start lab" hands one over instead of
// booting one. Pool sandboxes belong to nobody and are not in the database; after a restart they
// are orphans and the manager destroys them (the pool refills).
import { randomBytes } from "node:crypto";
import type { SandboxDriver, SandboxInfo, SandboxLimits } from "@berth/sandbox";
import type { Logger } from "pino";

export function newSandboxSpec(instance: string, limits: SandboxLimits) {
  const tag = randomBytes(6).toString("hex");
  return { id: `${instance}-${tag}`, hostname: `berth-${tag.slice(0, 6)}`, limits };
}

export class WarmPool {
  private ready: SandboxInfo[] = [];
  private filling = 0;
  private disposed = false;
  private readonly inflight = new Set<Promise<void>>();

  constructor(
    private readonly driver: SandboxDriver,
    private readonly instance: string,
    private readonly size: number,
    private readonly limits: SandboxLimits,
    private readonly log: Logger,
  ) {}

  /** Take a ready sandbox, if there is one, and start making its replacement. */
  take(): SandboxInfo | undefined {
    const sb = this.ready.shift();
    this.fill();
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
          if (this.disposed) await this.driver.destroy(info.id);
          else this.ready.push(info);
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
    await Promise.all(left.map((s) => this.driver.destroy(s.id).catch(() => undefined)));
  }
}
