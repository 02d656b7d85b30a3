// A throwaway sandbox made on the host with unshare, for `labkit test` and labkit's own tests when
// @berth/sandbox is not at hand. Not a security boundary (same root filesystem, same user), but a
// real isolated shell of the kind a learner gets: its own pid, mount, uts, ipc, net and cgroup
// namespaces, fresh tmpfs on /root, /tmp and /run, and a writable cgroup subtree of its own mounted
// at /sys/fs/cgroup (the host's v1 controllers, or cgroup2). Needs root.
//
// Lifecycle: create() makes host cgroups labkit-<id>, starts an init (PID 1 of the new pid
// namespace, a shell that reaps orphans); exec() joins that init's namespaces and cgroups with
// nsenter and runs `bash -s`; dispose() kills the init, which takes every process of the namespace
// with it, then removes the cgroups.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, readdir, rmdir, stat, writeFile, mkdir } from "node:fs/promises";
import { constants } from "node:os";
import path from "node:path";
import type { LabRunner } from "../test-lab.js";

const CGROUP_ROOT = "/sys/fs/cgroup";

export interface DisposableRunner extends LabRunner {
  dispose(): Promise<void>;
}

interface V1Hierarchy {
  /** e.g. /sys/fs/cgroup/memory */
  mountPoint: string;
  /** mount -o options that name the hierarchy, e.g. "memory" or "cpu,cpuacct" */
  options: string;
}

/** The v1 controller hierarchies mounted on the host (named ones like name=systemd are left out). */
async function v1Hierarchies(): Promise<V1Hierarchy[]> {
  const info = await readFile("/proc/self/mountinfo", "utf8");
  const out: V1Hierarchy[] = [];
  for (const line of info.split("\n")) {
    const [pre, post] = line.split(" - ");
    if (!pre || !post) continue;
    const [fstype, , superOpts] = post.split(" ");
    const mountPoint = pre.split(" ")[4]!;
    if (fstype !== "cgroup" || path.dirname(mountPoint) !== CGROUP_ROOT) continue;
    const controllers = superOpts!.split(",").filter((o) => o !== "rw" && o !== "ro" && !o.startsWith("name=") && !o.includes("="));
    if (controllers.length === 0) continue;
    out.push({ mountPoint, options: controllers.join(",") });
  }
  return out;
}

