/*
 * berth-shim: the few system calls Node cannot make.
 *
 * Node has no unshare(2), setns(2), pivot_root(2), mount(2) or netlink socket. This program makes
 * exactly those calls and nothing else of interest: the engine (TypeScript) decides what a
 * container is, this file only carries it out. It also does the two steps the engine once ran
 * other programs for (`mount -t overlay` for the rootfs, `ip` for the veth pairs): on a busy
 * two-core host each process the engine started cost a `docker run` tens of milliseconds. It is compiled by the engine at first start (see shim.ts) with the
 * machine's C compiler; no binary is ever committed.
 *
 *   berth-shim run  [options] -- cmd args...   start a container: new pid, mount, uts, ipc, net
 *                                               namespaces, pivot_root into --rootfs, exec cmd
 *   berth-shim ready                            started ahead of time: reads the "run" command
 *                                               line from fd 3, then goes on as above
 *   berth-shim exec --target PID [options] -- cmd args...
 *                                               join the namespaces of PID and exec cmd there
 *
 * The conversation with the engine, on two extra pipes:
 *   fd 3 (engine -> shim): "go\n" once the engine has put the child in its cgroups,
 *                          "resize ROWS COLS\n" for a tty.
 *   fd 4 (shim -> engine): "pid N\n" as soon as the child exists (namespaces made, veth pairs
 *                          plugged in, nothing run yet),
 *                          "started\n" or "error MESSAGE\n" after execve, "exit N\n" at the end.
 *                          Before "started", the child also reports every step it took, one line
 *                          each: "report\tKIND\tLINE\tFIELD..." (LINE: this file's line that did it;
 *                          fields escaped: \\ \t \n). The engine builds the container's recipe from
 *                          these lines only (src/recipe/), so the recipe says what the kernel was
 *                          asked and what it answered, fallbacks included. KINDs: ns, mount,
 *                          fallback, mounted (the kernel's mountinfo line, before pivot_root),
 *                          rootfs and netlink (from the shim itself, before "pid": the overlay it
 *                          mounted, each veth step as the `ip` command it stands for),
 *                          hostname, sysctl, cgroup (/proc/self/cgroup), cwd, caps, user, exec.
 * Without a tty the child's stdin/stdout/stderr are the shim's own fds 0, 1, 2 (pipes from the
 * engine), so stdout and stderr stay apart. With a tty the child opens a console inside its own
 * /dev/pts, hands the master back over a socket (SCM_RIGHTS) and the shim relays bytes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/route.h>
#include <linux/capability.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

#define CTL_FD 3
#define STATUS_FD 4
#define MAX_LIST 256

struct options {
  int exec_mode;
  pid_t target;            /* exec: the container's init, seen from the host */
  const char *rootfs;      /* run: the overlay's merged dir, mounted by the engine */
  const char *hostname;
  const char *cwd;
  uid_t uid;
  gid_t gid;
  gid_t groups[64];
  int ngroups;
  char *env[MAX_LIST + 1];
  int nenv;
  const char *binds[MAX_LIST]; /* "source:destination[:ro]" */
  int nbinds;
  const char *tmpfs[MAX_LIST]; /* "DEST:FLAGS:DATA" (mount(2) flags in decimal) */
  int ntmpfs;
  unsigned long long caps; /* bit n set = keep capability n */
  int tty, readonly, no_new_privs, host_net;
  const char *netns;       /* run: join this network namespace (--network container:x) */
  int host_pid, host_uts;  /* --pid host, --uts host: keep the engine's namespace */
  int privileged;          /* --privileged: /sys writable */
  const char *exit_file;   /* --exit-file: live restore; the exit code is also written here */
  const char *pidns;       /* --pid container:x: join this pid namespace */
  const char *domainname;
  const char *sysctls[MAX_LIST]; /* "key=value" (--sysctl), written inside the new namespaces */
  int nsysctls;
  const char *rlimits[MAX_LIST]; /* "RESOURCE:SOFT:HARD" (--ulimit; resource by number) */
  int nrlimits;
  const char *oom_score_adj;
  unsigned short rows, cols;
  const char *overlay;     /* --overlay DATA: mount the rootfs (an overlay with these options) first */
  int unmount_at_exit;     /* --unmount-at-exit: `docker run --rm`, the rootfs goes with the container */
  const char *veths[16];   /* "HOSTIF,IFACE,MAC,BRIDGE,ADDR/PREFIX,GATEWAY|-" (--veth), see plug_veths */
  int nveths;
  char **argv;
};

static int error_pipe = -1; /* child -> shim, close-on-exec: silence means execve worked */
static int fail_to_engine;  /* the shim itself, plugging in the network: a failure is an "error" line */

/* Report a setup failure in runc's words and stop the child. */
static void fail(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (error_pipe >= 0) {
    ssize_t ignored = write(error_pipe, msg, strlen(msg));
    (void)ignored;
  } else if (fail_to_engine) {
    char line[1100];
    int n = snprintf(line, sizeof line, "error %s\n", msg);
    ssize_t ignored = write(STATUS_FD, line, n < (int)sizeof line ? n : (int)sizeof line - 1);
    (void)ignored;
  } else {
    fprintf(stderr, "berth-shim: %s\n", msg);
  }
  _exit(127);
}

static void status(const char *fmt, ...) {
  char line[1200];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof line - 1) n = sizeof line - 1;
  ssize_t ignored = write(STATUS_FD, line, n);
  (void)ignored;
}

/* Set in the child: its copy of STATUS_FD, close-on-exec, so reports stop at execve. */
static int report_fd = -1;

/* One report line: KIND, the line of this file that acted, then fields (escaped). */
static void report_at(int line, const char *kind, int n, ...) {
  if (report_fd < 0) return;
  char out[8192];
  size_t len = (size_t)snprintf(out, sizeof out, "report\t%s\t%d", kind, line);
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; i++) {
    const char *f = va_arg(ap, const char *);
    if (len < sizeof out - 1) out[len++] = '\t';
    for (; f && *f && len < sizeof out - 3; f++) {
      char c = *f;
      if (c == '\\' || c == '\t' || c == '\n') { out[len++] = '\\'; out[len++] = c == '\t' ? 't' : c == '\n' ? 'n' : '\\'; }
      else out[len++] = c;
    }
  }
  va_end(ap);
  out[len++] = '\n';
  ssize_t ignored = write(report_fd, out, len);
  (void)ignored;
}
#define NARGS(...) NARGS_(__VA_ARGS__, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define NARGS_(a, b, c, d, e, f, g, h, N, ...) N
#define REPORT(kind, ...) report_at(__LINE__, kind, NARGS(__VA_ARGS__), __VA_ARGS__)

