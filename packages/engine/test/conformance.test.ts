/**
 * The real docker CLI is the judge: each scenario is a shell script of docker commands, run once
 * against Berth's engine and once against a real dockerd (Debian's docker.io, busybox imported from
 * the same busybox-static). Outputs are compared after ids, names and times are masked.
 * Scenarios follow the workshop chapters (CURRICULUM.md): 1, 2, 3, 10, 11 and 14.
 */
import { execFile } from "node:child_process";
import { describe, expect, it } from "vitest";
import { CLI_20, CLI_28, normalize, ttySession, type Daemon } from "./harness";
import { berthAndDockerd } from "./differential";

const pair = berthAndDockerd();

function sh(d: Daemon, script: string, cli = CLI_28): Promise<{ out: string; code: number }> {
  const prelude = `docker() { "${cli}" "$@"; }\nset -o pipefail 2>/dev/null\n`;
  return new Promise((resolve) => {
    execFile("bash", ["-c", prelude + script], { env: { ...process.env, DOCKER_HOST: d.host, DOCKER_CLI_HINTS: "false" }, timeout: 60_000, encoding: "utf8" }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 255) : 0;
      resolve({ out: normalize(`${stdout}${stderr ? `\n--stderr--\n${stderr}` : ""}`), code });
    });
  });
}

/** Run the same script on both engines (in turn, the machine is small) and compare. */
async function same(script: string, cli = CLI_28): Promise<string> {
  const ours = await sh(pair.berth, script, cli);
  const theirs = await sh(pair.dockerd, script, cli);
  expect(ours.out, `berth vs dockerd for:\n${script}`).toBe(theirs.out);
  expect(ours.code).toBe(theirs.code);
  return ours.out;
}

// Every line of a script echoes its exit code, so a difference in any step shows.
const steps = (...lines: string[]) => lines.map((l) => `${l}; echo "[$?]"`).join("\n");

describe("chapter 1: first containers", () => {
  it("runs a command, keeps stdout and stderr apart, returns its exit code", async () => {
    const out = await same(steps("docker run --rm busybox echo hello world", "docker run --rm busybox sh -c 'echo out; echo err >&2; exit 3' 2>/dev/null", "docker run --rm busybox sh -c 'echo out; echo err >&2' >/dev/null"));
    expect(out).toContain("hello world");
  });

  it("gives a container pipes for stdout and stderr: /dev/stdout and /dev/stderr can be opened (nginx's log links)", async () => {
    const out = await same(steps(
      "docker run --rm busybox sh -c 'echo to-stdout > /dev/stdout; echo to-stderr > /dev/stderr' 2>/dev/null",
      "docker run --rm busybox sh -c 'echo to-stdout > /dev/stdout; echo to-stderr > /dev/stderr' 2>&1 >/dev/null",
      "docker run --name c1-pipes busybox sh -c 'ln -s /dev/stdout /tmp/log; echo via-link >> /tmp/log; stat -L -c %F /proc/self/fd/1' >/dev/null",
      "docker logs c1-pipes",
      "docker rm c1-pipes",
    ));
    expect(out).toContain("via-link");
    expect(out).toContain("fifo");
  });

  it("feeds stdin with -i and sees a change only in its own container", async () => {
    await same(steps(
      "echo piped | docker run --rm -i busybox cat",
      "docker run --name c1-figlet busybox sh -c 'echo \"#!/bin/sh\" > /usr/bin/figlet; chmod +x /usr/bin/figlet'",
      "docker diff c1-figlet",
      "docker run --rm busybox ls /usr/bin/figlet",
      "docker rm c1-figlet",
    ));
  });

  it("maps start failures to 126 and 127 and keeps the message", async () => {
    await same(steps("docker run --rm busybox no-such-command", "docker run --rm busybox /etc/passwd", "docker run --rm busybox /no/such/file"));
  });

  it("honours -e, -w, -u, --entrypoint, --hostname and PID 1", async () => {
    await same(steps(
      "docker run --rm -e GREETING=hi busybox sh -c 'echo $GREETING $HOME'",
      "docker run --rm -w /srv/dir busybox pwd",
      "docker run --rm -u nobody busybox id",
      "docker run --rm -u 1000:1000 busybox id",
      "docker run --rm --entrypoint echo busybox from entrypoint",
      "docker run --rm --hostname box busybox hostname",
      "docker run --rm busybox sh -c 'echo $$'",
      "docker run --rm busybox cat /proc/1/cmdline | tr '\\0' ' '",
    ));
  });
});

