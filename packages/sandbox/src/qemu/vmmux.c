// berth-vmmux: many byte streams over the one virtio-serial port between a qemu sandbox and the
// host. Built by the qemu driver at prepare() with the host's cc, statically (the same binary runs
// on the host and, copied into the guest's root image, in the guest). Never committed as a binary.
//
//   host:  berth-vmmux host LINK AGENT_SOCK CTL_SOCK [REGISTRY_SOCK]
//          LINK is QEMU's chardev socket (the port's other end). Each connection accepted on
//          AGENT_SOCK or CTL_SOCK becomes a channel; the process exits when QEMU does.
//          REGISTRY_SOCK: this sandbox's lab registry gateway (the driver's); a registry channel
//          the guest opens is a connection to it, and to nothing else.
//   guest: berth-vmmux guest PORT AGENT_SOCK LEARNER_PIDFILE [REGISTRY_LISTEN]
//          PORT is the virtio-serial port's device. An agent channel is a connection to the agent's
//          socket; a control channel is served by a child: stats of the learner's cgroup, or a
//          trusted check run in the learner's namespaces but a pid namespace of its own.
//          REGISTRY_LISTEN: a socket in the guest whose every connection becomes a registry
//          channel (the agent's forwarder makes it the guest's localhost:5000).
//
// Frames on the link: u32 channel, u8 type (1 open, 2 data, 3 close), u32 length, payload (at most
// 64 KiB), all big-endian. The host opens agent ('a') and control ('c') channels, with ids below
// 2^31; the guest may open registry channels ('r') only, with ids of 2^31 and up, at most
// MAX_GUEST_CHANS at a time, and only when the host was given a REGISTRY_SOCK. Whatever else the
// guest asks to open is closed at once: a guest has no other way to the host. The host trusts
// nothing the guest sends: an unknown channel's frames are dropped, a malformed frame ends the
// link. Writes are blocking: a client that stops reading stalls its own sandbox's link only (each
// sandbox has its own mux).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CHANS 256
#define MAX_PAYLOAD 65536
#define MAX_SCRIPT (4 << 20)
/* Channels the guest opened (registry connections); the registry gateway allows 64 per sandbox. */
#define MAX_GUEST_CHANS 64
#define GUEST_ID 0x80000000u
enum { F_OPEN = 1, F_DATA = 2, F_CLOSE = 3 };

static int is_host;
static int link_fd = -1;
static const char *agent_path, *pid_file, *registry_path;
static struct chan { uint32_t id; int fd; } chans[MAX_CHANS];
static int nchans;
static uint32_t next_id = 1, next_guest_id = 0;