/* mount(2) flags as words, for the report. */
static const char *flag_words(unsigned long flags, char *buf, size_t size) {
  static const struct { unsigned long bit; const char *word; } names[] = {
      {MS_RDONLY, "ro"}, {MS_NOSUID, "nosuid"}, {MS_NODEV, "nodev"}, {MS_NOEXEC, "noexec"},
      {MS_REMOUNT, "remount"}, {MS_BIND, "bind"}, {MS_REC, "rec"}, {MS_PRIVATE, "private"},
      {MS_STRICTATIME, "strictatime"}, {MS_NOATIME, "noatime"}, {MS_NODIRATIME, "nodiratime"}, {MS_RELATIME, "relatime"}};
  size_t len = 0;
  buf[0] = 0;
  for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
    if (flags & names[i].bit) len += snprintf(buf + len, len < size ? size - len : 0, "%s%s", len ? "," : "", names[i].word);
  return buf;
}

static void parse(int argc, char **argv, struct options *o) {
  memset(o, 0, sizeof *o);
  o->cwd = "/";
  o->caps = ~0ULL;
  if (argc < 2) fail("usage: berth-shim run|exec [options] -- cmd...");
  o->exec_mode = strcmp(argv[1], "exec") == 0;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--") == 0) { o->argv = &argv[i + 1]; return; }
    if (strcmp(a, "--tty") == 0) { o->tty = 1; continue; }
    if (strcmp(a, "--read-only") == 0) { o->readonly = 1; continue; }
    if (strcmp(a, "--no-new-privileges") == 0) { o->no_new_privs = 1; continue; }
    if (strcmp(a, "--host-network") == 0) { o->host_net = 1; continue; }
    if (strcmp(a, "--host-pid") == 0) { o->host_pid = 1; continue; }
    if (strcmp(a, "--host-uts") == 0) { o->host_uts = 1; continue; }
    if (strcmp(a, "--privileged") == 0) { o->privileged = 1; continue; }
    if (strcmp(a, "--unmount-at-exit") == 0) { o->unmount_at_exit = 1; continue; }
    if (strcmp(a, "--stdin-null") == 0) continue; /* handled before parsing (ready mode) */
    if (!v) fail("option %s needs a value", a);
    i++;
    if (strcmp(a, "--target") == 0) o->target = atoi(v);
    else if (strcmp(a, "--rootfs") == 0) o->rootfs = v;
    else if (strcmp(a, "--hostname") == 0) o->hostname = v;
    else if (strcmp(a, "--netns") == 0) o->netns = v;
    else if (strcmp(a, "--pidns") == 0) o->pidns = v;
    else if (strcmp(a, "--exit-file") == 0) o->exit_file = v;
    else if (strcmp(a, "--domainname") == 0) o->domainname = v;
    else if (strcmp(a, "--sysctl") == 0 && o->nsysctls < MAX_LIST) o->sysctls[o->nsysctls++] = v;
    else if (strcmp(a, "--rlimit") == 0 && o->nrlimits < MAX_LIST) o->rlimits[o->nrlimits++] = v;
    else if (strcmp(a, "--oom-score-adj") == 0) o->oom_score_adj = v;
    else if (strcmp(a, "--cwd") == 0) o->cwd = v;
    else if (strcmp(a, "--uid") == 0) o->uid = strtoul(v, NULL, 10);
    else if (strcmp(a, "--gid") == 0) o->gid = strtoul(v, NULL, 10);
    else if (strcmp(a, "--group") == 0 && o->ngroups < 64) o->groups[o->ngroups++] = strtoul(v, NULL, 10);
    else if (strcmp(a, "--env") == 0 && o->nenv < MAX_LIST) o->env[o->nenv++] = (char *)v;
    else if (strcmp(a, "--bind") == 0 && o->nbinds < MAX_LIST) o->binds[o->nbinds++] = v;
    else if (strcmp(a, "--tmpfs") == 0 && o->ntmpfs < MAX_LIST) o->tmpfs[o->ntmpfs++] = v;
    else if (strcmp(a, "--caps") == 0) o->caps = strtoull(v, NULL, 16);
    else if (strcmp(a, "--overlay") == 0) o->overlay = v;
    else if (strcmp(a, "--veth") == 0 && o->nveths < 16) o->veths[o->nveths++] = v;
    else if (strcmp(a, "--size") == 0) sscanf(v, "%hu,%hu", &o->rows, &o->cols);
    else fail("unknown option %s", a);
  }
  fail("no command given (missing --)");
}

/* ---------- steps inside the new namespaces ---------- */

/* mount(2), reported with the caller's line: "mount DST SOURCE TYPE FLAGS DATA". */
static int mount_reported(int line, const char *src, const char *dst, const char *type, unsigned long flags, const char *data) {
  if (mount(src, dst, type, flags, data) < 0) return -1;
  char words[200];
  report_at(line, "mount", 5, dst, src ? src : "", type ? type : "", flag_words(flags, words, sizeof words), data ? data : "");
  return 0;
}
static void mount_at(int line, const char *src, const char *dst, const char *type, unsigned long flags, const char *data) {
  if (mount_reported(line, src, dst, type, flags, data) < 0) fail("mount %s on %s (%s): %s", src ? src : "none", dst, type ? type : "bind", strerror(errno));
}
#define mount_or_fail(...) mount_at(__LINE__, __VA_ARGS__)

static void mkdir_p(const char *path, mode_t mode) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p == '/') { *p = 0; mkdir(buf, mode); *p = '/'; }
  }
  mkdir(buf, mode);
}

/*
 * Make a bind mount read-only. Inside a user namespace (the engine nested in a learner's sandbox)
 * the kernel refuses a remount that would clear flags the outer namespace locked (nosuid, nodev,
 * noexec, atime), so keep every flag the mount already has and add MS_RDONLY.
 */
static void remount_bind_readonly(const char *dst) {
  struct statvfs sv;
  unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;
  if (statvfs(dst, &sv) == 0) {
    if (sv.f_flag & ST_NOSUID) flags |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV) flags |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME) flags |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  }
  mount_or_fail(NULL, dst, NULL, flags, NULL);
}

/*
 * A device node for the container's /dev. mknod needs CAP_MKNOD in the initial user namespace:
 * on a host it works; nested in a sandbox (a user namespace) it fails with EPERM, and then the
 * engine's own node of the same name (/dev/null of the sandbox, still reachable before
 * pivot_root) is bind-mounted onto an empty file instead, which is how runc handles rootless.
 */
