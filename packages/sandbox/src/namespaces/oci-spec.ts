// The OCI runtime config (config.json) that runc gets for one sandbox. Read it as the list of what
// a sandbox is: its namespaces, its user mapping, its mounts, its capabilities and its cgroup.
import { SANDBOX_ENGINE_BUNDLE, SANDBOX_ENGINE_SHIM } from "./agent-dir.js";
import { ALLOWED_DEVICES } from "./cgroups.js";
import type { HostTools } from "./host-tools.js";
import { SANDBOX_SHARED_IMAGES } from "./shared-images.js";

export interface SandboxOciOptions {
  hostname: string;
  /** The merged overlay (base rootfs + this sandbox's upper layer). */
  rootfs: string;
  /** linux.cgroupsPath: the sandbox's box cgroup (limits sit one level above it). */
  cgroupsPath: string;
  /** Host directory with the agent bundle and node-pty, mounted read-only at /opt/berth. */
  agentDir: string;
  /**
   * Host directory for the one-shot token file, at /run/berth. (The agent's socket is not in it: the
   * agent inherits its listening socket as fd AGENT_LISTEN_FD, bound by the host where the sandbox
   * cannot reach.)
   */
  runDir: string;
  /** Host directory on a real filesystem for nested overlays (the engine's state), at /var/lib/berth. */
  dataDir: string;
  /** Host uid/gid that root in the sandbox is; the sandbox maps [0, idCount) onto [idBase, idBase+idCount). */
  idBase: number;
  idCount: number;
  nodeBinary?: string;
  /** Static host binaries bound read-only: the docker CLI and busybox (for the engine's image). */
  hostTools?: HostTools;
  /** Start the container engine in the sandbox (default true). */
  engine?: boolean;
  /** Host directory of the shared image store (debian:bookworm), bound read-only at /opt/berth-images. */
  sharedImagesDir?: string;
  /**
   * Host directory holding the sandbox's registry gateway socket (registry.sock), bound read-only
   * at /run/berth-gw; the agent forwards localhost:5000 to it and the engine uses it as its mirror.
   */
  registrySocketDir?: string;
}

/** The agent's listening socket, inherited through runc create --preserve-fds 1 (fd 3 = the first extra). */
export const AGENT_LISTEN_FD = 3;
export const SANDBOX_TOKEN_FILE = "/run/berth/token";
export const SANDBOX_REGISTRY_SOCKET = "/run/berth-gw/registry.sock";
/** Inside the sandbox, the lab registry is here (the agent's forwarder). */
export const SANDBOX_REGISTRY_URL = "http://127.0.0.1:5000";

/**
 * Capabilities root keeps inside the sandbox. They are capabilities of the sandbox's user
 * namespace, so they reach only what that namespace owns; the ones left out would act on the host
 * (modules, raw I/O, clock, reboot, kernel log, device nodes, audit, MAC policy) or are not needed.
 */
export const SANDBOX_CAPABILITIES = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_DAC_READ_SEARCH",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_SETFCAP", // mapping uid 0 in a nested user namespace (unshare --map-root-user) needs it
  "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST",
  "CAP_NET_ADMIN",
  "CAP_NET_RAW",
  "CAP_IPC_LOCK",
  "CAP_IPC_OWNER",
  "CAP_SYS_CHROOT",
  "CAP_SYS_PTRACE",
  "CAP_SYS_ADMIN", // mount, unshare, pivot_root: what the course is about
  "CAP_SYS_NICE",
  "CAP_LEASE",
  "CAP_AUDIT_WRITE",
];

/**
 * Syscalls refused with EPERM. Everything else is allowed: the course needs mount, unshare, setns,
 * pivot_root and friends. The kernel keyring is per host uid, and all sandboxes share one uid range,
 * so keyctl would be a channel between sandboxes; the rest act on the host (modules, kexec, clock,
 * swap, reboot, kernel log, raw ports) or are favourite exploit tools (bpf, userfaultfd, perf events).
 */
export const SANDBOX_DENIED_SYSCALLS = [
  "add_key",
  "keyctl",
  "request_key",
  "bpf",
  "perf_event_open",
  "userfaultfd",
  "kexec_load",
  "kexec_file_load",
  "init_module",
  "finit_module",
  "delete_module",
  "open_by_handle_at",
  "iopl",
  "ioperm",
  "swapon",
  "swapoff",
  "reboot",
  "syslog",
  "acct",
  "settimeofday",
  "clock_settime",
  "clock_adjtime",
  "adjtimex",
  "lookup_dcookie",
];