static void die(const char *what) {
  fprintf(stderr, "berth-vmmux: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int read_all(int fd, void *buf, size_t n) {
  char *p = buf;
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static void put32(unsigned char *p, uint32_t v) {
  p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}
static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void send_frame(uint32_t id, int type, const void *data, uint32_t len) {
  unsigned char h[9];
  put32(h, id);
  h[4] = (unsigned char)type;
  put32(h + 5, len);
  if (write_all(link_fd, h, 9) < 0 || (len && write_all(link_fd, data, len) < 0)) {
    if (is_host) exit(0); // QEMU went away: so does the sandbox
  }
}

static int find(uint32_t id) {
  for (int i = 0; i < nchans; i++)
    if (chans[i].id == id) return i;
  return -1;
}

static void drop(int i, int tell) {
  if (tell) send_frame(chans[i].id, F_CLOSE, NULL, 0);
  close(chans[i].fd);
  chans[i] = chans[--nchans];
}

static int unix_listen(const char *path) {
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  if (strlen(path) >= sizeof a.sun_path) { errno = ENAMETOOLONG; die(path); }
  strcpy(a.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  unlink(path);
  mode_t old = umask(0177); // 0600: root only, like the namespaces driver's agent socket
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 64) < 0) die(path);
  umask(old);
  return fd;
}

static int unix_connect(const char *path) {
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  if (strlen(path) >= sizeof a.sun_path) return -1;
  strcpy(a.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
  if (fd >= 0) close(fd);
  return -1;
}

/* ---- guest: the control channel's child ---- */

static long read_num(const char *path, const char *key) {
  char buf[16384]; // /proc/vmstat is ~5 KiB
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  if (!key) return atol(buf);
  char *p = strstr(buf, key);
  return p ? atol(p + strlen(key)) : 0;
}

/** The learner's PID 1: the child of the `unshare` whose pid the guest's init wrote down. */
static pid_t learner_pid(void) {
  char path[64], buf[64];
  long outer = read_num(pid_file, NULL);
  if (outer <= 1) return -1;
  snprintf(path, sizeof path, "/proc/%ld/task/%ld/children", outer, outer);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  return (pid_t)atol(buf);
}

static void send_out(int s, int stream, const void *data, uint32_t len) {
  unsigned char h[5];
  h[0] = (unsigned char)stream;
  put32(h + 1, len);
  if (write_all(s, h, 5) < 0 || (len && write_all(s, data, len) < 0)) _exit(0);
}

static void trusted_check(int s) {
  unsigned char h[8];
  if (read_all(s, h, 8) < 0) _exit(1);
  uint32_t cap = get32(h), len = get32(h + 4);
  if (len > MAX_SCRIPT) _exit(1);
  char *script = malloc(len + 1);
  if (!script || read_all(s, script, len) < 0) _exit(1);
  // The script reaches bash on its stdin, from memory: no file a learner could read or change.
  int mfd = memfd_create("check", MFD_CLOEXEC);
  if (mfd < 0 || write_all(mfd, script, len) < 0 || lseek(mfd, 0, SEEK_SET) < 0) _exit(1);
  pid_t lp = learner_pid();
  static const char *ns[] = { "ipc", "uts", "net", "cgroup", "mnt" };
  int nsfd[5];
  for (int i = 0; i < 5; i++) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)lp, ns[i]);
    if (lp <= 0 || (nsfd[i] = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
      const char *msg = "berth-vmmux: the learner's namespaces are gone\n";
      send_out(s, 2, msg, (uint32_t)strlen(msg));
      unsigned char end[5] = { 0, 0, 0, 125, 0 };
      send_out(s, 3, end, 5);
      _exit(0);
    }
  }
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) _exit(1);
  // A pid namespace of its own: no learner process can see, signal or ptrace the check, and
  // killing its PID 1 ends everything it started (background and double-forked children too).
  if (unshare(CLONE_NEWPID) < 0) _exit(1);
  pid_t c = fork();
  if (c < 0) _exit(1);
  if (c == 0) {
    for (int i = 0; i < 5; i++)
      if (setns(nsfd[i], 0) < 0) { dprintf(err[1], "berth-vmmux: setns %s: %s\n", ns[i], strerror(errno)); _exit(125); }
    if (chdir("/root") < 0 && chdir("/") < 0) _exit(125);
    dup2(mfd, 0); dup2(out[1], 1); dup2(err[1], 2);
    char *env[] = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8", "TERM=dumb", NULL };
    execle("/bin/bash", "bash", "-s", (char *)NULL, env);
    _exit(127);
  }
  close(out[1]); close(err[1]); close(mfd);
  struct pollfd p[3] = { { .fd = s, .events = POLLIN }, { .fd = out[0], .events = POLLIN }, { .fd = err[0], .events = POLLIN } };
  uint32_t sent[3] = { 0, 0, 0 };
  int truncated = 0, open_pipes = 2;
  char buf[MAX_PAYLOAD];
  while (open_pipes > 0) {
    if (poll(p, 3, -1) < 0 && errno != EINTR) break;
    if (p[0].revents) { kill(c, SIGKILL); waitpid(c, NULL, 0); _exit(0); } // the host gave up: timeout
    for (int i = 1; i <= 2; i++) {
      if (!p[i].revents) continue;
      ssize_t n = read(p[i].fd, buf, sizeof buf);
      if (n <= 0) { p[i].fd = -1; open_pipes--; continue; }
      uint32_t room = cap - sent[i] < (uint32_t)n ? cap - sent[i] : (uint32_t)n;
      if (room < (uint32_t)n) truncated = 1;
      if (room) { send_out(s, i, buf, room); sent[i] += room; }
    }
  }
  int status = 0;
  waitpid(c, &status, 0);
  int32_t code = WIFEXITED(status) ? WEXITSTATUS(status) : -(WIFSIGNALED(status) ? WTERMSIG(status) : 9);
  unsigned char end[5];
  put32(end, (uint32_t)code);
  end[4] = (unsigned char)truncated;
  send_out(s, 3, end, 5);
  _exit(0);
}

