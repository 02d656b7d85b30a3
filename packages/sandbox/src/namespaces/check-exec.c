/*
 * berth-check: runs one check (or lab setup) script in a learner's sandbox, out of the learner's
 * reach. Host root runs it; the driver compiles it at prepare() (check-exec.ts) and never commits
 * a binary.
 *
 *   berth-check --pid PID --cgroup-of PATH --base DIR [--tool HOSTFILE:NAME]... [--join FILE]...
 *
 *   --pid        the sandbox's init as the host sees it (runc create's pid file)
 *   --cgroup-of  the sandbox's box cgroup (berth/<id>/box): PID must be in it, so a recycled pid
 *                can never send the check into somebody else's namespaces
 *   --base       the sandbox's read-only base root filesystem on the host: the check's tools
 *   --tool       a static host binary (the docker CLI, busybox) put at /usr/local/bin/NAME
 *   --join       a cgroup.procs file to join first (the check counts against the sandbox's limits)
 *
 * stdin is the script (a pipe from the driver: it is never an argument and never a file), stdout
 * and stderr are the check's. Exit status: the script's, 128+N if it died of signal N, 125 if
 * berth-check itself failed (the reason on stderr, prefixed "berth-check:").
 *
 * A check's /proc is the sandbox's, where the check has no entry: /proc/self, /dev/fd, <(...),
 * procps' ps and cgroup.procs do not work in it (docs/lab-format.md; labkit lint warns).
 *
 * What the check gets, and why the learner (root in the sandbox) cannot touch it:
 *   - the sandbox's user, mount, net, uts, ipc and cgroup namespaces, so it sees the learner's
 *     files, processes (through the sandbox's /proc), network, cgroups and docker engine;
 *   - NOT the sandbox's pid namespace: PID 1 of a new one that is a child of the host's. No pid
 *     of the check exists in the sandbox, so nothing there can name it to kill, ptrace or read it;
 *   - a root of its own: a tmpfs with the base's /usr and /etc bound read-only, the host's tools,
 *     and a /dev of host device nodes; the sandbox's live state bound in (/proc, /sys, /run, /tmp,
 *     /root, /home, /var, its whole root at /sandbox). So no binary, library, ld.so.preload or
 *     PATH entry comes from the learner;
 *   - a private tmpfs at /check-tmp (TMPDIR) for what the check writes for itself;
 *   - a fixed environment (nothing inherited), then /usr/bin/bash -s with the script on stdin.
 * When the driver kills berth-check (timeout), the kernel sends SIGKILL to the check's PID 1
 * (PR_SET_PDEATHSIG), and PID 1's death kills everything left in its pid namespace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

#define MAX_LIST 32
#define FAIL_STATUS 125

/* Top-level names of the base that the check's root shares: directories are bound read-only,
 * symbolic links (merged /usr: bin -> usr/bin) are copied. Nothing else of the base is used. */
static const char *BASE_ENTRIES[] = {"usr", "etc", "bin", "sbin", "lib", "lib32", "lib64", "libx32"};
#define N_BASE (sizeof BASE_ENTRIES / sizeof *BASE_ENTRIES)

/* The sandbox's live state, bound at the same path (or / at /sandbox). Missing ones are left
 * out: the learner may delete /home, and the check then sees what the learner sees. */
static const char *LIVE_DIRS[] = {"proc", "sys", "run", "tmp", "root", "home", "var"};
#define N_LIVE (sizeof LIVE_DIRS / sizeof *LIVE_DIRS)

/* Files of the sandbox's /etc that are state, not code: names and the nameserver it uses. */
static const char *LIVE_ETC_FILES[] = {"hosts", "resolv.conf"};
#define N_LIVE_ETC (sizeof LIVE_ETC_FILES / sizeof *LIVE_ETC_FILES)

/* Device nodes the check gets, the host's own (a learner can replace the sandbox's /dev/null). */
static const char *DEVICES[] = {"null", "zero", "full", "random", "urandom", "tty"};
#define N_DEV (sizeof DEVICES / sizeof *DEVICES)

static const char *CHECK_ENV[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    /* HOME points at the check's read-only root, not at the learner's /root: docker, wget, git
     * and friends read their settings from there (a learner's ~/.docker/config.json could reformat
     * `docker ps`). curl also tries the home in /etc/passwd (/root) when it finds no .curlrc in
     * CURL_HOME, XDG_CONFIG_HOME or HOME, so CURL_HOME names a directory that has an empty one. */
    "HOME=/",
    "CURL_HOME=/",
    "LANG=C.UTF-8",
    "TERM=dumb",
    /* bash keeps a here-document over 64 KiB in a temporary file: in the check's own tmpfs, not
     * in the sandbox's /tmp where the learner could read it (labkit wraps every script in one). */
    "TMPDIR=/check-tmp",
    NULL,
};