describe("chapter 2: background containers", () => {
  it("ps, ps -q, ps -l, logs --tail, stop (TERM, timeout, KILL) versus kill", async () => {
    await same(steps(
      "docker run -d --name c2-a busybox sh -c 'trap \"exit 0\" TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done' >/dev/null",
      "docker run -d --name c2-b busybox sleep 300 >/dev/null",
      "docker run -d --name c2-c busybox sleep 300 >/dev/null",
      "sleep 1.1",
      "docker ps --format '{{.Names}} {{.Command}} {{.Status}}'",
      "docker ps -q | wc -l",
      "docker ps -l --format '{{.Names}}'",
      "docker logs --tail 2 c2-a | wc -l",
      "docker logs c2-a | sed -n 1,3p",
      "docker stop c2-a",
      "docker stop -t 1 c2-b",
      "docker kill c2-c",
      "docker ps -a --format '{{.Names}} {{.Status}}' --filter name=c2-",
      "docker inspect -f '{{.State.ExitCode}} {{.State.Status}} {{.State.OOMKilled}}' c2-a c2-b c2-c",
      "docker rm c2-a c2-b c2-c",
    ));
  });

  it("kill -s, errors for stopped and unknown containers", async () => {
    await same(steps(
      "docker run -d --name c2-k busybox sh -c 'trap \"exit 5\" USR1; while true; do sleep 0.1; done' >/dev/null",
      "sleep 0.5", // let the shell install its trap first: PID 1 ignores signals it has no handler for
      "docker kill -s USR1 c2-k",
      "timeout 10 docker wait c2-k",
      "docker kill c2-k",
      "docker stop c2-k",
      "docker kill c2-nope",
      "docker logs c2-nope",
      "docker rm c2-k",
    ));
  });

  it("logs -f follows until the container ends; logs -t stamps each line", async () => {
    await same(steps(
      "docker run -d --name c2-f busybox sh -c 'for i in 1 2 3; do echo line $i; sleep 0.2; done' >/dev/null",
      "docker logs -f c2-f",
      "docker logs -t c2-f | sed -E 's/^[0-9-]+T[0-9:.]+Z /<ts> /'",
      "docker rm c2-f",
    ));
  });
});

describe("chapter 3: restart and attach", () => {
  it("start -a, restart, wait, attach to a running container", async () => {
    await same(steps(
      "docker create --name c3-s busybox echo started again >/dev/null",
      "docker start -a c3-s",
      "docker start -a c3-s",
      "docker logs c3-s",
      "docker run -d --name c3-r busybox sleep 300 >/dev/null",
      "docker restart -t 0 c3-r",
      "docker inspect -f '{{.State.Status}} {{.RestartCount}}' c3-r",
      "(sleep 1; docker kill c3-r >/dev/null) & docker attach c3-r",
      "docker wait c3-r",
      "docker rm c3-s c3-r",
    ));
  });

  it("a started-again container keeps the time it last finished (labs read it to tell a restart)", async () => {
    const out = await same(steps(
      "docker run -d --name c3-f busybox sleep 300 >/dev/null",
      "docker inspect -f '{{.State.FinishedAt}}' c3-f | grep -c '^0001-'",
      "docker stop -t 0 c3-f >/dev/null",
      "docker start c3-f >/dev/null",
      "docker inspect -f '{{.State.Running}}' c3-f",
      "docker inspect -f '{{.State.FinishedAt}}' c3-f | grep -c '^0001-'",
      "docker rm -f c3-f >/dev/null",
    ));
    expect(out).toContain("true");
  });
});

