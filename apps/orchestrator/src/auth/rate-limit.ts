// Throttles for the account endpoints, kept in this process's memory (one orchestrator; several
// would need a shared store). Two shapes:
// - TokenBucket: "N per hour, a burst at once" (sign-ups per client address).
// - FailureBackoff: the first few failures are free, then every further attempt must wait twice as
//   long as the one before (sign-in failures per account and per address). A success forgets.
// Both answer with how long to wait, which the API turns into 429 + Retry-After. Both bound their
// memory: idle keys are forgotten, and past `maxKeys` the oldest key goes first.

export interface Verdict {
  allowed: boolean;
  /** When not allowed: whole seconds until a retry may succeed (for Retry-After). */
  retryAfterSeconds: number;
}

const ok: Verdict = { allowed: true, retryAfterSeconds: 0 };
const wait = (ms: number): Verdict => ({ allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(ms / 1000)) });

/** A Map whose oldest entries are dropped past `max` (Map keeps insertion order; touch re-inserts). */
class BoundedMap<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}
  get(key: string): V | undefined {
    return this.map.get(key);
  }
  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
  }
  delete(key: string): void {
    this.map.delete(key);
  }
  get size(): number {
    return this.map.size;
  }
}

export class TokenBucket {
  private readonly buckets: BoundedMap<{ tokens: number; at: number }>;
  private readonly perMs: number;

  /** `perHour` tokens refill per hour; at most `burst` are kept. `perHour` 0 turns the limit off. */
  constructor(private readonly perHour: number, private readonly burst = Math.min(10, perHour), maxKeys = 100_000) {
    this.perMs = perHour / 3_600_000;
    this.buckets = new BoundedMap(maxKeys);
  }

  /** Takes one token for `key` if there is one. */
  take(key: string, now = Date.now()): Verdict {
    if (this.perHour <= 0) return ok;
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: now };
    const tokens = Math.min(this.burst, b.tokens + (now - b.at) * this.perMs);
    if (tokens < 1) {
      this.buckets.set(key, { tokens, at: now });
      return wait((1 - tokens) / this.perMs);
    }
    this.buckets.set(key, { tokens: tokens - 1, at: now });
    return ok;
  }
}

export class FailureBackoff {
  private readonly keys: BoundedMap<{ failures: number; last: number; blockedUntil: number }>;

  /**
   * `free` failures cost nothing; the next waits `baseMs`, then twice that, up to `maxMs`. A key
   * with no failure for `forgetMs` starts afresh. `free` 0 with `baseMs` 0 turns it off.
   */
  constructor(
    private readonly free: number,
    private readonly baseMs = 1000,
    private readonly maxMs = 15 * 60_000,
    private readonly forgetMs = 60 * 60_000,
    maxKeys = 100_000,
  ) {
    this.keys = new BoundedMap(maxKeys);
  }

  /** May `key` try now? (Asked before the expensive part, so a blocked attempt costs nothing.) */
  check(key: string, now = Date.now()): Verdict {
    const k = this.keys.get(key);
    if (!k) return ok;
    if (now - k.last > this.forgetMs) {
      this.keys.delete(key);
      return ok;
    }
    return now < k.blockedUntil ? wait(k.blockedUntil - now) : ok;
  }

  failed(key: string, now = Date.now()): void {
    const k = this.keys.get(key);
    const failures = (k && now - k.last <= this.forgetMs ? k.failures : 0) + 1;
    const over = failures - this.free;
    const blockedUntil = over > 0 && this.baseMs > 0 ? now + Math.min(this.maxMs, this.baseMs * 2 ** (over - 1)) : 0;
    this.keys.set(key, { failures, last: now, blockedUntil });
  }

  succeeded(key: string): void {
    this.keys.delete(key);
  }
}
