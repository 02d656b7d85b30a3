// The sandbox driver interface: what the orchestrator and `labkit test` use to get a learner an
// isolated Linux box with an agent inside. Lifecycle: prepare() once (base rootfs, agent bundle),
// then create() → connect() → (stats() ...) → stop()/destroy(). Sandboxes run detached from the
// process that created them: a new driver instance finds them again with list().

export interface SandboxLimits {
  memoryBytes: number;
  cpus: number;
  pids: number;
  /** Size of the sandbox's own filesystem (its writable layer and engine state); sparse on the host. */
  diskBytes: number;
}

export const DEFAULT_LIMITS: SandboxLimits = { memoryBytes: 512 * 1024 * 1024, cpus: 1, pids: 256, diskBytes: 4 * 1024 * 1024 * 1024 };

export interface SandboxSpec {
  id: string;
  hostname: string;
  limits?: Partial<SandboxLimits>;
  /**
   * Who the sandbox belongs to (e.g. a user id): the learner's namespace in the lab registry, so
   * their pushed images follow them from sandbox to sandbox. Default: the sandbox id.
   */
  owner?: string;
}

/** Where the sandbox's agent listens (a UNIX socket on the host) and the token it wants. */
export interface AgentEndpoint {
  socketPath: string;
  token: string;
  /**
   * The driver's timeScale (when above 1): AgentClient.connect and dialAgent stretch their
   * handshake timeout by it, so the orchestrator, labkit and tests keep a namespaces sandbox's
   * timeouts and a slow guest still answers in time.
   */
  timeScale?: number;
}

export interface SandboxInfo {
  id: string;
  hostname: string;
  state: "running" | "stopped" | "missing";
  pid?: number;
  createdAt: Date;
  /** VM drivers: how the guest's CPU runs ("kvm", or "tcg": software emulation, much slower). */
  accelerator?: "kvm" | "tcg";
}

export interface SandboxStats {
  memoryBytes: number;
  pids: number;
  cpuUsageNs: number;
  /**
   * What says a limit acted (counters only grow; compare with the last reading). Optional: a
   * driver that cannot tell leaves them out. oomKills: processes the OOM killer ended, at the
   * sandbox's limit or a container's own; memoryLimitHits grows only with OOMs at the sandbox's own
   * memory limit; pidsLimitHits: forks refused at the sandbox's pids limit.
   */
  oomKills?: number;
  memoryLimitHits?: number;
  pidsLimitHits?: number;
  /** The sandbox's own filesystem (absent: it has none, its writes go to the host's disk). */
  disk?: { usedBytes: number; sizeBytes: number };
  /** The limits it runs with (what a notice names). */
  limits?: SandboxLimits;
}

export interface TrustedExecOptions {
  timeoutMs: number;
  /** Per stream (stdout, stderr); more is dropped and `truncated` set. Default 16 KiB. */
  maxOutputBytes?: number;
}

export interface TrustedExecResult {
  /** null: killed (the timeout). */
  exitCode: number | null;
  stdout: Buffer;
  stderr: Buffer;
  timedOut: boolean;
  truncated: boolean;
  durationMs: number;
}

export interface SandboxDriver {
  readonly name: string;
  /**
   * How many times slower than a namespaces sandbox processes run in this driver's sandboxes
   * (absent: 1). execTrusted stretches its timeout by it itself; a caller that times what it runs
   * through the agent (labkit's solutions) stretches its own timeouts by it.
   */
  readonly timeScale?: number;
  /** Ensure what create() needs exists (base rootfs, agent bundle). Slow the first time only. */
  prepare(onProgress?: (line: string) => void): Promise<void>;
  /** Create and start; resolves once the agent answers health. */
  create(spec: SandboxSpec): Promise<SandboxInfo>;
  stop(id: string): Promise<void>;
  /** Kill, unmount, remove all state. Idempotent. */
  destroy(id: string): Promise<void>;
  connect(id: string): Promise<AgentEndpoint>;
  stats(id: string): Promise<SandboxStats>;
  list(): Promise<SandboxInfo[]>;
  /**
   * Runs a check or lab setup script (bash) in the sandbox, out of the learner's reach: tools the
   * learner cannot change, a fixed environment, the script passed so nothing inside can read it,
   * and a process nothing inside can see, signal or ptrace. It sees the learner's state (files,
   * processes in /proc, network, cgroups, the sandbox's docker engine). On timeout every process
   * it started is killed. Rejects only when the check could not be started at all.
   */
  execTrusted(id: string, script: string, opts: TrustedExecOptions): Promise<TrustedExecResult>;
  /** Optional: hand a running sandbox to an owner (see SandboxSpec.owner), e.g. a warm one when claimed. */
  assignOwner?(id: string, owner: string): Promise<void>;
  /** Optional: release what this driver object serves in-process (not the sandboxes themselves). */
  close?(): Promise<void>;
}

export interface Disposable {
  dispose(): void;
}

/** Sandbox ids become directory and cgroup names: keep them boring. */
export const SANDBOX_ID_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