describe("chapter 3: ttys and detaching", () => {
  // Each engine in turn: a real terminal for the CLI, keys typed once the prompt is there.
  it("run -it, detach with ^P^Q, attach with --detach-keys: the container keeps running", async () => {
    const results: string[] = [];
    for (const d of [pair.berth, pair.dockerd]) {
      const run = await ttySession(d.host, ["run", "-it", "--name", "c3-tty", "busybox", "sh"], [
        { waitFor: "# ", send: "echo typed $((6*7))\r" },
        { waitFor: "typed 42", send: "\x10\x11" }, // `run` detaches silently
      ]);
      const attach = await ttySession(d.host, ["attach", "--detach-keys", "ctrl-a,a", "c3-tty"], [
        { waitFor: "", send: "echo again $((6*6))\r" },
        { waitFor: "again 36", send: "\x01a" },
        { waitFor: "read escape sequence" },
      ]);
      const after = await sh(d, steps(
        "docker ps --filter name=c3-tty --format '{{.Names}} {{.State}}'",
        "docker inspect -f '{{.Config.Tty}} {{.Config.OpenStdin}}' c3-tty",
        "docker exec c3-tty sh -c 'echo $TERM'",
        "docker rm -f c3-tty",
      ));
      results.push(`run ${run.code}, attach ${attach.code}\n${after.out}`);
    }
    expect(results[0]).toBe(results[1]);
    // Both CLIs left on their own (not killed at the deadline): run detaches quietly, attach says "read escape sequence" and exits 1.
    expect(results[0]).toMatch(/^run 0, attach 1\n/);
    expect(results[0]).toContain("c3-tty running");
  });

  it("exec -it gets a terminal of its own; ttys see their size", async () => {
    const results: string[] = [];
    for (const d of [pair.berth, pair.dockerd]) {
      await sh(d, "docker run -d --name c3-ex busybox sleep 60");
      const ex = await ttySession(d.host, ["exec", "-it", "c3-ex", "sh"], [
        { waitFor: "# ", send: "tty; stty size; exit 3\r" },
        { waitFor: "/dev/pts/" },
      ]);
      await sh(d, "docker rm -f c3-ex");
      results.push(`${ex.code} ${/\/dev\/pts\/\d+/.exec(ex.output)?.[0]} ${/\d+ 100/.exec(ex.output)?.[0]}`);
    }
    expect(results[0]).toBe(results[1]);
    expect(results[0]).toBe("3 /dev/pts/0 30 100");
  });
});

describe("chapters 5-8 (first cut): docker build", () => {
  it("builds multi-stage with ARG, WORKDIR, COPY, COPY --from, RUN, ENV, CMD; caches; fails in Docker's words", async () => {
    const dir = `/tmp/berth-conf-build-${process.pid}`;
    const dockerfile = [
      "ARG BASE=busybox",
      "FROM ${BASE} AS builder",
      "WORKDIR /build",
      "COPY src/ ./src/",
      'RUN echo "compiled $(cat src/hello.txt)" > /build/out.txt',
      "FROM busybox",
      "ENV GREETING=hi",
      "COPY --from=builder /build/out.txt /app/out.txt",
      'RUN echo "$GREETING from $(pwd)" > /app/greet',
      'CMD ["cat", "/app/out.txt", "/app/greet"]',
    ].join("\n");
    const out = await same(steps(
      `rm -rf ${dir}; mkdir -p ${dir}/src && echo world > ${dir}/src/hello.txt && printf '%s\\n' '${dockerfile.replace(/'/g, "'\\''")}' > ${dir}/Dockerfile`,
      `docker build -q -t c5-app:1 ${dir} >/dev/null`,
      "docker run --rm c5-app:1",
      "docker inspect -f '{{.Config.Cmd}} {{.Config.Env}} {{.Config.WorkingDir}}' c5-app:1",
      `docker build -t c5-app:1 ${dir} | grep -c 'Using cache'`,
      `echo changed > ${dir}/src/hello.txt && docker build -t c5-app:2 ${dir} | grep -c 'Using cache'`,
      "docker run --rm c5-app:2 cat /app/out.txt",
      `printf 'FROM busybox\\nRUN exit 3\\n' > ${dir}/Dockerfile.bad && docker build -f ${dir}/Dockerfile.bad ${dir} 2>&1 >/dev/null | grep returned`,
      "docker rmi c5-app:1 c5-app:2 >/dev/null",
      `rm -rf ${dir}`,
    ));
    expect(out).toContain("compiled world\nhi from /\n");
    expect(out).toContain("compiled changed");
    expect(out).toContain("The command '/bin/sh -c exit 3' returned a non-zero code: 3");
  });
});