static void make_device(const char *at, const char *name, unsigned maj, unsigned min) {
  if (mknod(at, S_IFCHR | 0666, makedev(maj, min)) == 0) {
    chmod(at, 0666); /* mknod honours the umask */
    return;
  }
  if (errno != EPERM) fail("mknod %s: %s", at, strerror(errno));
  char src[64];
  snprintf(src, sizeof src, "/dev/%s", name);
  REPORT("fallback", at, "mknod: EPERM (a user namespace)", src);
  int fd = open(at, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
  if (fd < 0) fail("create %s: %s", at, strerror(errno));
  close(fd);
  mount_or_fail(src, at, NULL, MS_BIND, NULL);
}

/* /dev is a fresh tmpfs holding only the harmless devices every container gets. */
static void make_dev(const char *rootfs) {
  char dev[4096], p[4200];
  snprintf(dev, sizeof dev, "%s/dev", rootfs);
  mkdir(dev, 0755);
  mount_or_fail("tmpfs", dev, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
  static const struct { const char *name; unsigned maj, min; } nodes[] = {
      {"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
  for (unsigned i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
    snprintf(p, sizeof p, "%s/%s", dev, nodes[i].name);
    make_device(p, nodes[i].name, nodes[i].maj, nodes[i].min);
  }
  static const char *links[][2] = {{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
                                   {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
                                   {"pts/ptmx", "ptmx"}};
  for (unsigned i = 0; i < sizeof links / sizeof links[0]; i++) {
    snprintf(p, sizeof p, "%s/%s", dev, links[i][1]);
    if (symlink(links[i][0], p) < 0) fail("symlink %s: %s", p, strerror(errno));
  }
  /* A devpts of its own: the container's ttys are numbered from 0 and invisible to the host's. */
  snprintf(p, sizeof p, "%s/pts", dev);
  mkdir(p, 0755);
  mount_or_fail("devpts", p, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5");
  snprintf(p, sizeof p, "%s/shm", dev);
  mkdir(p, 01777);
  mount_or_fail("shm", p, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k");
  snprintf(p, sizeof p, "%s/mqueue", dev);
  mkdir(p, 0755);
  mount_reported(__LINE__, "mqueue", p, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL); /* optional */
}

/* A tmpfs from "DEST:FLAGS:DATA": the engine has turned Docker's options into mount(2) flags and data. */
static void mount_tmpfs(const struct options *o, const char *raw) {
  char spec[4096], dst[8192];
  snprintf(spec, sizeof spec, "%s", raw);
  char *flags = strchr(spec, ':'), *data = NULL;
  unsigned long mflags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  if (flags) {
    *flags++ = 0;
    if ((data = strchr(flags, ':'))) *data++ = 0;
    mflags = strtoul(flags, NULL, 10);
  }
  snprintf(dst, sizeof dst, "%s%s", o->rootfs, spec);
  mkdir_p(dst, 0755);
  mount_or_fail("tmpfs", dst, "tmpfs", mflags, data && *data ? data : NULL);
}

/*
 * --bind source:destination[:ro], e.g. /etc/hostname, /etc/hosts, /etc/resolv.conf, volumes, in the
 * order given (parents before children); "tmpfs:DEST:FLAGS:DATA" in that list is a tmpfs, so it
 * takes its place in the order too. --tmpfs ones come last.
 */
static void bind_mounts(const struct options *o) {
  for (int i = 0; i < o->nbinds; i++) {
    if (strncmp(o->binds[i], "tmpfs:", 6) == 0) { mount_tmpfs(o, o->binds[i] + 6); continue; }
    char spec[4096], dst[8192];
    snprintf(spec, sizeof spec, "%s", o->binds[i]);
    char *src = spec, *target = strchr(spec, ':');
    if (!target) fail("bad bind %s", o->binds[i]);
    *target++ = 0;
    char *mode = strchr(target, ':');
    if (mode) *mode++ = 0;
    snprintf(dst, sizeof dst, "%s%s", o->rootfs, target);
    struct stat st;
    if (stat(src, &st) < 0) fail("bind source %s: %s", src, strerror(errno));
    if (S_ISDIR(st.st_mode)) mkdir_p(dst, 0755);
    else if (access(dst, F_OK) < 0) {
      /* A single file (or a socket) bound: its mount point is an empty file, parents made first. */
      char parent[8192];
      snprintf(parent, sizeof parent, "%s", dst);
      char *slash = strrchr(parent, '/');
      if (slash && slash != parent) { *slash = 0; mkdir_p(parent, 0755); }
      int fd = open(dst, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
      if (fd >= 0) close(fd);
    }
    mount_or_fail(src, dst, NULL, MS_BIND | MS_REC, NULL);
    if (mode && strcmp(mode, "ro") == 0) remount_bind_readonly(dst);
  }
  for (int i = 0; i < o->ntmpfs; i++) mount_tmpfs(o, o->tmpfs[i]);
}

static void write_quietly(const char *file, const char *value) {
  int fd = open(file, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  if (write(fd, value, strlen(value)) == (ssize_t)strlen(value)) REPORT("sysctl", file, value);
  close(fd);
}

static void loopback_up(void) {
  /* IPv6 off in the container's own namespace, as Docker leaves it unless asked: `ip addr` shows
   * no ::1 and no link-local addresses (/proc/sys/net is the calling task's namespace's). */
  write_quietly("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
  write_quietly("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) fail("loopback: %s", strerror(errno));
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) fail("loopback up: %s", strerror(errno));
  close(s);
  REPORT("net", "lo", "up");
}

/*
 * A network (the bridge driver's way): one veth pair per network, made by the shim in the engine's
 * namespace as soon as the child's network namespace exists, one end on the bridge, the other
 * born inside the child's namespace as eth<N>. The child then gives it its address and the
 * default route. This is what `ip link add ... netns PID` and `ip addr add` would do, without a
 * process per command: a container start on a busy two-core host paid tens of milliseconds for
 * each `ip` and `nsenter` the engine spawned.
 *
 * --veth "HOSTIF,IFACE,MAC,BRIDGE,ADDR/PREFIX,GATEWAY" (GATEWAY "-": no default route through it).
 */
struct veth {
  char host[IFNAMSIZ], iface[IFNAMSIZ], bridge[IFNAMSIZ], mac_text[18], addr[16], gateway[16];
  unsigned char mac[6];
  int prefix;
};

static void parse_veth(const char *raw, struct veth *v) {
  char spec[256], *field[6], *save = NULL;
  snprintf(spec, sizeof spec, "%s", raw);
  int n = 0;
  for (char *t = strtok_r(spec, ",", &save); t && n < 6; t = strtok_r(NULL, ",", &save)) field[n++] = t;
  if (n != 6) fail("bad --veth %s", raw);
  char *slash = strchr(field[4], '/');
  if (!slash) fail("bad --veth address %s", field[4]);
  *slash = 0;
  v->prefix = atoi(slash + 1);
  snprintf(v->host, sizeof v->host, "%s", field[0]);
  snprintf(v->iface, sizeof v->iface, "%s", field[1]);
  snprintf(v->mac_text, sizeof v->mac_text, "%s", field[2]);
  snprintf(v->bridge, sizeof v->bridge, "%s", field[3]);
  snprintf(v->addr, sizeof v->addr, "%s", field[4]);
  snprintf(v->gateway, sizeof v->gateway, "%s", field[5]);
  if (sscanf(field[2], "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &v->mac[0], &v->mac[1], &v->mac[2], &v->mac[3], &v->mac[4], &v->mac[5]) != 6) fail("bad --veth mac %s", field[2]);
}

/* rtnetlink, the few pieces needed: append an attribute, close a nested one, send and read the ack. */
static struct rtattr *nl_put(struct nlmsghdr *h, size_t room, int type, const void *data, size_t len) {
  if (NLMSG_ALIGN(h->nlmsg_len) + RTA_SPACE(len) > room) fail("netlink message too long");
  struct rtattr *a = (struct rtattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));
  a->rta_type = type;
  a->rta_len = RTA_LENGTH(len);
  if (len) memcpy(RTA_DATA(a), data, len);
  h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(a->rta_len);
  return a;
}
static void nl_end(struct nlmsghdr *h, struct rtattr *a) { a->rta_len = (unsigned short)((char *)h + h->nlmsg_len - (char *)a); }

/* 0, or the negative errno the kernel answered. */
static int nl_talk(struct nlmsghdr *h) {
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0) return -errno;
  struct sockaddr_nl to = {.nl_family = AF_NETLINK};
  h->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
  h->nlmsg_seq = 1;
  int result = 0;
  if (sendto(s, h, h->nlmsg_len, 0, (struct sockaddr *)&to, sizeof to) < 0) result = -errno;
  else {
    char buf[4096];
    ssize_t n;
    while ((n = recv(s, buf, sizeof buf, 0)) < 0 && errno == EINTR) {}
    struct nlmsghdr *r = (struct nlmsghdr *)buf;
    if (n < 0) result = -errno;
    else if (n >= (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)) && r->nlmsg_type == NLMSG_ERROR) result = ((struct nlmsgerr *)NLMSG_DATA(r))->error;
  }
  close(s);
  return result;
}

/* In the engine's namespace: the pair, the host end on the bridge and up, the other end in pid's namespace. */
static void add_veth(const struct veth *v, pid_t pid) {
  static char buf[1024] __attribute__((aligned(NLMSG_ALIGNTO)));
  struct nlmsghdr *h = (struct nlmsghdr *)buf;
  struct ifinfomsg *i = NLMSG_DATA(h);
  memset(buf, 0, sizeof buf);
  h->nlmsg_len = NLMSG_LENGTH(sizeof *i);
  h->nlmsg_type = RTM_NEWLINK;
  h->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
  i->ifi_family = AF_UNSPEC;
  i->ifi_flags = i->ifi_change = IFF_UP;
  unsigned master = if_nametoindex(v->bridge);
  if (!master) fail("failed to set up the container's network: bridge %s: %s", v->bridge, strerror(errno));
  nl_put(h, sizeof buf, IFLA_IFNAME, v->host, strlen(v->host) + 1);
  nl_put(h, sizeof buf, IFLA_MASTER, &master, sizeof master);
  struct rtattr *info = nl_put(h, sizeof buf, IFLA_LINKINFO, NULL, 0);
  nl_put(h, sizeof buf, IFLA_INFO_KIND, "veth", 4);
  struct rtattr *data = nl_put(h, sizeof buf, IFLA_INFO_DATA, NULL, 0);
  struct ifinfomsg peer_header = {.ifi_family = AF_UNSPEC};
  struct rtattr *peer = nl_put(h, sizeof buf, VETH_INFO_PEER, &peer_header, sizeof peer_header);
  nl_put(h, sizeof buf, IFLA_IFNAME, v->iface, strlen(v->iface) + 1);
  nl_put(h, sizeof buf, IFLA_ADDRESS, v->mac, 6);
  unsigned target = (unsigned)pid;
  nl_put(h, sizeof buf, IFLA_NET_NS_PID, &target, sizeof target);
  nl_end(h, peer);
  nl_end(h, data);
  nl_end(h, info);
  int e = nl_talk(h);
  if (e < 0) fail("failed to set up the container's network: veth %s: %s", v->host, strerror(-e));
  char text[300];
  snprintf(text, sizeof text, "ip link add %s master %s up type veth peer name %s address %s netns %d", v->host, v->bridge, v->iface, v->mac_text, pid);
  REPORT("netlink", text);
}

/*
 * No deletion afterwards: when the container's last process ends, its network namespace goes and
 * the kernel deletes every veth pair with an end in it. (Deleting one ourselves waits for RCU
 * grace periods: 50-190 ms on a busy host, which the exit of `docker run` would wait for.)
 */
static void plug_veths(const struct options *o, pid_t pid) {
  for (int i = 0; i < o->nveths; i++) {
    struct veth v;
    parse_veth(o->veths[i], &v);
    add_veth(&v, pid);
  }
}

static void set_inet(int s, unsigned long request, const char *iface, in_addr_t addr, const char *what) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", iface);
  struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = addr;
  if (ioctl(s, request, &ifr) < 0) fail("failed to set up the container's network: %s of %s: %s", what, iface, strerror(errno));
}

/* Inside: eth<N> addressed (broadcast derived, as `brd +`), up, and the default route through the first gateway. */
static void configure_veths(const struct options *o) {
  if (!o->nveths) return;
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) fail("socket: %s", strerror(errno));
  for (int i = 0; i < o->nveths; i++) {
    struct veth v;
    parse_veth(o->veths[i], &v);
    struct in_addr addr, gateway;
    if (inet_pton(AF_INET, v.addr, &addr) != 1) fail("bad --veth address %s", v.addr);
    in_addr_t mask = v.prefix ? htonl(~0U << (32 - v.prefix)) : 0;
    set_inet(s, SIOCSIFADDR, v.iface, addr.s_addr, "address");
    set_inet(s, SIOCSIFNETMASK, v.iface, mask, "netmask");
    set_inet(s, SIOCSIFBRDADDR, v.iface, addr.s_addr | ~mask, "broadcast");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", v.iface);
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) fail("failed to set up the container's network: %s: %s", v.iface, strerror(errno));
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) fail("failed to set up the container's network: %s up: %s", v.iface, strerror(errno));
    char text[200];
    snprintf(text, sizeof text, "ip addr add %s/%d brd + dev %s; ip link set %s up", v.addr, v.prefix, v.iface, v.iface);
    REPORT("netlink", text);
    if (strcmp(v.gateway, "-") == 0) continue;
    if (inet_pton(AF_INET, v.gateway, &gateway) != 1) fail("bad --veth gateway %s", v.gateway);
    struct rtentry route;
    memset(&route, 0, sizeof route);
    ((struct sockaddr_in *)&route.rt_dst)->sin_family = AF_INET;
    ((struct sockaddr_in *)&route.rt_genmask)->sin_family = AF_INET;
    ((struct sockaddr_in *)&route.rt_gateway)->sin_family = AF_INET;
    ((struct sockaddr_in *)&route.rt_gateway)->sin_addr = gateway;
    route.rt_flags = RTF_UP | RTF_GATEWAY;
    route.rt_dev = v.iface;
    if (ioctl(s, SIOCADDRT, &route) < 0) fail("failed to set up the container's network: default route via %s: %s", v.gateway, strerror(errno));
    snprintf(text, sizeof text, "ip route add default via %s dev %s", v.gateway, v.iface);
    REPORT("netlink", text);
  }
  close(s);
}

/*
 * What the kernel made of the mounts: every line of /proc/self/mountinfo at or below the new root,
 * read once before pivot_root ("mounted ID PARENT MOUNTPOINT OPTIONS FSTYPE SOURCE SUPEROPTIONS").
 * A bind mount shows the type of the file system it came from, a fallback shows what it became.
 */
static void report_mountinfo(const char *rootfs) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f) return;
  char line[8192];
  size_t rl = strlen(rootfs);
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    char *field[6], *save = NULL, *t = strtok_r(line, " ", &save);
    int n = 0;
    for (; t && n < 6; t = strtok_r(NULL, " ", &save)) field[n++] = t; /* id parent dev root point options */
    if (n < 6 || strncmp(field[4], rootfs, rl) != 0 || (field[4][rl] != 0 && field[4][rl] != '/')) continue;
    while (t && strcmp(t, "-") != 0) t = strtok_r(NULL, " ", &save); /* optional fields end at "-" */
    char *fstype = t ? strtok_r(NULL, " ", &save) : NULL, *source = fstype ? strtok_r(NULL, " ", &save) : NULL;
    char *super = source ? strtok_r(NULL, " ", &save) : NULL;
    REPORT("mounted", field[0], field[1], field[4], field[5], fstype ? fstype : "", source ? source : "", super ? super : "");
  }
  fclose(f);
}

/* The new root: mounts first, then pivot_root(".", ".") and detach the old root stacked under it. */
static void enter_rootfs(const struct options *o) {
  char p[4200];
  /* Nothing we mount from here on may leak back to the host. */
  mount_or_fail(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
  mount_or_fail(o->rootfs, o->rootfs, NULL, MS_BIND | MS_REC, NULL);
  snprintf(p, sizeof p, "%s/proc", o->rootfs);
  mkdir(p, 0555);
  mount_or_fail("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  snprintf(p, sizeof p, "%s/sys", o->rootfs);
  mkdir(p, 0555);
  /*
   * A fresh sysfs needs a network namespace owned by a user namespace that may see all of /sys;
   * nested in a sandbox the kernel refuses it (EPERM). Then the engine's own /sys is bound, alone
   * (not its submounts: no cgroup tree), and made read-only.
   */
  if (mount_reported(__LINE__, "sysfs", p, "sysfs", (o->privileged ? 0 : MS_RDONLY) | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
    if (errno != EPERM && errno != EACCES) fail("mount sysfs on %s: %s", p, strerror(errno));
    REPORT("fallback", p, errno == EPERM ? "sysfs: EPERM (a user namespace)" : "sysfs: EACCES", "/sys");
    mount_or_fail("/sys", p, NULL, MS_BIND, NULL);
    if (!o->privileged) remount_bind_readonly(p);
  }
  make_dev(o->rootfs);
  bind_mounts(o);
  if (o->readonly) mount_or_fail(NULL, o->rootfs, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL);
  report_mountinfo(o->rootfs);
  if (chdir(o->rootfs) < 0) fail("chdir %s: %s", o->rootfs, strerror(errno));
  if (syscall(SYS_pivot_root, ".", ".") < 0) fail("pivot_root: %s", strerror(errno));
  if (umount2(".", MNT_DETACH) < 0) fail("umount old root: %s", strerror(errno));
  if (chdir("/") < 0) fail("chdir /: %s", strerror(errno));
}

/* A console inside the container's own /dev/pts; the master goes back to the shim. */
static void make_console(int console_sock, unsigned short rows, unsigned short cols) {
  int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) fail("open console: %s", strerror(errno));
  if (rows && cols) { struct winsize ws = {rows, cols, 0, 0}; ioctl(master, TIOCSWINSZ, &ws); }
  char *name = ptsname(master);
  int slave = open(name, O_RDWR | O_NOCTTY);
  if (slave < 0) fail("open %s: %s", name, strerror(errno));
  char byte = 'm';
  struct iovec iov = {&byte, 1};
  char control[CMSG_SPACE(sizeof(int))];
  memset(control, 0, sizeof control);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &master, sizeof(int));
  if (sendmsg(console_sock, &msg, 0) < 0) fail("send console: %s", strerror(errno));
  close(master);
  close(console_sock);
  setsid();
  if (ioctl(slave, TIOCSCTTY, 0) < 0) fail("TIOCSCTTY: %s", strerror(errno));
  dup2(slave, 0); dup2(slave, 1); dup2(slave, 2);
  if (slave > 2) close(slave);
}

/* The bounding set caps what any later execve can gain: drop what the container may not have. */
static void drop_bounding_set(unsigned long long keep) {
  for (int cap = 0; cap <= CAP_LAST_CAP; cap++) {
    if (keep & (1ULL << cap)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) fail("drop capability %d: %s", cap, strerror(errno));
  }
}

/* After setuid: trim what this process holds to the mask too (root keeps exactly these). */
static void limit_capabilities(unsigned long long keep) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  if (syscall(SYS_capget, &hdr, data) < 0) fail("capget: %s", strerror(errno));
  for (int i = 0; i < 2; i++) {
    unsigned mask = (unsigned)(keep >> (32 * i));
    data[i].effective &= mask; data[i].permitted &= mask; data[i].inheritable &= mask;
  }
  if (syscall(SYS_capset, &hdr, data) < 0) fail("capset: %s", strerror(errno));
}

static const char *env_get(const struct options *o, const char *key) {
  size_t n = strlen(key);
  for (int i = 0; i < o->nenv; i++)
    if (strncmp(o->env[i], key, n) == 0 && o->env[i][n] == '=') return o->env[i] + n + 1;
  return NULL;
}

/* "exec PATH ARGV...": the program about to replace this process, with its arguments. */
static void report_exec(const char *path, char **argv) {
  char buf[8000];
  size_t len = 0;
  for (int i = 0; argv[i] && len < sizeof buf - 2; i++) {
    if (i) buf[len++] = '\n'; /* one argument per (escaped) line */
    for (const char *c = argv[i]; *c && len < sizeof buf - 2; c++) buf[len++] = *c;
  }
  buf[len] = 0;
  REPORT("exec", path, buf);
}

/* execvp would search the shim's PATH; a container searches its own. */
static void exec_command(struct options *o) {
  const char *cmd = o->argv[0];
  if (!cmd || !*cmd) fail("exec: \"\": executable file not found in $PATH");
  o->env[o->nenv] = NULL;
  if (strchr(cmd, '/')) {
    report_exec(cmd, o->argv);
    execve(cmd, o->argv, o->env);
    if (errno == ENOENT) fail("exec: \"%s\": stat %s: no such file or directory", cmd, cmd);
    if (errno == EACCES) fail("exec: \"%s\": permission denied", cmd);
    fail("exec %s: %s", cmd, strerror(errno));
  }
  const char *path = env_get(o, "PATH");
  if (!path) path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  char dirs[4096], full[8192];
  snprintf(dirs, sizeof dirs, "%s", path);
  int denied = 0;
  for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    snprintf(full, sizeof full, "%s/%s", d, cmd);
    struct stat st;
    if (stat(full, &st) < 0 || S_ISDIR(st.st_mode)) continue;
    report_exec(full, o->argv);
    execve(full, o->argv, o->env);
    if (errno == EACCES) denied = 1;
  }
  if (denied) fail("exec: \"%s\": permission denied", cmd);
  fail("exec: \"%s\": executable file not found in $PATH", cmd);
}

/* "cgroup LINE" for each line of /proc/self/cgroup: where the engine put this process. */
static void report_cgroups(void) {
  FILE *f = fopen("/proc/self/cgroup", "re");
  if (!f) return;
  char line[4096];
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    REPORT("cgroup", line);
  }
  fclose(f);
}

/* Who is about to run: "user UID GID GROUPS" and "caps BOUNDING EFFECTIVE PERMITTED" as read back. */
static void report_identity(int no_new_privs) {
  char uid[16], gid[16], groups[1024] = "", bnd[24], eff[24], prm[24];
  snprintf(uid, sizeof uid, "%u", getuid());
  snprintf(gid, sizeof gid, "%u", getgid());
  gid_t list[64];
  int n = getgroups(64, list);
  for (int i = 0, len = 0; i < n && len < (int)sizeof groups - 12; i++) len += snprintf(groups + len, sizeof groups - len, "%s%u", i ? "," : "", list[i]);
  REPORT("user", uid, gid, groups);
  unsigned long long bounding = 0;
  for (int cap = 0; cap <= CAP_LAST_CAP && cap < 64; cap++)
    if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1) bounding |= 1ULL << cap;
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {{0, 0, 0}, {0, 0, 0}};
  syscall(SYS_capget, &hdr, data);
  snprintf(bnd, sizeof bnd, "%llx", bounding);
  snprintf(eff, sizeof eff, "%llx", (unsigned long long)data[1].effective << 32 | data[0].effective);
  snprintf(prm, sizeof prm, "%llx", (unsigned long long)data[1].permitted << 32 | data[0].permitted);
  REPORT("caps", bnd, eff, prm, no_new_privs ? "no_new_privs" : "");
}

