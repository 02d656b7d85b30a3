/**
 * Bench: container networking, Berth's engine against dockerd 20.10 in the same run. Each engine
 * runs in a fresh network namespace of its own (see harness.ts), with a busybox httpd container
 * published on port 8080; curl runs in that namespace ("the host").
 *   - TCP throughput through the published port: a 256 MiB file downloaded once per round.
 *     Berth: iptables DNAT for IPv4 (127.0.0.1 too, with route_localnet), its userland proxy for
 *     [::1]. dockerd: docker-proxy for 127.0.0.1 and [::1], DNAT for a local non-loopback address
 *     (10.99.0.1 on a veth end).
 *   - connection latency: time_total of a fresh connection and a 6-byte GET, N times.
 *   - `docker run -d` (create + start) on a user-defined network, and on none for comparison.
 * Root required. Usage: npx tsx test/bench/network.ts [requests=200] [runs=20]
 */
import { execFileSync } from "node:child_process";
import { CLI_28, startBerthInNetns, startDockerd, sleep } from "../../packages/engine/test/harness";
import { percentile } from "./lib";

const REQUESTS = Number(process.argv[2] ?? 200);
const RUNS = Number(process.argv[3] ?? 20);
const WEB = "mkdir -p /www && echo hello > /www/small && dd if=/dev/zero of=/www/big bs=1M count=256 2>/dev/null && exec httpd -f -p 80 -h /www";

function docker(host: string, args: string[]): string {
  return execFileSync(CLI_28, args, { env: { ...process.env, DOCKER_HOST: host }, encoding: "utf8" });
}

function timeMs(host: string, args: string[]): number {
  const t0 = process.hrtime.bigint();
  docker(host, args);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** curl in the engine's namespace; `-w` output only. */
function curl(ns: string, args: string[]): string {
  return execFileSync("nsenter", [`--net=/run/netns/${ns}`, "curl", "-g", "-s", "-o", "/dev/null", ...args], { encoding: "utf8", maxBuffer: 64 << 20 });
}

function throughputMiBs(ns: string, url: string, rounds = 3): number {
  const speeds: number[] = [];
  for (let i = 0; i < rounds; i++) speeds.push(Number(curl(ns, ["-w", "%{speed_download}", url])) / 2 ** 20);
  return Math.round(percentile(speeds, 50));
}

function latencyMs(ns: string, url: string): number[] {
  // One curl, many URLs: busybox httpd closes each connection, so every request is a new one.
  const out = curl(ns, ["-w", "%{time_total}\\n", url, ...Array.from({ length: REQUESTS - 1 }, () => ["-o", "/dev/null", url]).flat()]);
  return out.trim().split("\n").map((s) => Number(s) * 1000);
}

const fmt = (xs: number[]) => `p50 ${percentile(xs, 50).toFixed(2)} / p90 ${percentile(xs, 90).toFixed(2)} ms`;

async function main() {
  const [berth, dockerd] = await Promise.all([startBerthInNetns(), startDockerd({ network: true })]);
  const rows: string[] = [];
  try {
    for (const d of [berth, dockerd]) {
      const ns = d.netns!.name;
      // A local non-loopback address (this kernel has no dummy driver: one end of a veth pair).
      execFileSync("ip", ["-n", ns, "link", "add", "bench0", "type", "veth", "peer", "name", "bench1"]);
      execFileSync("ip", ["-n", ns, "addr", "add", "10.99.0.1/32", "dev", "bench0"]);
      execFileSync("ip", ["-n", ns, "link", "set", "bench0", "up"]);
      execFileSync("ip", ["-n", ns, "link", "set", "bench1", "up"]);
      docker(d.host, ["run", "-d", "--name", "web", "-p", "8080:80", "busybox", "sh", "-c", WEB]);
      docker(d.host, ["network", "create", "bench"]);
    }
    for (let i = 0; i < 100; i++) {
      const ok = [berth, dockerd].every((d) => { try { return curl(d.netns!.name, ["-w", "%{http_code}", "http://127.0.0.1:8080/big"]) === "200"; } catch { return false; } });
      if (ok) break;
      await sleep(200);
    }
    const paths: [string, string, string][] = [
      ["Berth, DNAT (127.0.0.1)", berth.netns.name, "127.0.0.1"],
      ["Berth, DNAT (10.99.0.1)", berth.netns.name, "10.99.0.1"],
      ["Berth, userland proxy ([::1])", berth.netns.name, "[::1]"],
      ["dockerd, docker-proxy (127.0.0.1)", dockerd.netns!.name, "127.0.0.1"],
      ["dockerd, iptables DNAT (10.99.0.1)", dockerd.netns!.name, "10.99.0.1"],
      ["dockerd, docker-proxy ([::1])", dockerd.netns!.name, "[::1]"],
      ["Berth, container address directly", berth.netns.name, "172.17.0.2:80"],
      ["dockerd, container address directly", dockerd.netns!.name, "172.17.0.2:80"],
    ];
    rows.push("| path | throughput (MiB/s, 256 MiB, median of 3) | new connection + GET |", "|---|---|---|");
    for (const [label, ns, addr] of paths) {
      const host = addr.includes(":80") ? addr : `${addr}:8080`;
      const tp = throughputMiBs(ns, `http://${host}/big`);
      const lat = latencyMs(ns, `http://${host}/small`);
      rows.push(`| ${label} | ${tp} | ${fmt(lat)} |`);
    }
    rows.push("", `| \`docker run -d busybox sleep 300\`, ${RUNS} runs | Berth | dockerd |`, "|---|---|---|");
    for (const [label, net] of [["--network bench (user-defined)", "bench"], ["--network bridge", "bridge"], ["--network none", "none"]] as const) {
      const ours: number[] = [], theirs: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        ours.push(timeMs(berth.host, ["run", "-d", "--network", net, "busybox", "sleep", "300"]));
        theirs.push(timeMs(dockerd.host, ["run", "-d", "--network", net, "busybox", "sleep", "300"]));
      }
      rows.push(`| ${label} | ${fmt(ours)} | ${fmt(theirs)} |`);
      for (const d of [berth, dockerd]) {
        const ids = docker(d.host, ["ps", "-q", "--filter", "ancestor=busybox"]).split("\n").filter((x) => x && !x.startsWith(docker(d.host, ["ps", "-q", "--filter", "name=web"]).trim()));
        if (ids.length) docker(d.host, ["rm", "-f", ...ids]);
      }
    }
    console.log(rows.join("\n"));
  } finally {
    await Promise.all([berth.stop(), dockerd.stop()]);
  }
}

await main();
