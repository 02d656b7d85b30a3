/**
 * `docker stats` and `docker update` against a real dockerd: figures come from the container's
 * cgroup (memory a process holds, CPU it burns under a quota, its pids, the limit shown), and an
 * update reaches inspect, the cgroup files and the next stats sample. Refusals in dockerd's words.
 */
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { same, sh, steps, berthAndDockerd } from "./differential";

const pair = berthAndDockerd();

/** "20.5MiB / 64MiB" -> [bytes used, bytes limit] */
function memUsage(s: string): [number, number] {
  const unit: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };
  const m = [...s.matchAll(/([\d.]+)(B|KiB|MiB|GiB)/g)].map((x) => Number(x[1]) * unit[x[2]!]!);
  return [m[0]!, m[1]!];
}

describe("docker stats", () => {
  it("shows the memory a process holds against its limit, and its pids", async () => {
    const script = [
      "docker run -d --name st-mem -m 64m busybox sh -c 'dd if=/dev/zero of=/dev/shm/fill bs=1M count=24 2>/dev/null; sleep 300 & wait' >/dev/null",
      "sleep 1.5",
      "docker stats --no-stream --format '{{.Name}}|{{.MemUsage}}|{{.PIDs}}' st-mem",
      "docker rm -f st-mem >/dev/null",
    ].join("\n");
    for (const d of [pair.berth, pair.dockerd]) {
      const { out, code } = await sh(d, script);
      expect(code, `${d.name}: ${out}`).toBe(0);
      const [name, mem, pids] = out.trim().split("|");
      expect(name).toBe("st-mem");
      const [used, limit] = memUsage(mem!);
      expect(limit, d.name).toBe(64 * 1024 ** 2);
      expect(used, `${d.name}: ${mem}`).toBeGreaterThan(20 * 1024 ** 2); // the 24 MiB in /dev/shm count
      expect(used).toBeLessThan(64 * 1024 ** 2);
      expect(pids, d.name).toBe("2"); // sh and its sleep
    }
  });

  it("shows CPU use held to --cpus, and the machine's memory as the limit of an unlimited container", async () => {
    const script = [
      "docker run -d --name st-cpu --cpus 0.5 busybox sh -c 'while :; do :; done' >/dev/null",
      "sleep 1",
      "docker stats --no-stream --format '{{.CPUPerc}}|{{.MemUsage}}' st-cpu",
      "docker rm -f st-cpu >/dev/null",
    ].join("\n");
    const limits: number[] = [];
    for (const d of [pair.berth, pair.dockerd]) {
      const { out } = await sh(d, script);
      const [cpu, mem] = out.trim().split("|");
      const pct = Number(cpu!.replace("%", ""));
      // Half a CPU, measured over one second: the quota holds it at 50 % at most (less when the
      // machine is busy), but a spinning loop is never idle.
      expect(pct, `${d.name}: ${out}`).toBeGreaterThan(5);
      expect(pct, `${d.name}: ${out}`).toBeLessThan(62);
      limits.push(memUsage(mem!)[1]);
    }
    expect(limits[0]).toBe(limits[1]);
  });

  it("streams: the API sends a sample a second, each with the one before as precpu_stats", async () => {
    await sh(pair.berth, "docker run -d --name st-stream busybox sleep 60 >/dev/null");
    const samples = await new Promise<Record<string, { cpu_usage: { total_usage: number }; system_cpu_usage: number }>[]>((resolve, reject) => {
      const got: Record<string, { cpu_usage: { total_usage: number }; system_cpu_usage: number }>[] = [];
      const req = http.get({ socketPath: pair.berth.socket, path: "/containers/st-stream/stats" }, (res) => {
        let buf = "";
        res.on("data", (c: Buffer) => {
          buf += c.toString();
          for (let nl; (nl = buf.indexOf("\n")) >= 0; buf = buf.slice(nl + 1)) {
            got.push(JSON.parse(buf.slice(0, nl)));
            if (got.length === 2) {
              req.destroy();
              resolve(got);
            }
          }
        });
      });
      req.on("error", (e) => (got.length < 2 ? reject(e) : undefined));
    });
    expect(samples[1]!.precpu_stats).toEqual(samples[0]!.cpu_stats);
    expect(samples[1]!.cpu_stats!.system_cpu_usage).toBeGreaterThan(samples[0]!.cpu_stats!.system_cpu_usage);
    await sh(pair.berth, "docker rm -f st-stream");
  });
});

describe("docker update", () => {
  it("changes memory, CPUs, pids and the restart policy: inspect, stats and refusals as dockerd", async () => {
    await same(pair.berth, pair.dockerd, steps(
      "docker run -d --name up-a -m 64m busybox sleep 300 >/dev/null",
      "docker run -d --name up-b busybox sleep 300 >/dev/null",
      "docker inspect -f '{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}' up-a",
      "docker update --memory 128m up-b",
      "docker update --memory 256m up-a",
      "docker update --memory 100m up-a",
      "docker update --memory 200m --memory-swap 400m up-b",
      "docker inspect -f '{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}' up-a up-b",
      "docker stats --no-stream --format '{{.Name}} {{.MemPerc}}' up-a | cut -c1-6",
      "docker stats --no-stream --format '{{.MemUsage}}' up-a | sed 's/.* \\/ //'",
      "docker update --restart on-failure:3 --cpus 0.5 --pids-limit 7 up-b",
      "docker inspect -f '{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}' up-b",
      "docker update --cpu-quota 20000 up-b",
      "docker update --restart bogus up-b",
      "docker run -d --rm --name up-c busybox sleep 100 >/dev/null",
      "docker update --restart always up-c",
      "docker update --memory 10m no-such-container",
      "docker update up-c",
      "docker rm -f up-a up-b up-c >/dev/null",
    ));
  });

  it("writes the new limits into the running container's cgroup", async () => {
    await sh(pair.berth, "docker run -d --name up-cg -m 64m busybox sleep 300 >/dev/null && docker update -m 96m --memory-swap 192m --cpus 0.25 --pids-limit 9 up-cg");
    const c = pair.berth.engine.containers.find("up-cg");
    const v1 = pair.berth.engine.containers.cgroupVersion === 1;
    const read = (controller: string, file: string) => fs.readFileSync(path.join(c.cgroup!.dir(controller), file), "utf8").trim();
    expect(read("memory", v1 ? "memory.limit_in_bytes" : "memory.max")).toBe(String(96 * 1024 ** 2));
    expect(read("cpu", v1 ? "cpu.cfs_quota_us" : "cpu.max")).toBe(v1 ? "25000" : "25000 100000");
    expect(read("pids", "pids.max")).toBe("9");
    await sh(pair.berth, "docker rm -f up-cg");
  });
});