static void control(int s) {
  signal(SIGCHLD, SIG_DFL); // this child waits for its check
  unsigned char cmd;
  if (read_all(s, &cmd, 1) < 0) _exit(1);
  if (cmd == 's') {
    char line[160];
    long mem = read_num("/sys/fs/cgroup/learner/memory.current", NULL);
    long pids = read_num("/sys/fs/cgroup/learner/pids.current", NULL);
    long usec = read_num("/sys/fs/cgroup/learner/cpu.stat", "usage_usec ");
    // OOM kills of the learner's processes (at any limit: the learner's, a container's own, or
    // the whole guest's); OOMs at the sandbox's own limit: the learner's cgroup's (memory.max is
    // the VM's memory less the guest's reserve, events.local: not a container's) plus the kills no
    // cgroup limit caused (vmstat's count less every limit's OOM events below the learner); forks
    // refused at the learner's pids.max.
    long kills = read_num("/sys/fs/cgroup/learner/memory.events", "oom_kill ");
    long own_ooms = read_num("/sys/fs/cgroup/learner/memory.events.local", "\noom ");
    long limit_ooms = read_num("/sys/fs/cgroup/learner/memory.events", "\noom ");
    long all_kills = read_num("/proc/vmstat", "oom_kill ");
    long hits = own_ooms + (all_kills > limit_ooms ? all_kills - limit_ooms : 0);
    long pids_max = read_num("/sys/fs/cgroup/learner/pids.events", "max ");
    int n = snprintf(line, sizeof line, "%ld %ld %ld %ld %ld %ld\n", mem, pids, usec * 1000, kills, hits, pids_max);
    write_all(s, line, (size_t)n);
    _exit(0);
  }
  if (cmd == 'x') trusted_check(s);
  _exit(1);
}

static int guest_open(char kind) {
  if (kind == 'a') return unix_connect(agent_path);
  if (kind != 'c') return -1;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(sv[0]);
    close(link_fd);
    for (int i = 0; i < nchans; i++) close(chans[i].fd);
    control(sv[1]);
  }
  close(sv[1]);
  if (pid < 0) { close(sv[0]); return -1; }
  return sv[0];
}

/* ---- the loop both sides run ---- */

static int guest_chans(void) {
  int n = 0;
  for (int i = 0; i < nchans; i++)
    if (chans[i].id & GUEST_ID) n++;
  return n;
}

static unsigned char lbuf[9 + MAX_PAYLOAD];
static size_t lfill;

/** Handles the complete frames in lbuf; returns -1 on a malformed one. */
static int link_frames(void) {
  size_t off = 0;
  while (lfill - off >= 9) {
    uint32_t id = get32(lbuf + off), len = get32(lbuf + off + 5);
    int type = lbuf[off + 4];
    if (len > MAX_PAYLOAD || type < F_OPEN || type > F_CLOSE) return -1;
    if (lfill - off < 9 + len) break;
    const unsigned char *data = lbuf + off + 9;
    int i = find(id);
    if (type == F_OPEN && !is_host && i < 0 && len == 1) {
      int fd = nchans < MAX_CHANS ? guest_open((char)data[0]) : -1;
      if (fd < 0) send_frame(id, F_CLOSE, NULL, 0);
      else chans[nchans++] = (struct chan){ id, fd };
    } else if (type == F_OPEN && is_host) {
      // The guest's one way out: a registry channel, to this sandbox's gateway. Anything else (a
      // host-range id, another kind, no gateway, too many) is closed before it is a channel.
      int fd = -1;
      if (i < 0 && (id & GUEST_ID) && len == 1 && data[0] == 'r' && registry_path && guest_chans() < MAX_GUEST_CHANS && nchans < MAX_CHANS)
        fd = unix_connect(registry_path);
      if (fd >= 0) chans[nchans++] = (struct chan){ id, fd };
      else if (i < 0) send_frame(id, F_CLOSE, NULL, 0);
    } else if (type == F_DATA && i >= 0) {
      if (write_all(chans[i].fd, data, len) < 0) drop(i, 1);
    } else if (type == F_CLOSE && i >= 0) {
      drop(i, 0);
    }
    off += 9 + len;
  }
  memmove(lbuf, lbuf + off, lfill - off);
  lfill -= off;
  return 0;
}

