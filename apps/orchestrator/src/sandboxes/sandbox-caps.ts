// How many learner sandboxes may live at once: `perAccount` for one learner, `total` on this
// server. Past the per-account cap a learner must first leave one of their labs (an error that
// names them); past the total they wait in a first-come queue and are told their place.
//
// Lifecycle: `admit()` before a new sandbox is made (resolves with a ticket once there is room),
// `ticket.held(id)` when it exists (`hold()` for sandboxes kept across a restart), `ticket.done()`
// when the attempt ends either way, `release()` when the sandbox ends; a release lets the queue on.
// Everything is counted in this process, synchronously, so two acquires cannot both take the
// last slot. (Warm-pool sandboxes belong to nobody and are not counted: they are few, and handing
// one over turns it into a counted one.)
import type { PhaseReporter } from "./sandbox-manager.js";

export interface SandboxCapLimits {
  perAccount: number;
  total: number;
  /** How long a learner may wait in the queue before being told to try again later. */
  queueTimeoutMs: number;
}

/** A refusal the learner can act on (its message is shown in their terminal pane). */
export class SandboxCapError extends Error {}

interface Waiter {
  wake(): void;
}

export interface Ticket {
  /** The sandbox exists: it holds the slot the ticket reserved from now on. */
  held(sandboxId: string): void;
  /** The attempt is over: free the slot it reserved, unless a sandbox holds it now. */
  done(): void;
}

export class SandboxCaps {
  private readonly held = new Map<string, { userId: string; labId: string }>(); // by sandbox id
  private readonly starting = new Map<symbol, { userId: string; labId: string }>();
  private readonly queue: Waiter[] = [];

  constructor(
    private readonly limits: SandboxCapLimits,
    /** Says how long an unwatched lab lives on, for the per-account message. */
    private readonly idleMinutes: number,
  ) {}

  get liveCount(): number {
    return this.held.size + this.starting.size;
  }

  get queueLength(): number {
    return this.queue.length;
  }

  hold(sandboxId: string, userId: string, labId: string): void {
    this.held.set(sandboxId, { userId, labId });
  }

  release(sandboxId: string): void {
    if (this.held.delete(sandboxId)) this.wakeNext();
  }

  /**
   * Room for one more sandbox of `userId` for `labId`: at once, after a wait in the queue
   * (reported as the "queued" phase), or a SandboxCapError. `signal` takes a waiting learner out
   * of the queue (their browser went away), so nobody waits behind a sandbox for nobody.
   */
  async admit(userId: string, labId: string, report: PhaseReporter, signal?: AbortSignal): Promise<Ticket> {
    this.checkAccount(userId, labId);
    const key = Symbol(labId);
    const reserve = () => this.starting.set(key, { userId, labId });
    if (this.queue.length > 0 || this.liveCount >= this.limits.total) await this.wait(reserve, report, signal);
    else reserve();
    let done = false;
    const ticket: Ticket = {
      held: (sandboxId) => {
        if (done) return;
        done = true;
        this.starting.delete(key);
        this.held.set(sandboxId, { userId, labId });
      },
      done: () => {
        if (done) return;
        done = true;
        this.starting.delete(key);
        this.wakeNext();
      },
    };
    try {
      // The learner may have opened another lab while waiting.
      this.checkAccount(userId, labId, key);
    } catch (err) {
      ticket.done();
      throw err;
    }
    return ticket;
  }

  private checkAccount(userId: string, labId: string, own?: symbol): void {
    if (this.limits.perAccount <= 0) return;
    const starting = [...this.starting].filter(([k]) => k !== own).map(([, s]) => s);
    const labs = [...new Set([...this.held.values(), ...starting].filter((s) => s.userId === userId && s.labId !== labId).map((s) => s.labId))];
    if (labs.length < this.limits.perAccount) return;
    throw new SandboxCapError(
      `You already have ${labs.length === 1 ? "a lab" : `${labs.length} labs`} running (${labs.join(", ")}), the most one account may have at once. ` +
        `Close the tab of one you are done with: a lab nobody has open ends ${this.idleMinutes} minutes later, and this one can start then.`,
    );
  }

  /** Queues until this waiter is at the head and there is room, then runs `reserve` synchronously. */
  private async wait(reserve: () => void, report: PhaseReporter, signal?: AbortSignal): Promise<void> {
    const waiter: Waiter = { wake: () => undefined };
    this.queue.push(waiter);
    let told = 0;
    const tell = () => {
      const place = this.queue.indexOf(waiter) + 1;
      if (place === told || place === 0) return;
      told = place;
      report("queued", `Berth is full: all ${this.limits.total} sandboxes are in use. You are number ${place} in the queue; your lab starts as soon as one is free.`);
    };
    tell();
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new SandboxCapError(`No sandbox became free within ${Math.round(this.limits.queueTimeoutMs / 60_000)} minutes. Please try again later.`)), this.limits.queueTimeoutMs);
        timer.unref();
        const leave = () => {
          clearTimeout(timer);
          reject(new SandboxCapError("Left the queue: the browser went away."));
        };
        if (signal?.aborted) return leave();
        signal?.addEventListener("abort", leave, { once: true });
        waiter.wake = () => {
          // Our turn when we are at the head and there is room; otherwise tell our new place.
          if (this.queue[0] !== waiter || this.liveCount >= this.limits.total) return tell();
          clearTimeout(timer);
          signal?.removeEventListener("abort", leave);
          waiter.wake = () => undefined;
          this.queue.shift();
          reserve(); // before anyone else can look at the count
          resolve();
          this.wakeNext(); // the others move up one place
        };
      });
    } catch (err) {
      const at = this.queue.indexOf(waiter);
      if (at >= 0) this.queue.splice(at, 1);
      this.wakeNext();
      throw err;
    }
  }

  private wakeNext(): void {
    for (const w of [...this.queue]) w.wake();
  }
}