struct options {
  pid_t pid;
  const char *cgroup_of;
  const char *base;
  const char *tool_src[MAX_LIST];
  const char *tool_name[MAX_LIST];
  int n_tools;
  const char *join[MAX_LIST];
  int n_join;
};

static void die(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  dprintf(2, "berth-check: %s\n", msg);
  _exit(FAIL_STATUS);
}

static void usage(void) {
  die("usage: berth-check --pid PID --cgroup-of PATH --base DIR [--tool HOSTFILE:NAME]... [--join FILE]...");
}

static void parse(int argc, char **argv, struct options *o) {
  memset(o, 0, sizeof *o);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) usage();
    i++;
    if (!strcmp(a, "--pid")) o->pid = (pid_t)atoi(v);
    else if (!strcmp(a, "--cgroup-of")) o->cgroup_of = v;
    else if (!strcmp(a, "--base")) o->base = v;
    else if (!strcmp(a, "--tool")) {
      const char *colon = strrchr(v, ':');
      if (!colon || o->n_tools == MAX_LIST || strchr(colon + 1, '/') || !colon[1]) usage();
      o->tool_src[o->n_tools] = strndup(v, (size_t)(colon - v));
      o->tool_name[o->n_tools++] = colon + 1;
    } else if (!strcmp(a, "--join")) {
      if (o->n_join == MAX_LIST) usage();
      o->join[o->n_join++] = v;
    } else usage();
  }
  if (o->pid <= 1 || !o->cgroup_of || !o->base) usage();
}

/* 1. The sandbox's init, pinned by a pidfd, and proven to be that sandbox's by its cgroup. */
static int open_sandbox(const struct options *o) {
  int pidfd = (int)syscall(SYS_pidfd_open, o->pid, 0);
  if (pidfd < 0) die("pidfd_open(%d): %s (is the sandbox running?)", o->pid, strerror(errno));
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/cgroup", o->pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open %s: %s", path, strerror(errno));
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) die("read %s: %s", path, n < 0 ? strerror(errno) : "empty");
  buf[n] = 0;
  /* every line is "N:controllers:/path"; one must name the box exactly */
  int found = 0;
  size_t want = strlen(o->cgroup_of);
  for (char *line = strtok(buf, "\n"); line && !found; line = strtok(NULL, "\n")) {
    char *p = strchr(line, ':');
    p = p ? strchr(p + 1, ':') : NULL;
    if (p && p[1] == '/' && strlen(p + 2) == want && !strncmp(p + 2, o->cgroup_of, want)) found = 1;
  }
  if (!found) die("process %d is not in cgroup %s: not this sandbox's init", o->pid, o->cgroup_of);
  /* The pidfd was opened before the check: if the process is still alive now, it is the one. */
  if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0) die("the sandbox's init (%d) is gone", o->pid);
  return pidfd;
}