describe("chapter 21 (first cut): images are tarballs", () => {
  it("an image saved by one engine loads into the other and runs, deletions included", async () => {
    const dir = `/tmp/berth-conf-save-${process.pid}`;
    const make = steps(
      `mkdir -p ${dir}`,
      "docker run --name c21-src busybox sh -c 'echo saved > /saved; rm /etc/shadow' >/dev/null",
      "docker commit -c 'CMD [\"cat\", \"/saved\"]' c21-src c21-img:1 >/dev/null",
      "docker rm c21-src >/dev/null",
    );
    const results: string[] = [];
    for (const [from, to] of [[pair.berth, pair.dockerd], [pair.dockerd, pair.berth]] as const) {
      await sh(from, `${make}\ndocker save -o ${dir}/img.tar c21-img:1; echo "[$?]"\ndocker rmi c21-img:1 >/dev/null`);
      const out = await sh(to, steps(
        `docker load -i ${dir}/img.tar`,
        "docker run --rm c21-img:1",
        "docker run --rm c21-img:1 ls /etc/shadow",
        `tar -tf ${dir}/img.tar | grep -c manifest.json`,
        "docker rmi c21-img:1 >/dev/null",
        `rm -rf ${dir}`,
      ));
      results.push(out.out);
    }
    expect(results[0]).toBe(results[1]);
    expect(results[0]).toContain("Loaded image: c21-img:1\n[0]\nsaved\n[0]");
    expect(results[0]).toContain("No such file or directory");
  });
});

describe("chapter 10: naming, inspecting, labels", () => {
  it("--name, conflicts, rename, inspect --format, --label and ps --filter", async () => {
    await same(steps(
      "docker run -d --name c10-clock --label owner=alice --label team=blue busybox sleep 300 >/dev/null",
      "docker run -d --name c10-clock busybox true",
      "docker rename c10-clock ticktock",
      "docker rename ticktock ticktock",
      "docker rename c10-nope x",
      "docker inspect --format '{{.Name}} {{.Config.Labels.owner}} {{.State.Running}} {{.Config.Image}} {{.Path}} {{.Args}}' ticktock",
      "docker inspect --format '{{json .Config.Labels}}' ticktock",
      "docker inspect --format '{{.HostConfig.NetworkMode}} {{.RestartCount}} {{.Driver}} {{len .Id}}' ticktock",
      "docker ps --filter label=owner=alice --format '{{.Names}} {{.Labels}}'",
      "docker ps --filter label=owner=bob --format '{{.Names}}'",
      "docker ps -a --filter status=running --filter name=tick --format '{{.Names}}'",
      "docker port ticktock",
      "docker rm ticktock",
      "docker rm -f ticktock",
      "docker inspect ticktock",
    ));
  });
});

