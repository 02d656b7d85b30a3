/**
 * Restart policies (`--restart`), decided as dockerd's restart manager decides them:
 *   no              never
 *   always          whatever the exit code, unless a user stopped it
 *   unless-stopped  the same; and after an engine restart only if no user had stopped it
 *   on-failure[:N]  a non-zero exit code, at most N times (RestartCount counts them)
 * Between attempts the engine waits 100 ms, doubling each time up to a minute; a run of 10 s or
 * more resets the wait. `docker start`/`restart` reset RestartCount.
 */
import type { Container } from "./container";

const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 60_000;
const LONG_RUN_MS = 10_000;

/** The wait before starting again, or null if the policy says the container stays down. */
export function restartDelay(c: Container, exitCode: number, ranMs: number): number | null {
  const r = c.record;
  const p = r.HostConfig.RestartPolicy ?? { Name: "no", MaximumRetryCount: 0 };
  if (c.stopping || r.HostConfig.AutoRemove) return null;
  const restart =
    p.Name === "always" || p.Name === "unless-stopped"
      ? true
      : p.Name === "on-failure"
        ? exitCode !== 0 && (p.MaximumRetryCount === 0 || r.RestartCount < p.MaximumRetryCount)
        : false;
  if (!restart) return null;
  if (ranMs >= LONG_RUN_MS) c.backoffMs = 0;
  c.backoffMs = c.backoffMs === 0 ? FIRST_DELAY_MS : Math.min(c.backoffMs * 2, MAX_DELAY_MS);
  return c.backoffMs;
}

/** After an engine restart: does the policy start this container again? */
export function startsWithEngine(c: Container): boolean {
  const r = c.record;
  const p = r.HostConfig.RestartPolicy ?? { Name: "no", MaximumRetryCount: 0 };
  if (p.Name === "always") return true;
  if (p.Name === "unless-stopped") return !r.manuallyStopped;
  return p.Name === "on-failure" && r.State.ExitCode !== 0 && (p.MaximumRetryCount === 0 || r.RestartCount < p.MaximumRetryCount);
}