/* Everything that happens inside, in the order of the lesson. */
/*
 * --sysctl: net.* and the IPC ones (kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*) belong to
 * the namespaces just made, so writing /proc/sys (still the engine's /proc) sets the container's.
 */
static void apply_sysctls(const struct options *o) {
  for (int i = 0; i < o->nsysctls; i++) {
    char key[512], file[600];
    snprintf(key, sizeof key, "%s", o->sysctls[i]);
    char *value = strchr(key, '=');
    if (!value) fail("bad sysctl %s", o->sysctls[i]);
    *value++ = 0;
    for (char *c = key; *c; c++) if (*c == '.') *c = '/';
    snprintf(file, sizeof file, "/proc/sys/%s", key);
    int fd = open(file, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, value, strlen(value)) != (ssize_t)strlen(value)) fail("write sysctl key %s: %s", o->sysctls[i], strerror(errno));
    close(fd);
    REPORT("sysctl", file, value);
  }
}

/* --ulimit and --oom-score-adj: inherited by everything the command starts. */
static void apply_limits(const struct options *o) {
  for (int i = 0; i < o->nrlimits; i++) {
    int resource;
    unsigned long long soft, hard;
    if (sscanf(o->rlimits[i], "%d:%llu:%llu", &resource, &soft, &hard) != 3) fail("bad rlimit %s", o->rlimits[i]);
    struct rlimit rl = {soft, hard};
    if (setrlimit(resource, &rl) < 0) fail("setrlimit %s: %s", o->rlimits[i], strerror(errno));
    REPORT("rlimit", o->rlimits[i]);
  }
  if (o->oom_score_adj) {
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    /* Lowering it needs CAP_SYS_RESOURCE, which a nested engine does not have. */
    if (fd < 0 || write(fd, o->oom_score_adj, strlen(o->oom_score_adj)) < 0) fail("setting oom_score_adj to %s: %s", o->oom_score_adj, errno == EACCES ? "not allowed without CAP_SYS_RESOURCE" : strerror(errno));
    close(fd);
    REPORT("oom_score_adj", o->oom_score_adj);
  }
}