export async function createHostNamespacesRunner(): Promise<DisposableRunner> {
  if (process.getuid?.() !== 0) throw new Error("the host namespaces runner needs root (unshare, nsenter, cgroups)");
  const name = `labkit-${process.pid}-${randomBytes(3).toString("hex")}`;
  const v2 = existsSync(path.join(CGROUP_ROOT, "cgroup.controllers"));
  const v1 = v2 ? [] : await v1Hierarchies();

  // Host-side cgroups: the sandbox's own subtree, with limits so a lab's memory hog or fork bomb
  // stays inside it whatever the lab does.
  const created: string[] = [];
  /** cgroup.procs files a process writes its pid into to join the sandbox. */
  const joinFiles: string[] = [];
  if (v2) {
    // memory and pids must reach the sandbox's cgroup for a lab to hand them further down
    await writeFile(path.join(CGROUP_ROOT, "cgroup.subtree_control"), "+memory +pids").catch(() => {});
    const dir = path.join(CGROUP_ROOT, name);
    await mkdir(dir);
    created.push(dir);
    await writeFile(path.join(dir, "memory.max"), String(1024 * 1024 * 1024)).catch(() => {});
    await writeFile(path.join(dir, "pids.max"), "1024").catch(() => {});
    joinFiles.push(path.join(dir, "cgroup.procs"));
  } else {
    for (const h of v1) {
      const dir = path.join(h.mountPoint, name);
      await mkdir(dir);
      created.push(dir);
      if (h.options.split(",").includes("cpuset")) {
        for (const f of ["cpuset.cpus", "cpuset.mems"]) {
          await writeFile(path.join(dir, f), await readFile(path.join(h.mountPoint, f), "utf8"));
        }
      }
      if (h.options.split(",").includes("memory")) await writeFile(path.join(dir, "memory.limit_in_bytes"), String(1024 * 1024 * 1024));
      if (h.options.split(",").includes("pids")) await writeFile(path.join(dir, "pids.max"), "1024");
      joinFiles.push(path.join(dir, "cgroup.procs"));
    }
  }

  // Inside the new namespaces: private mounts, then the cgroup tree seen from the cgroup namespace.
  const mountCgroups = v2
    ? [
        // Like a Berth sandbox on v2: the box's own processes sit in the namespace's root cgroup,
        // so a lab meets v2's "no internal processes" rule exactly as a learner would.
        `mount -t cgroup2 cgroup2 ${CGROUP_ROOT}`,
      ]
    : [
        `mount -t tmpfs -o mode=755 cgroup ${CGROUP_ROOT}`,
        ...v1.flatMap((h) => {
          const dir = path.join(CGROUP_ROOT, path.basename(h.mountPoint));
          return [`mkdir -p ${dir}`, `mount -t cgroup -o ${h.options} cgroup ${dir}`];
        }),
        ...v1.flatMap((h) => {
          // co-mounted controllers (cpu,cpuacct) get the usual symlinks
          const base = path.basename(h.mountPoint);
          const parts = h.options.split(",");
          return parts.length > 1 && base.includes(",") ? parts.map((p) => `ln -sfn ${base} ${CGROUP_ROOT}/${p}`) : [];
        }),
      ];
  const inner = [
    "set -e",
    "hostname berth-sandbox",
    "mount -t tmpfs -o mode=700 root /root",
    "mount -t tmpfs -o mode=1777 tmp /tmp",
    "mount -t tmpfs -o mode=755 run /run",
    ...mountCgroups,
    "ip link set lo up",
    "echo ready",
    "set +e",
    // PID 1 must reap the orphans the lab leaves behind; bash reaps any child when SIGCHLD comes.
    "exec bash -c 'trap \"\" HUP; while :; do sleep 3600 & wait $!; done' </dev/null >/dev/null 2>&1",
  ].join("\n");
  const join = joinFiles.map((f) => `echo $$ > ${f}`).join("; ");
  const init = spawn(
    "bash",
    ["-c", `${join}\nexec unshare --pid --fork --kill-child --mount-proc --uts --ipc --net --mount --cgroup --propagation private bash -c "$1"`, "labkit-init", inner],
    { detached: true, stdio: ["ignore", "pipe", "pipe"] },
  );
  const cleanupCgroups = async () => {
    for (const dir of created) await removeCgroupTree(dir);
  };
  try {
    await waitForReady(init);
  } catch (e) {
    init.kill("SIGKILL");
    await cleanupCgroups();
    throw e;
  }
  const initPid = await childOf(init.pid!);
  // On v2 a lab may move the box's processes into a leaf (to enable controllers at the top):
  // a script then joins whatever cgroup PID 1 is in now, as the children of a sandbox's agent do.
  const execJoin = v2
    ? `echo $$ > "${CGROUP_ROOT}$(sed -n 's/^0:://p' /proc/${initPid}/cgroup)/cgroup.procs"`
    : join;

  let disposed = false;
  return {
    exec(script, { timeoutMs }) {
      if (disposed) return Promise.reject(new Error("the sandbox is disposed"));
      return new Promise((resolve, reject) => {
        const child = spawn("bash", ["-c", `${execJoin}\nexec nsenter --target ${initPid} --all -- bash -s`], {
          detached: true,
          stdio: ["pipe", "pipe", "pipe"],
        });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout!.on("data", (b: Buffer) => out.push(b));
        child.stderr!.on("data", (b: Buffer) => err.push(b));
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          try {
            process.kill(-child.pid!, "SIGKILL");
          } catch {
            /* already gone */
          }
        }, timeoutMs);
        child.on("error", (e) => {
          clearTimeout(timer);
          reject(e);
        });
        child.on("close", (code, signal) => {
          clearTimeout(timer);
          resolve({
            exitCode: code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0),
            stdout: Buffer.concat(out).toString("utf8"),
            stderr: Buffer.concat(err).toString("utf8"),
            timedOut,
          });
        });
        child.stdin!.on("error", () => {}); // the script may exit before reading all of its input
        child.stdin!.end(script);
      });
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      // unshare --kill-child takes PID 1 with it, and the kernel then kills the whole namespace.
      const closed = new Promise((r) => init.once("close", r));
      init.kill("SIGKILL");
      await closed;
      await cleanupCgroups();
    },
  };
}

function waitForReady(init: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`the sandbox did not start within 10 s: ${err.trim()}`)), 10_000);
    init.stdout!.on("data", (b: Buffer) => {
      out += b.toString();
      if (out.includes("ready\n")) {
        clearTimeout(timer);
        resolve();
      }
    });
    init.stderr!.on("data", (b: Buffer) => (err += b.toString()));
    init.once("close", (code) => {
      clearTimeout(timer);
      reject(new Error(`the sandbox's init exited (${code}) before it was ready: ${err.trim()}`));
    });
  });
}

/** The pid of unshare's forked child: PID 1 of the new pid namespace, seen from the host. */
async function childOf(pid: number): Promise<number> {
  const children = (await readFile(`/proc/${pid}/task/${pid}/children`, "utf8")).trim().split(/\s+/);
  if (!children[0]) throw new Error(`unshare (pid ${pid}) has no child`);
  return Number(children[0]);
}

/** rmdir a cgroup and everything a lab made under it, deepest first, waiting for dying processes. */
async function removeCgroupTree(dir: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await removeOnce(dir);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (attempt >= 50) throw new Error(`could not remove cgroup ${dir}: ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function removeOnce(dir: string): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) await removeOnce(path.join(dir, e.name));
  }
  if ((await stat(dir).catch(() => null)) !== null) await rmdir(dir);
}

