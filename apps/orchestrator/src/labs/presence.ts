// Who has which lab open right now: a learner's live socket.io connection that attached a terminal
// of the lab (the player always does). The gateway reports joins and disconnects; automatic checks
// (grading/auto-checks.ts) run for a (learner, lab) while at least one such socket is open, and
// push their results to those sockets.
import type { CheckResultView, ProgressView } from "@berth/protocol";

/** The "check:result" event (server → browser). */
export interface CheckResultPush {
  labId: string;
  result: CheckResultView;
  progress: ProgressView;
}

/** One open socket, as far as labs are concerned. */
export interface LabWatcher {
  /** The socket's id. */
  id: string;
  pushCheckResult(msg: CheckResultPush): void;
}

type Listener = (userId: string, labId: string, open: boolean) => void;

export class LabPresence {
  /** user:lab → sockets */
  private readonly open = new Map<string, Map<string, LabWatcher>>();
  /** socket id → the user:lab keys it is in */
  private readonly bySocket = new Map<string, Set<string>>();
  private readonly listeners = new Set<Listener>();

  join(userId: string, labId: string, watcher: LabWatcher): void {
    const key = keyOf(userId, labId);
    let sockets = this.open.get(key);
    const first = !sockets;
    if (!sockets) this.open.set(key, (sockets = new Map()));
    sockets.set(watcher.id, watcher);
    let keys = this.bySocket.get(watcher.id);
    if (!keys) this.bySocket.set(watcher.id, (keys = new Set()));
    keys.add(key);
    if (first) this.emit(userId, labId, true);
  }

  /** A socket went away: it leaves every lab it had open. */
  leave(socketId: string): void {
    const keys = this.bySocket.get(socketId);
    if (!keys) return;
    this.bySocket.delete(socketId);
    for (const key of keys) {
      const sockets = this.open.get(key);
      if (!sockets) continue;
      sockets.delete(socketId);
      if (sockets.size > 0) continue;
      this.open.delete(key);
      const [userId, labId] = key.split("\0") as [string, string];
      this.emit(userId, labId, false);
    }
  }

  watchers(userId: string, labId: string): LabWatcher[] {
    return [...(this.open.get(keyOf(userId, labId))?.values() ?? [])];
  }

  isOpen(userId: string, labId: string): boolean {
    return this.open.has(keyOf(userId, labId));
  }

  /** Called when a (learner, lab) gets its first socket (open) or loses its last (closed). */
  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(userId: string, labId: string, open: boolean): void {
    for (const l of this.listeners) l(userId, labId, open);
  }
}

const keyOf = (userId: string, labId: string) => `${userId}\0${labId}`;