static void child(struct options *o, int go_fd, int console_sock) {
  char byte;
  /* Wait until the engine has written our pid into cgroup.procs. */
  if (read(go_fd, &byte, 1) != 1) _exit(1);
  close(go_fd);
  report_cgroups();
  if (!o->exec_mode) {
    apply_sysctls(o);
    if (o->domainname && setdomainname(o->domainname, strlen(o->domainname)) < 0) fail("setdomainname: %s", strerror(errno));
    if (o->hostname && sethostname(o->hostname, strlen(o->hostname)) < 0) fail("sethostname: %s", strerror(errno));
    if (o->hostname) REPORT("hostname", o->hostname);
    enter_rootfs(o);
    if (!o->host_net && !o->netns) {
      loopback_up();
      configure_veths(o);
    }
  }
  apply_limits(o);
  if (o->tty) make_console(console_sock, o->rows, o->cols);
  mkdir_p(o->cwd, 0755); /* Docker creates a missing working directory */
  if (chdir(o->cwd) < 0) fail("chdir to cwd (\"%s\") set in config.json failed: %s", o->cwd, strerror(errno));
  REPORT("cwd", o->cwd);
  drop_bounding_set(o->caps);
  if (setgroups(o->ngroups, o->groups) < 0) fail("setgroups: %s", strerror(errno));
  if (setgid(o->gid) < 0) fail("setgid %u: %s", o->gid, strerror(errno));
  if (setuid(o->uid) < 0) fail("setuid %u: %s", o->uid, strerror(errno));
  limit_capabilities(o->caps);
  if (o->no_new_privs) prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  report_identity(o->no_new_privs);
  signal(SIGPIPE, SIG_DFL);
  exec_command(o);
}