/* A detached copy of one host path (a bind mount nobody sees yet), read-only, no setuid. */
static int clone_host(const char *path, int read_only) {
  int fd = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (fd < 0) die("open_tree %s: %s", path, strerror(errno));
  struct mount_attr attr = {.attr_set = MOUNT_ATTR_NOSUID | (read_only ? MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV : 0)};
  if (mount_setattr(fd, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0) die("mount_setattr %s: %s", path, strerror(errno));
  return fd;
}

/* Attaches a detached mount at `name` under the new root (made first: a directory or an empty file). */
static void attach(int tree, int rootfd, const char *name, int is_dir) {
  if (is_dir) {
    if (mkdirat(rootfd, name, 0755) < 0 && errno != EEXIST) die("mkdir %s: %s", name, strerror(errno));
  } else {
    int f = openat(rootfd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (f < 0 && errno != EEXIST && errno != EROFS) die("create %s: %s", name, strerror(errno));
    if (f >= 0) close(f);
  }
  if (move_mount(tree, "", rootfd, name, MOVE_MOUNT_F_EMPTY_PATH) < 0) die("move_mount onto %s: %s", name, strerror(errno));
  close(tree);
}

static int is_dir_fd(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
}

int main(int argc, char **argv) {
  struct options o;
  parse(argc, argv, &o);
  /* Our own stray descriptors must not reach the check: only 0, 1 and 2 are inherited. */
  for (int fd = 3; fd < 1024; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC);
  /* If the driver dies, so does the check (berth-check's death kills PID 1, see below). */
  prctl(PR_SET_PDEATHSIG, SIGKILL);

  int pidfd = open_sandbox(&o);

  /* 2. The check's cgroups (one per v1 hierarchy, or one v2 leaf): a sibling of the sandbox's box,
   * under the sandbox's limits, outside the part the learner sees and controls. */
  for (int i = 0; i < o.n_join; i++) {
    int fd = open(o.join[i], O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "0", 1) != 1) die("join cgroup %s: %s", o.join[i], strerror(errno));
    close(fd);
  }

  /* 3. The trusted pieces, cloned while we still see the host's mounts. */
  int base_fd = open(o.base, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (base_fd < 0) die("open base %s: %s", o.base, strerror(errno));
  int base_tree[N_BASE];
  char base_link[N_BASE][256];
  for (size_t i = 0; i < N_BASE; i++) {
    base_tree[i] = -1;
    base_link[i][0] = 0;
    struct stat st;
    if (fstatat(base_fd, BASE_ENTRIES[i], &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
    if (S_ISLNK(st.st_mode)) {
      ssize_t n = readlinkat(base_fd, BASE_ENTRIES[i], base_link[i], sizeof base_link[i] - 1);
      if (n <= 0) die("readlink %s/%s: %s", o.base, BASE_ENTRIES[i], strerror(errno));
      base_link[i][n] = 0;
    } else if (S_ISDIR(st.st_mode)) {
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", o.base, BASE_ENTRIES[i]);
      base_tree[i] = clone_host(path, 1);
    }
  }
  int tool_tree[MAX_LIST];
  for (int i = 0; i < o.n_tools; i++) tool_tree[i] = clone_host(o.tool_src[i], 1);
  int dev_tree[N_DEV];
  for (size_t i = 0; i < N_DEV; i++) {
    char path[64];
    snprintf(path, sizeof path, "/dev/%s", DEVICES[i]);
    dev_tree[i] = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (dev_tree[i] < 0) die("open_tree %s: %s", path, strerror(errno));
  }

  /* 4. A pid namespace of the check's own, a child of the host's: the learner cannot name it. */
  if (unshare(CLONE_NEWPID) < 0) die("unshare(CLONE_NEWPID): %s", strerror(errno));
  /* A pipe only to know, in the child, that this process is still alive after PDEATHSIG is set. */
  int alive[2];
  if (pipe2(alive, O_CLOEXEC) < 0) die("pipe: %s", strerror(errno));
  pid_t child = fork();
  if (child < 0) die("fork: %s", strerror(errno));
  if (child > 0) {
    close(alive[0]);
    close(0);
    int status;
    while (waitpid(child, &status, 0) < 0) {
      if (errno != EINTR) die("waitpid: %s", strerror(errno));
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
  }
  close(alive[1]);

  /* 5. The sandbox's namespaces, all but pid, entered at once (the kernel orders user first). */
  if (setns(pidfd, CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP) < 0)
    die("setns into the sandbox: %s", strerror(errno));
  close(pidfd);
  /* Root of the sandbox (host root is not mapped in its user namespace; files we make need an owner). */
  if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) die("become the sandbox's root: %s", strerror(errno));

  /* 6. A private copy of the sandbox's mount table: nothing we mount reaches the learner. */
  if (unshare(CLONE_NEWNS) < 0) die("unshare(CLONE_NEWNS): %s", strerror(errno));
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) die("make / private: %s", strerror(errno));

  /* 7. The learner's live state, cloned before anything covers it. */
  int live_tree[N_LIVE];
  for (size_t i = 0; i < N_LIVE; i++) {
    char path[64];
    snprintf(path, sizeof path, "/%s", LIVE_DIRS[i]);
    live_tree[i] = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (live_tree[i] >= 0 && !is_dir_fd(live_tree[i])) {
      close(live_tree[i]);
      live_tree[i] = -1;
    }
    if (live_tree[i] < 0 && !strcmp(LIVE_DIRS[i], "proc")) die("the sandbox has no /proc (%s)", strerror(errno));
  }
  int etc_tree[N_LIVE_ETC];
  for (size_t i = 0; i < N_LIVE_ETC; i++) {
    char path[64];
    snprintf(path, sizeof path, "/etc/%s", LIVE_ETC_FILES[i]);
    struct stat st;
    etc_tree[i] = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (etc_tree[i] >= 0 && (fstat(etc_tree[i], &st) < 0 || !S_ISREG(st.st_mode))) {
      close(etc_tree[i]);
      etc_tree[i] = -1;
    }
  }
  int sandbox_tree = open_tree(AT_FDCWD, "/", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  if (sandbox_tree < 0) die("open_tree / of the sandbox: %s", strerror(errno));

  /* 8. The new root: a small tmpfs laid over /proc of our private copy (any directory would do;
   * /proc exists in every sandbox). Everything else is attached under it. */
  const char *NEW_ROOT = "/proc";
  if (mount("berth-check", NEW_ROOT, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k") < 0) die("mount the check's root: %s", strerror(errno));
  int root = open(NEW_ROOT, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) die("open the check's root: %s", strerror(errno));
  for (size_t i = 0; i < N_BASE; i++) {
    if (base_tree[i] >= 0) attach(base_tree[i], root, BASE_ENTRIES[i], 1);
    else if (base_link[i][0] && symlinkat(base_link[i], root, BASE_ENTRIES[i]) < 0) die("symlink %s: %s", BASE_ENTRIES[i], strerror(errno));
  }
  if (o.n_tools) {
    /* The host's static tools, each an empty file covered by a read-only bind (/usr is read-only). */
    if (mount("berth-check", "/proc/usr/local/bin", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16k") < 0) die("mount /usr/local/bin: %s", strerror(errno));
    int bin = open("/proc/usr/local/bin", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (bin < 0) die("open /usr/local/bin: %s", strerror(errno));
    for (int i = 0; i < o.n_tools; i++) attach(tool_tree[i], bin, o.tool_name[i], 0);
    close(bin);
    if (mount(NULL, "/proc/usr/local/bin", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0) die("read-only /usr/local/bin: %s", strerror(errno));
  }
  for (size_t i = 0; i < N_LIVE_ETC; i++)
    if (etc_tree[i] >= 0) attach(etc_tree[i], root, i == 0 ? "etc/hosts" : "etc/resolv.conf", 0);

  /* /dev: a tmpfs with the host's device nodes bound in, and the usual links. */
  if (mkdirat(root, "dev", 0755) < 0) die("mkdir dev: %s", strerror(errno));
  if (mount("berth-check", "/proc/dev", "tmpfs", MS_NOSUID, "mode=0755,size=16k") < 0) die("mount /dev: %s", strerror(errno));
  int dev = open("/proc/dev", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dev < 0) die("open /dev: %s", strerror(errno));
  for (size_t i = 0; i < N_DEV; i++) attach(dev_tree[i], dev, DEVICES[i], 0);
  /* (These point into the sandbox's /proc, where the check has no pid: see docs/lab-format.md.) */
  symlinkat("/proc/self/fd", dev, "fd");
  symlinkat("/proc/self/fd/0", dev, "stdin");
  symlinkat("/proc/self/fd/1", dev, "stdout");
  symlinkat("/proc/self/fd/2", dev, "stderr");
  close(dev);

  for (size_t i = 0; i < N_LIVE; i++) {
    if (live_tree[i] >= 0) attach(live_tree[i], root, LIVE_DIRS[i], 1);
    else if (mkdirat(root, LIVE_DIRS[i], 0755) < 0) die("mkdir %s: %s", LIVE_DIRS[i], strerror(errno));
  }
  attach(sandbox_tree, root, "sandbox", 1);
  if (mkdirat(root, "check-tmp", 0700) < 0) die("mkdir check-tmp: %s", strerror(errno));
  if (mount("berth-check", "/proc/check-tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700,size=64m") < 0) die("mount /check-tmp: %s", strerror(errno));
  int curlrc = openat(root, ".curlrc", O_WRONLY | O_CREAT | O_CLOEXEC, 0444); /* see CURL_HOME */
  if (curlrc < 0) die("create /.curlrc: %s", strerror(errno));
  close(curlrc);
  close(root);

  /* 9. Into the new root; the sandbox's own root (still on top after pivot_root(".", ".")) goes. */
  if (chdir(NEW_ROOT) < 0) die("chdir to the check's root: %s", strerror(errno));
  if (syscall(SYS_pivot_root, ".", ".") < 0) die("pivot_root: %s", strerror(errno));
  if (umount2(".", MNT_DETACH) < 0) die("detach the sandbox's root: %s", strerror(errno));
  if (chdir("/") < 0) die("chdir /: %s", strerror(errno));
  if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0) die("read-only root: %s", strerror(errno));
  /* The check starts in /root when the sandbox has one, as a learner's shell does. */
  if (chdir("/root") < 0 && chdir("/") < 0) die("chdir: %s", strerror(errno));

  /* 10. Die with berth-check (the driver's timeout kills it), set now: changing credentials above
   * would have cleared it. If berth-check is already gone, the pipe says so. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  struct pollfd pfd = {.fd = alive[0], .events = POLLIN};
  if (poll(&pfd, 1, 0) != 0) _exit(FAIL_STATUS);
  close(alive[0]);

  /* 11. The check: trusted bash, fixed environment, the script on stdin. */
  char *const args[] = {"bash", "-s", NULL};
  execve("/usr/bin/bash", args, (char *const *)CHECK_ENV);
  die("exec /usr/bin/bash: %s", strerror(errno));
}
