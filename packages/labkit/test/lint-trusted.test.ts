// The lint for check and setup scripts that run as trusted checks (no /proc/self, no /dev/fd, no
// signals to the learner's pids): what it flags, what it leaves alone, and that the workshop's
// labs are clean. No root, no sandbox.
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadLabs } from "../src/load.js";
import { lintTrustedScript, lintTrustedScripts } from "../src/lint-trusted.js";

const lint = (source: string) => lintTrustedScript({ source, line: 10, timeoutMs: 1000, shell: "bash" }, "lab.md").map((w) => `${w.line}:${w.column} ${w.message.split(":")[0]}`);

describe("lintTrustedScript", () => {
  it("flags what needs the check's own /proc entry, with line and column", () => {
    expect(lint("true\ncat /proc/self/cgroup")).toEqual(["11:5 a check is not in the sandbox's pid namespace"]);
    expect(lint("grep x /proc/$$/status")).toHaveLength(1);
    expect(lint("cat /dev/fd/3; echo x > /dev/stderr")).toHaveLength(1); // one rule, once per line
    expect(lint("diff <(sort a) <(sort b)")).toEqual(["10:6 process substitution <(...) and >(...) needs /dev/fd, which a check does not have"]);
    expect(lint("tee >(wc -l)")).toHaveLength(1);
    expect(lint("ps aux | grep nginx")).toEqual(["10:1 procps' ps needs /proc/self and fails in a check"]);
    expect(lint("n=$(ps -e | wc -l)")).toHaveLength(1);
    expect(lint("pkill -f web")).toHaveLength(1);
    expect(lint("kill -9 $pid")).toHaveLength(1);
    expect(lint("nsenter --target $pid --pid true")).toHaveLength(1);
    expect(lint('for p in $(cat "$cg/cgroup.procs"); do :; done')).toHaveLength(1);
    expect(lint("n=$(wc -l < /sys/fs/cgroup/pids/x/tasks)")).toHaveLength(1);
    expect(lint("echo $$ > /sys/fs/cgroup/x/cgroup.procs")).toEqual([]);
    expect(lint('x=$(nsenter -t "$pid" -m readlink /proc/1/ns/pid)')).toHaveLength(1);
  });

  it("leaves alone messages, comments, awk programs and docker's own ps", () => {
    expect(lint('echo "Check with cat /proc/self/cgroup, then kill it or ps it."')).toEqual([]);
    expect(lint("# reads /proc/self, <(x), ps")).toEqual([]);
    expect(lint("awk '/^x/ { print $2 }' /proc/1/status")).toEqual([]);
    expect(lint("docker ps -q | wc -l; docker container ps; podman ps")).toEqual([]);
    expect(lint('echo "still in use: $(docker ps -a --format x | tr x y)"')).toEqual([]);
    expect(lint("killed=$((killed + 1)); pgrep -a sleep; nsenter --target 1 --uts hostname")).toEqual([]);
    expect(lint("cat /proc/1/status /proc/selfish")).toEqual([]);
  });

  it("the workshop's labs have no check or setup script that would break as a trusted check", async () => {
    const dir = path.resolve(import.meta.dirname, "../../../labs");
    const { labs } = await loadLabs(dir);
    expect(labs.length).toBeGreaterThan(0);
    expect(labs.flatMap((lab) => lintTrustedScripts(lab, `${lab.id}/lab.md`)).map((w) => `${w.file}:${w.line} ${w.message}`)).toEqual([]);
  });
});