/* In exec mode: join every namespace of the running container (mnt last, as nsenter does). */
static void join_namespaces(pid_t target) {
  static const char *names[] = {"ipc", "uts", "net", "pid", "mnt"};
  int fds[5];
  char p[64];
  for (int i = 0; i < 5; i++) {
    snprintf(p, sizeof p, "/proc/%d/ns/%s", target, names[i]);
    if ((fds[i] = open(p, O_RDONLY | O_CLOEXEC)) < 0) fail("open %s: %s", p, strerror(errno));
  }
  for (int i = 0; i < 5; i++)
    if (setns(fds[i], 0) < 0) fail("setns %s: %s", names[i], strerror(errno));
  for (int i = 0; i < 5; i++) close(fds[i]);
}

/* ---------- the shim itself: start the child, relay a tty, report the exit ---------- */

/* Namespace inodes: the shim's own (the engine's, i.e. the sandbox's or host's) and the child's. */
static const char *ns_names[] = {"pid", "mnt", "uts", "ipc", "net", "cgroup", "user"};
#define NS_COUNT (int)(sizeof ns_names / sizeof ns_names[0])
static unsigned long long outer_ns[8];

static unsigned long long ns_inode(const char *name) {
  char p[64];
  struct stat st;
  snprintf(p, sizeof p, "/proc/self/ns/%s", name);
  return stat(p, &st) == 0 ? (unsigned long long)st.st_ino : 0;
}

static void record_outer_namespaces(void) {
  for (int i = 0; i < NS_COUNT; i++) outer_ns[i] = ns_inode(ns_names[i]);
}