export function sandboxOciConfig(o: SandboxOciOptions): object {
  const nodeBinary = o.nodeBinary ?? "/usr/bin/node";
  const caps = SANDBOX_CAPABILITIES;
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      // tini is PID 1: it reaps orphans (node cannot) and passes SIGTERM on to the agent.
      args: ["/usr/bin/tini", "--", "/usr/bin/node", "/opt/berth/agent.mjs"],
      // The agent's whole environment, fixed here on the host: nothing in the sandbox can add to it
      // (no NODE_OPTIONS, no --inspect), and a running process's environment cannot be changed.
      env: [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME=/root",
        "LANG=C.UTF-8",
        `BERTH_AGENT_LISTEN_FD=${AGENT_LISTEN_FD}`,
        // The token travels in a file the agent deletes, never in the environment (which stays
        // readable in /proc/1/environ).
        `BERTH_AGENT_TOKEN_FILE=${SANDBOX_TOKEN_FILE}`,
        // The agent starts the container engine from here once the sandbox is healthy; it serves
        // the Docker API on /var/run/docker.sock (the CLI's default) with its state in
        // /var/lib/berth/engine (a real filesystem) and its log in /var/log/berth-engine.log.
        ...(o.engine === false ? [] : [`BERTH_ENGINE_BUNDLE=${SANDBOX_ENGINE_BUNDLE}`, `BERTH_ENGINE_SHIM=${SANDBOX_ENGINE_SHIM}`]),
        // The engine links debian:bookworm's layer from this read-only store instead of copying it.
        ...(o.engine !== false && o.sharedImagesDir ? [`BERTH_ENGINE_SHARED_IMAGES=${SANDBOX_SHARED_IMAGES}`] : []),
        // The lab registry: the agent forwards localhost:5000 to the gateway socket, and the engine
        // fetches docker.io names (`docker pull nginx` = library/nginx) from it.
        ...(o.registrySocketDir ? [`BERTH_REGISTRY_SOCKET=${SANDBOX_REGISTRY_SOCKET}`, `BERTH_REGISTRY_MIRROR=${SANDBOX_REGISTRY_URL}`] : []),
      ],
      cwd: "/root",
      capabilities: { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient: [] },
      noNewPrivileges: false,
      // No oomScoreAdj: lowering it needs CAP_SYS_RESOURCE on the host. Instead the agent raises
      // its children (shells, checks) so a learner's memory hog dies before the agent.
    },
    root: { path: o.rootfs, readonly: false },
    hostname: o.hostname,
    mounts: [
      { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
      { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
      { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
      { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
      { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
      { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
      // With the cgroup namespace, each hierarchy shows the box as its root: writable, limits above.
      { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "rw"] },
      { destination: "/usr/bin/node", type: "bind", source: nodeBinary, options: ["rbind", "ro", "nosuid", "nodev"] },
      { destination: "/opt/berth", type: "bind", source: o.agentDir, options: ["rbind", "ro", "nosuid", "nodev"] },
      // Read-only, and locked so by the user namespace: root inside cannot remount it rw.
      ...(o.engine !== false && o.sharedImagesDir ? [{ destination: SANDBOX_SHARED_IMAGES, type: "bind", source: o.sharedImagesDir, options: ["rbind", "ro", "nodev"] }] : []),
      { destination: "/run/berth", type: "bind", source: o.runDir, options: ["rbind", "rw", "nosuid", "nodev", "noexec"] },
      { destination: "/var/lib/berth", type: "bind", source: o.dataDir, options: ["rbind", "rw", "nodev"] },
      // Only the gateway's socket, in a host-root-owned directory: the sandbox can connect, not
      // create files there (connecting to a socket works on a read-only mount).
      ...(o.registrySocketDir ? [{ destination: "/run/berth-gw", type: "bind", source: o.registrySocketDir, options: ["rbind", "ro", "nosuid", "nodev", "noexec"] }] : []),
      // The learner's `docker` (a static client; no CLI plugins, so no buildx) and the busybox the
      // engine makes its busybox image from. Read-only: a learner cannot swap them for the next sandbox.
      ...(o.hostTools?.dockerCli ? [{ destination: "/usr/local/bin/docker", type: "bind", source: o.hostTools.dockerCli, options: ["rbind", "ro", "nosuid", "nodev"] }] : []),
      ...(o.hostTools?.busybox ? [{ destination: "/bin/busybox", type: "bind", source: o.hostTools.busybox, options: ["rbind", "ro", "nosuid", "nodev"] }] : []),
    ],
    linux: {
      uidMappings: [{ containerID: 0, hostID: o.idBase, size: o.idCount }],
      gidMappings: [{ containerID: 0, hostID: o.idBase, size: o.idCount }],
      // No "path": each is new, and owned by the sandbox's user namespace (so root inside may
      // configure its own network). The driver adds eth0 (the uplink, network.ts) between runc
      // create and runc start; without it the namespace has only lo.
      namespaces: ["pid", "network", "ipc", "uts", "mount", "cgroup", "user"].map((type) => ({ type })),
      cgroupsPath: o.cgroupsPath,
      resources: {
        devices: [{ allow: false, access: "rwm" }, ...ALLOWED_DEVICES.map((d) => ({ allow: true, type: d.type, major: d.major === "*" ? -1 : d.major, minor: d.minor === "*" ? -1 : d.minor, access: d.access }))],
      },
      // (No masked /proc paths: in a user namespace the kernel already refuses /proc/kcore, sysrq,
      // kernel sysctls to sandbox root, and masks would break `unshare --user --mount-proc` inside.)
      maskedPaths: [],
      readonlyPaths: [],
      seccomp: {
        defaultAction: "SCMP_ACT_ALLOW",
        architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        syscalls: [{ names: SANDBOX_DENIED_SYSCALLS, action: "SCMP_ACT_ERRNO", errnoRet: 1 }],
      },
    },
  };
}