describe("chapter 11: getting inside", () => {
  it("exec with -e, -w, -u, exit codes; top; exec -d", async () => {
    await same(steps(
      "docker run -d --name c11-x busybox sleep 300 >/dev/null",
      "docker exec c11-x sh -c 'echo inside; exit 4'",
      "docker exec -e FOO=bar -w /tmp -u nobody c11-x sh -c 'echo $FOO; pwd; id'",
      "echo stdin | docker exec -i c11-x cat",
      "docker exec c11-x nothere",
      "docker exec -d c11-x sleep 100",
      // exec -d returns before the process runs: on a loaded machine top could race it in either engine.
      "for i in $(seq 1 100); do docker top c11-x | grep -q 'sleep 100' && break; sleep 0.1; done",
      "docker top c11-x | awk '{print $NF}'",
      "docker exec c11-x ps -o comm | sort",
      "docker rm -f c11-x",
      "docker exec c11-x true",
    ));
  });

  it("diff, cp both ways (and a missing path), commit --change of a crashed container, export", async () => {
    const dir = `/tmp/berth-conf-cp-${process.pid}`;
    await same(steps(
      `rm -rf ${dir}; mkdir -p ${dir}/in ${dir}/out`,
      "docker run --name c11-crash busybox sh -c 'echo \"out of cheese\" > /tmp/crash.log; mkdir -p /data/sub; echo z > /data/sub/f; rm /etc/shadow; exit 2'",
      "docker diff c11-crash | sort -k2",
      `docker cp c11-crash:/tmp/crash.log ${dir}/out/ && cat ${dir}/out/crash.log`,
      `docker cp c11-crash:/data ${dir}/out/data && find ${dir}/out/data | sort`,
      `docker cp c11-crash:/nope ${dir}/out/`,
      `echo upload > ${dir}/in/up.txt && docker cp ${dir}/in/up.txt c11-crash:/tmp/`,
      `docker cp c11-crash:/tmp/up.txt ${dir}/out/ && cat ${dir}/out/up.txt`,
      "docker commit -c 'CMD [\"cat\", \"/tmp/crash.log\"]' -c 'ENV DEBUG=1' c11-crash c11-debug:v1 >/dev/null",
      "docker run --rm c11-debug:v1",
      "docker run --rm c11-debug:v1 sh -c 'echo $DEBUG; cat /tmp/up.txt'",
      "docker inspect -f '{{.Config.Cmd}} {{.Config.Env}}' c11-debug:v1",
      "docker export c11-crash | tar -t | sed 's|^\\./||' | grep -E '^(tmp/crash.log|data/sub/f|bin/busybox|etc/shadow)$' | sort",
      "docker rm c11-crash",
      "docker rmi c11-debug:v1 | grep -c Deleted",
      `rm -rf ${dir}`,
    ));
  });
});

describe("chapter 14: limiting resources", () => {
  it("records --memory, --memory-swap, --cpus, --cpu-shares, --cpuset-cpus, --pids-limit", async () => {
    await same(steps(
      "docker run -d --name c14-l --memory 64m --memory-swap 128m --cpus 0.5 --cpu-shares 512 --cpuset-cpus 0 --pids-limit 50 busybox sleep 300 >/dev/null",
      "docker inspect -f '{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}} {{.HostConfig.CpusetCpus}} {{.HostConfig.PidsLimit}}' c14-l",
      "docker run --rm --cpus 0 busybox true",
      "docker run --rm --cpus 99 busybox true",
      "docker run --rm --memory 1m busybox true",
      "docker rm -f c14-l",
    ));
  });

  it("an out-of-memory process is killed (137) and State.OOMKilled says so", async () => {
    await same(steps(
      "docker run --name c14-oom --memory 32m --memory-swap 32m busybox sh -c 'x=a; while true; do x=$x$x; done'",
      "docker inspect -f '{{.State.OOMKilled}} {{.State.ExitCode}}' c14-oom",
      "docker rm c14-oom",
    ));
  });
});

describe("chapter 13 (first cut): volumes and binds", () => {
  it("named volumes outlive containers, binds share host files, --volumes-from, tmpfs, rm -v", async () => {
    const dir = `/tmp/berth-conf-vol-${process.pid}`;
    await same(steps(
      `rm -rf ${dir}; mkdir -p ${dir} && echo from-host > ${dir}/h`,
      "docker run --rm -v c13-data:/data busybox sh -c 'echo kept > /data/f'",
      "docker run --rm -v c13-data:/data:ro busybox sh -c 'cat /data/f; touch /data/x'",
      `docker run --rm -v ${dir}:/h busybox sh -c 'cat /h/h; echo back > /h/b' && cat ${dir}/b`,
      "docker run --rm --mount type=tmpfs,target=/scratch busybox sh -c 'mount | grep -c /scratch'",
      "docker run --name c13-anon -v /anon busybox sh -c 'echo anon > /anon/a'",
      "docker run --rm --volumes-from c13-anon busybox cat /anon/a",
      "docker inspect -f '{{range .Mounts}}{{.Type}} {{.Destination}} {{.RW}}{{end}}' c13-anon",
      "docker volume ls -q | grep -c c13-data",
      "docker volume rm c13-data",
      "docker rm -v c13-anon",
      "docker volume ls -q | wc -l",
      "docker run --rm --mount type=bind,source=/no/such/dir,target=/x busybox true",
      `rm -rf ${dir}`,
    ));
  });
});