/* "ns TYPE INODE OUTER": equal numbers mean shared with the engine, different ones new (or joined).
   LINE is the caller's, right after the unshare or setns that made them. */
static void report_namespaces(int line) {
  for (int i = 0; i < NS_COUNT; i++) {
    char in[24], out[24];
    snprintf(in, sizeof in, "%llu", ns_inode(ns_names[i]));
    snprintf(out, sizeof out, "%llu", outer_ns[i]);
    report_at(line, "ns", 3, ns_names[i], in, out);
  }
}

static int sigchld_pipe[2];
static void on_sigchld(int sig) { (void)sig; ssize_t ignored = write(sigchld_pipe[1], "c", 1); (void)ignored; }

static int receive_console(int sock) {
  char byte;
  struct iovec iov = {&byte, 1};
  char control[CMSG_SPACE(sizeof(int))];
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
  if (recvmsg(sock, &msg, 0) <= 0) return -1;
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  if (!c || c->cmsg_type != SCM_RIGHTS) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

static int write_all(int fd, const char *buf, ssize_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, n);
    if (w < 0) { if (errno == EINTR) continue; return -1; }
    buf += w; n -= w;
  }
  return 0;
}

static void handle_control_line(char *line, int master) {
  unsigned short rows, cols;
  if (sscanf(line, "resize %hu %hu", &rows, &cols) == 2 && master >= 0) {
    struct winsize ws = {rows, cols, 0, 0};
    ioctl(master, TIOCSWINSZ, &ws);
  }
}