/* Listeners: the host's agent and control sockets, the guest's registry socket (-1: none). */
static void loop(int agent_l, int ctl_l, int reg_l) {
  struct pollfd p[MAX_CHANS + 4];
  char buf[MAX_PAYLOAD];
  static const char kinds[] = { 'a', 'c', 'r' };
  for (;;) {
    int n = 0;
    p[n++] = (struct pollfd){ .fd = link_fd, .events = POLLIN };
    p[n++] = (struct pollfd){ .fd = agent_l, .events = POLLIN };
    p[n++] = (struct pollfd){ .fd = ctl_l, .events = POLLIN };
    p[n++] = (struct pollfd){ .fd = reg_l, .events = POLLIN };
    for (int i = 0; i < nchans; i++) p[n++] = (struct pollfd){ .fd = chans[i].fd, .events = POLLIN };
    if (poll(p, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    if (p[0].revents) {
      ssize_t r = read(link_fd, lbuf + lfill, sizeof lbuf - lfill);
      if (r <= 0) {
        if (is_host) exit(0);
        // The host end is not connected (yet, or any more): every channel is gone with it.
        while (nchans) drop(0, 0);
        lfill = 0;
        usleep(100000);
      } else {
        lfill += (size_t)r;
        if (link_frames() < 0) {
          fprintf(stderr, "berth-vmmux: malformed frame on the link\n");
          exit(1);
        }
      }
    }
    for (int l = 1; l <= 3; l++) {
      if (p[l].fd < 0 || !p[l].revents) continue;
      int fd = accept4(p[l].fd, NULL, NULL, SOCK_CLOEXEC);
      if (fd < 0) continue;
      char kind = kinds[l - 1];
      if (nchans >= MAX_CHANS || (kind == 'r' && guest_chans() >= MAX_GUEST_CHANS)) { close(fd); continue; }
      // Host ids stay below 2^31, the guest's above: the two sides never pick the same one.
      uint32_t id;
      if (kind == 'r') id = GUEST_ID | (next_guest_id++ & ~GUEST_ID);
      else {
        if (next_id >= GUEST_ID) next_id = 1;
        id = next_id++;
      }
      chans[nchans++] = (struct chan){ id, fd };
      send_frame(id, F_OPEN, &kind, 1);
    }
    // Channels by id: the array changes as they close.
    uint32_t ready[MAX_CHANS];
    int nready = 0;
    for (int k = 4; k < n; k++)
      if (p[k].revents) ready[nready++] = chans[k - 4].id;
    for (int k = 0; k < nready; k++) {
      int i = find(ready[k]);
      if (i < 0) continue;
      ssize_t r = read(chans[i].fd, buf, sizeof buf);
      if (r <= 0) drop(i, 1);
      else send_frame(chans[i].id, F_DATA, buf, (uint32_t)r);
    }
  }
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  signal(SIGCHLD, SIG_IGN); // control children are never waited for
  if ((argc == 5 || argc == 6) && strcmp(argv[1], "host") == 0) {
    is_host = 1;
    registry_path = argc == 6 ? argv[5] : NULL;
    for (int tries = 0; (link_fd = unix_connect(argv[2])) < 0; tries++) {
      if (tries > 200) die(argv[2]);
      usleep(50000);
    }
    int a = unix_listen(argv[3]), c = unix_listen(argv[4]);
    loop(a, c, -1);
  } else if ((argc == 5 || argc == 6) && strcmp(argv[1], "guest") == 0) {
    agent_path = argv[3];
    pid_file = argv[4];
    if ((link_fd = open(argv[2], O_RDWR | O_CLOEXEC)) < 0) die(argv[2]);
    loop(-1, -1, argc == 6 ? unix_listen(argv[5]) : -1);
  }
  fprintf(stderr, "usage: berth-vmmux host LINK AGENT_SOCK CTL_SOCK [REGISTRY_SOCK] | guest PORT AGENT_SOCK LEARNER_PIDFILE [REGISTRY_LISTEN]\n");
  return 2;
}