describe("chapter 23: logs and PID 1", () => {
  it("--init puts docker-init in front as PID 1 and passes docker stop's TERM on", async () => {
    const out = await same(steps(
      "docker run --rm --init busybox sh -c 'tr \"\\0\" \" \" < /proc/1/cmdline; echo'",
      "docker run -d --init --name c23-init busybox sh -c 'while true; do sleep 1; done' >/dev/null",
      "docker inspect -f '{{.HostConfig.Init}}' c23-init",
      "docker stop c23-init >/dev/null",
      "docker inspect -f '{{.State.ExitCode}}' c23-init",
      "docker rm c23-init >/dev/null",
    ));
    expect(out).toContain("/sbin/docker-init -- sh -c");
    expect(out).toContain("143");
  });
});

describe("housekeeping and the rest", () => {
  it("rm of a running container, container prune, --rm, wait", async () => {
    await same(steps(
      "docker run -d --name h-run busybox sleep 300 >/dev/null",
      "docker rm h-run",
      "docker run --name h-done1 busybox true",
      "docker run --name h-done2 --label keep=no busybox false",
      "docker container prune -f --filter label=keep=no | grep -c '^[0-9a-f]'",
      "docker ps -a --filter name=h- --format '{{.Names}}' | sort",
      "docker run --name h-keep --label keep=yes busybox true",
      "docker container prune -f --filter label!=keep | grep -c '^[0-9a-f]'",
      "docker ps -a --filter name=h- --format '{{.Names}}' | sort",
      "docker rm -f h-run h-done1 h-keep",
      "docker run --rm --name h-gone busybox true",
      "docker ps -a --filter name=h-gone --format '{{.Names}}'",
    ));
  });

  it("--network host/none/unknown, ps -s sizes, cp of directories and symlinks", async () => {
    const dir = `/tmp/berth-conf-cpd-${process.pid}`;
    await same(steps(
      "docker run --rm --network host busybox sh -c 'ls /sys/class/net | grep -c lo'",
      "docker run --rm --network none busybox ls /sys/class/net",
      "docker run --rm --network nonet busybox true",
      "docker run --name h-sz busybox sh -c 'head -c 100000 /dev/zero > /f'",
      "docker ps -a -s --format '{{.Names}} {{.Size}}' -f name=h-sz",
      "docker rm h-sz",
      `rm -rf ${dir}; mkdir -p ${dir}/sub && echo a > ${dir}/sub/a && ln -s sub/a ${dir}/link`,
      "docker create --name h-cpd busybox true >/dev/null",
      `docker cp ${dir} h-cpd:/newdir`,
      `docker cp ${dir} h-cpd:/tmp`,
      "docker cp h-cpd:/newdir - | tar -t | sort",
      "docker cp h-cpd:/tmp/" + "berth-conf-cpd-" + process.pid + "/link - | tar -tv | awk '{print $1, $NF}'",
      "docker rm h-cpd",
      `rm -rf ${dir}`,
    ));
  });

  it("pause and unpause freeze the container; stop still ends a paused one", async () => {
    await same(steps(
      "docker run -d --name h-pz busybox sleep 300 >/dev/null",
      "docker pause h-pz",
      "docker pause h-pz",
      "docker ps --format '{{.Names}} {{.State}}' -f name=h-pz",
      "docker unpause h-pz",
      "docker unpause h-pz",
      "docker pause h-pz",
      "docker stop -t 1 h-pz",
      "docker inspect -f '{{.State.Status}} {{.State.Paused}} {{.State.ExitCode}}' h-pz",
      "docker rm h-pz",
    ));
  });

  it("the docker 20.10 client drives the same sequences", async () => {
    await same(
      steps(
        "docker run --rm busybox echo hello from 20.10",
        "docker run -d --name old-a busybox sleep 300 >/dev/null",
        "docker exec old-a sh -c 'exit 3'",
        "docker ps --format '{{.Names}}' --filter name=old-",
        "docker stop -t 0 old-a",
        "docker inspect -f '{{.State.ExitCode}}' old-a",
        "docker rm old-a",
        "docker rm old-a",
      ),
      CLI_20,
    );
  });
});