/* Relay stdin -> console and console -> stdout until the child is gone and the console drained. */
static int relay(pid_t pid, int master) {
  char buf[32768], ctl[256];
  size_t ctl_len = 0;
  int stdin_open = master >= 0, ctl_open = 1, status = 0, exited = 0;
  for (;;) {
    struct pollfd fds[4] = {{sigchld_pipe[0], POLLIN, 0}, {CTL_FD, ctl_open ? POLLIN : 0, 0},
                            {master >= 0 ? 0 : -1, stdin_open ? POLLIN : 0, 0}, {master, POLLIN, 0}};
    if (!stdin_open) fds[2].fd = -1;
    if (!ctl_open) fds[1].fd = -1;
    int r = poll(fds, 4, exited ? 50 : -1);
    if (r < 0 && errno == EINTR) continue;
    if (fds[0].revents & POLLIN) {
      ssize_t ignored = read(sigchld_pipe[0], buf, sizeof buf); (void)ignored;
      if (!exited && waitpid(pid, &status, WNOHANG) == pid) exited = 1;
    }
    if (fds[1].revents & (POLLIN | POLLHUP)) {
      ssize_t n = read(CTL_FD, ctl + ctl_len, sizeof ctl - 1 - ctl_len);
      if (n <= 0) ctl_open = 0;
      else {
        ctl_len += n; ctl[ctl_len] = 0;
        char *nl;
        while ((nl = strchr(ctl, '\n'))) {
          *nl = 0;
          handle_control_line(ctl, master);
          memmove(ctl, nl + 1, ctl_len - (nl + 1 - ctl) + 1);
          ctl_len -= nl + 1 - ctl;
        }
        if (ctl_len >= sizeof ctl - 1) ctl_len = 0;
      }
    }
    if (stdin_open && (fds[2].revents & (POLLIN | POLLHUP))) {
      ssize_t n = read(0, buf, sizeof buf);
      if (n <= 0) stdin_open = 0; /* a tty has no end-of-file to pass on: Docker keeps it open */
      else write_all(master, buf, n);
    }
    if (master >= 0 && (fds[3].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = read(master, buf, sizeof buf);
      if (n > 0) { if (write_all(1, buf, n) < 0) {} }
      else if (exited) break; /* EIO: no slave left and nothing buffered */
    } else if (exited && r == 0) break;
    if (master < 0 && exited) break;
  }
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

/*
 * Without a tty, the container's stdout and stderr are pipes, as under containerd: a process that
 * opens /dev/stdout (nginx's logs linked there, `echo x > /dev/stderr`) reopens
 * /proc/self/fd/1, which works for a pipe and fails (ENXIO) for the socket Node gives the shim.
 * So when fd 1 or 2 is a socket, the container gets a pipe and the shim copies it across.
 */
static int is_socket(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

static int relay_pipes(pid_t pid, int out, int err) {
  char buf[65536];
  int status = 0, exited = 0;
  int fd[2] = {out, err};
  for (;;) {
    if (exited && fd[0] < 0 && fd[1] < 0) break;
    struct pollfd fds[3] = {{sigchld_pipe[0], POLLIN, 0}, {fd[0], POLLIN, 0}, {fd[1], POLLIN, 0}};
    /* After PID 1 exits its namespace is gone, so the pipes end at once; a short grace covers
       any writer still being torn down, without ever hanging the exit on it. */
    int r = poll(fds, 3, exited ? 100 : -1);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0 && exited) break;
    if (fds[0].revents & POLLIN) {
      ssize_t ignored = read(sigchld_pipe[0], buf, sizeof buf); (void)ignored;
      if (!exited && waitpid(pid, &status, WNOHANG) == pid) exited = 1;
    }
    for (int i = 0; i < 2; i++) {
      if (fd[i] < 0 || !(fds[i + 1].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(fd[i], buf, sizeof buf);
      if (n > 0) { if (write_all(i + 1, buf, n) < 0) {} }
      else if (n == 0 || errno != EINTR) { close(fd[i]); fd[i] = -1; }
    }
  }
  if (!exited) while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

/*
 * "berth-shim ready": started by the engine ahead of time, idle until its command line arrives on
 * fd 3 (the arguments after argv[0], each ending in a NUL byte, the list ending in an empty one).
 * Starting a process from Node blocks its event loop until the child has exec'd: tens of
 * milliseconds on a busy host, now spent before a `docker run` instead of during it. The engine
 * sends nothing else until this shim reports the pid, so a read cannot take more than the list.
 */
static char **read_command_line(char *argv0, int *argc) {
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  if (!buf) exit(125);
  for (;;) {
    if (len >= 2 && buf[len - 1] == 0 && buf[len - 2] == 0) break;
    if (len == 1 && buf[0] == 0) break;
    if (len == cap && !(buf = realloc(buf, cap *= 2))) exit(125);
    ssize_t n = read(CTL_FD, buf + len, cap - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) exit(0); /* the engine went away (or is closing): nothing to start */
    len += n;
  }
  int count = 1;
  for (size_t i = 0; i + 1 < len; i++) if (buf[i] == 0) count++;
  char **args = calloc(count + 2, sizeof *args);
  if (!args) exit(125);
  args[0] = argv0;
  int n = 1;
  for (size_t i = 0; i + 1 < len; i += strlen(buf + i) + 1) args[n++] = buf + i;
  args[n] = NULL;
  *argc = n;
  return args;
}

int main(int argc, char **argv) {
  struct options o;
  if (argc == 2 && strcmp(argv[1], "ready") == 0) {
    argv = read_command_line(argv[0], &argc);
    /* Started with a stdin pipe in case it was wanted: without -i the container reads /dev/null. */
    for (int i = 1; i < argc; i++) {
      if (strcmp(argv[i], "--") == 0) break;
      if (strcmp(argv[i], "--stdin-null") == 0) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) { dup2(fd, 0); close(fd); }
      }
    }
  }
  parse(argc, argv, &o);
  signal(SIGPIPE, SIG_IGN);
  int go[2], err[2], ready[2], console[2] = {-1, -1};
  if (pipe2(go, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 || pipe2(sigchld_pipe, O_CLOEXEC | O_NONBLOCK) < 0) fail("pipe: %s", strerror(errno));
  if (o.tty && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, console) < 0) fail("socketpair: %s", strerror(errno));
  signal(SIGCHLD, on_sigchld);
  /* (exec keeps the sockets: its stream ends when the process does, not when its children do) */
  int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
  /* Live restore (--exit-file): the container must outlive the engine, so its output always goes
     through the shim (which drops it while no engine reads), never straight into the engine's
     pipes (a write there after the engine is gone would kill it with SIGPIPE). Its own session
     keeps it out of the engine's terminal signals. */
  int relay_always = o.exit_file != NULL && !o.exec_mode;
  if (relay_always) setsid();
  if (!o.tty && !o.exec_mode && (relay_always || is_socket(1)) && pipe2(out_pipe, O_CLOEXEC) < 0) fail("pipe: %s", strerror(errno));
  if (!o.tty && !o.exec_mode && (relay_always || is_socket(2)) && pipe2(err_pipe, O_CLOEXEC) < 0) fail("pipe: %s", strerror(errno));

  /* The container's root filesystem, in the engine's mount namespace (so the engine sees it too):
     the image layers below, its own upper dir above. As `mount -t overlay overlay -o DATA ROOTFS`
     would, without a process for it. */
  if (o.overlay && !o.exec_mode) {
    report_fd = STATUS_FD;
    fail_to_engine = 1;
    if (mount("overlay", o.rootfs, "overlay", 0, o.overlay) < 0) fail("mount overlay on %s: %s", o.rootfs, strerror(errno));
    REPORT("rootfs", o.rootfs, o.overlay);
    report_fd = -1;
    fail_to_engine = 0;
  }
  record_outer_namespaces();
  if (o.exec_mode) {
    join_namespaces(o.target);
  } else {
    /* The next child we fork is PID 1 of a new pid namespace (or joins another container's, or
       stays in the engine's with --pid host); the child unshares the rest. */
    if (o.pidns) {
      int fd = open(o.pidns, O_RDONLY | O_CLOEXEC);
      if (fd < 0 || setns(fd, CLONE_NEWPID) < 0) fail("join pid namespace %s: %s", o.pidns, strerror(errno));
      close(fd);
    } else if (!o.host_pid && unshare(CLONE_NEWPID) < 0) fail("unshare pid: %s", strerror(errno));
  }
  pid_t pid = fork();
  if (pid < 0) fail("fork: %s", strerror(errno));
  if (pid == 0) {
    close(go[1]); close(err[0]); close(ready[0]);
    /* dup2 leaves the new 1 and 2 open across execve; the originals are close-on-exec */
    if (out_pipe[1] >= 0) { dup2(out_pipe[1], 1); close(out_pipe[0]); close(out_pipe[1]); }
    if (err_pipe[1] >= 0) { dup2(err_pipe[1], 2); close(err_pipe[0]); close(err_pipe[1]); }
    if (console[0] >= 0) close(console[0]);
    error_pipe = err[1];
    /* --network host keeps the host's network namespace; everything else is new. */
    int flags = CLONE_NEWNS | (o.host_uts ? 0 : CLONE_NEWUTS) | CLONE_NEWIPC | (o.host_net || o.netns ? 0 : CLONE_NEWNET);
    /* --network container:x: the other container's network namespace, entered before the rest. */
    if (!o.exec_mode && o.netns) {
      int fd = open(o.netns, O_RDONLY | O_CLOEXEC);
      if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) fail("join network namespace %s: %s", o.netns, strerror(errno));
      close(fd);
    }
    if (!o.exec_mode && unshare(flags) < 0) fail("unshare: %s", strerror(errno));
    /* Reports go straight to the engine until execve closes this copy of STATUS_FD. */
    if (fcntl(STATUS_FD, F_SETFD, FD_CLOEXEC) == 0) report_fd = STATUS_FD;
    report_namespaces(__LINE__);
    /* Tell the shim the namespaces exist; it tells the engine the pid. */
    if (write(ready[1], "r", 1) != 1) _exit(1);
    close(ready[1]); close(CTL_FD);
    child(&o, go[0], console[1]);
  }
  close(go[0]); close(err[1]); close(ready[1]);
  if (console[1] >= 0) close(console[1]);
  if (out_pipe[1] >= 0) close(out_pipe[1]);
  if (err_pipe[1] >= 0) close(err_pipe[1]);

  char line[64];
  ssize_t n = read(ready[0], line, 1);
  close(ready[0]);
  if (n != 1) { waitpid(pid, NULL, 0); status("error could not create namespaces\n"); return 125; }
  /* The child's network namespace exists: plug it into its networks before the engine hears of it. */
  if (o.nveths) {
    report_fd = STATUS_FD;
    fail_to_engine = 1; /* the child, waiting for "go", ends when we do, and its namespace with it */
    plug_veths(&o, pid);
    report_fd = -1;
    fail_to_engine = 0;
  }
  status("pid %d\n", pid);

  n = read(CTL_FD, line, sizeof line - 1);
  if (n <= 0 || strncmp(line, "go", 2) != 0) { kill(pid, SIGKILL); waitpid(pid, NULL, 0); return 125; }
  if (write(go[1], "g", 1) != 1) {}
  close(go[1]);

  int master = -1;
  if (o.tty) { master = receive_console(console[0]); close(console[0]); }
  char msg[1024];
  n = read(err[0], msg, sizeof msg - 1);
  close(err[0]);
  if (n > 0) {
    msg[n] = 0;
    waitpid(pid, NULL, 0);
    status("error %s\n", msg);
    return 127;
  }
  status("started\n");
  int code;
  if (o.tty) code = relay(pid, master);
  else if (out_pipe[0] >= 0 || err_pipe[0] >= 0) code = relay_pipes(pid, out_pipe[0], err_pipe[0]);
  else {
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    code = WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
  }
  if (o.unmount_at_exit && umount2(o.rootfs, 0) < 0) umount2(o.rootfs, MNT_DETACH);
  status("exit %d\n", code);
  if (o.exit_file) {
    /* Written whole then renamed: an engine that restarted reads a complete code or none. */
    char tmp[4200], text[32];
    snprintf(tmp, sizeof tmp, "%s.tmp", o.exit_file);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int len = snprintf(text, sizeof text, "%d\n", code);
    if (fd >= 0 && write(fd, text, len) == len) { close(fd); rename(tmp, o.exit_file); }
    else if (fd >= 0) close(fd);
  }
  return code;
}
