/**
 * Docker's JSON (a create or exec request, an image's config) into the engine's typed record:
 * pure functions, no files, no processes, so they are unit-tested without root
 * (test/spec.test.ts). Defaults and refusals follow dockerd's, in its words.
 */
import os from "node:os";
import type { Limits } from "../cgroups/cgroups";
import { EngineError } from "../errors";
import type { ContainerDefaults } from "../images/store";
import type { ContainerConfig, HealthConfig, HostConfig } from "./container";

export function asStrings(v: unknown): string[] {
  if (Array.isArray(v)) return v.map(String);
  if (typeof v === "string") return [v];
  return [];
}

/** What Docker adds to every process's environment: PATH, HOSTNAME, TERM with a tty, HOME. */
export function daemonEnvironment(env: string[], hostname: string, tty: boolean, home: string): string[] {
  const base = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", `HOSTNAME=${hostname}`];
  if (tty) base.push("TERM=xterm");
  const merged = mergeEnv(base, env);
  if (!merged.some((e) => e.startsWith("HOME="))) merged.push(`HOME=${home}`);
  return merged;
}

export function mergeEnv(base: string[], extra: string[]): string[] {
  const m = new Map<string, string>();
  for (const e of [...base, ...extra]) {
    const k = e.split("=")[0]!;
    m.delete(k);
    m.set(k, e);
  }
  return [...m.values()];
}

/** Image defaults under the create request, the way Docker merges them. */
export function containerConfig(body: Record<string, unknown>, defaults: ContainerDefaults | undefined, id: string, imageRef: string): ContainerConfig {
  const d = defaults ?? {};
  const entrypointGiven = body.Entrypoint !== undefined && body.Entrypoint !== null;
  let entrypoint = entrypointGiven ? asStrings(body.Entrypoint) : d.Entrypoint ?? null;
  if (entrypoint && entrypoint.length === 1 && entrypoint[0] === "") entrypoint = null; // --entrypoint ""
  const cmdGiven = Array.isArray(body.Cmd) && (body.Cmd as unknown[]).length > 0;
  // A new entrypoint drops the image's Cmd, as in Docker.
  const cmd = cmdGiven ? asStrings(body.Cmd) : entrypointGiven ? null : d.Cmd ?? null;
  const labels = { ...(d.Labels ?? {}), ...((body.Labels as Record<string, string>) ?? {}) };
  const hostname = typeof body.Hostname === "string" && body.Hostname ? body.Hostname : id.slice(0, 12);
  const ports = { ...(d.ExposedPorts ?? {}), ...((body.ExposedPorts as Record<string, object>) ?? {}) };
  const volumes = { ...(d.Volumes ?? {}), ...((body.Volumes as Record<string, object>) ?? {}) };
  const cfg: ContainerConfig = {
    Hostname: hostname,
    Domainname: String(body.Domainname ?? ""),
    User: String(body.User || d.User || ""),
    AttachStdin: !!body.AttachStdin,
    AttachStdout: !!body.AttachStdout,
    AttachStderr: !!body.AttachStderr,
    Tty: !!body.Tty,
    OpenStdin: !!body.OpenStdin,
    StdinOnce: !!body.StdinOnce,
    Env: mergeEnv(d.Env ?? [], asStrings(body.Env)),
    Cmd: cmd,
    Image: imageRef,
    Volumes: Object.keys(volumes).length ? volumes : null,
    WorkingDir: String(body.WorkingDir || d.WorkingDir || ""),
    Entrypoint: entrypoint,
    OnBuild: null,
    Labels: labels,
  };
  if (Object.keys(ports).length) cfg.ExposedPorts = ports;
  if (body.StopSignal || d.StopSignal) cfg.StopSignal = String(body.StopSignal || d.StopSignal);
  if (typeof body.StopTimeout === "number") cfg.StopTimeout = body.StopTimeout;
  const health = healthcheck(body.Healthcheck as HealthConfig | undefined, (d as { Healthcheck?: HealthConfig }).Healthcheck);
  if (health) cfg.Healthcheck = health;
  return cfg;
}

/**
 * --health-* flags over the image's HEALTHCHECK, as dockerd merges them: an empty Test or a zero
 * duration takes the image's. Durations under a millisecond and negative retries are refused.
 */
export function healthcheck(asked: HealthConfig | undefined | null, image: HealthConfig | undefined): HealthConfig | undefined {
  if (!asked) return image ? { ...image } : undefined;
  const h: HealthConfig = { ...asked, Test: asked.Test?.length ? asked.Test : image?.Test ?? [] };
  for (const k of ["Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"] as const) {
    if (!h[k] && image?.[k]) h[k] = image[k];
    if (!h[k]) delete h[k];
  }
  for (const k of ["Interval", "Timeout", "StartPeriod", "StartInterval"] as const) {
    const v = h[k];
    if (v !== undefined && v !== 0 && v < 1e6) throw new EngineError(400, `${k === "StartPeriod" ? "StartPeriod" : k === "StartInterval" ? "StartInterval" : k} in Healthcheck cannot be less than 1ms`);
  }
  if ((h.Retries ?? 0) < 0) throw new EngineError(400, "Retries in Healthcheck cannot be negative");
  return h.Test.length ? h : undefined;
}

/** HostConfig as dockerd stores it; `cpus` is the host's CPU count (limits are checked against it). */
export function hostConfigFrom(h: Record<string, unknown>, cpus = os.cpus().length): HostConfig {
  const num = (k: string) => (typeof h[k] === "number" ? (h[k] as number) : 0);
  const strs = (k: string) => (Array.isArray(h[k]) ? (h[k] as unknown[]).map(String) : null);
  const nanoCpus = num("NanoCpus");
  if (nanoCpus && (nanoCpus < 0.01e9 || nanoCpus > cpus * 1e9)) throw new EngineError(400, `Range of CPUs is from 0.01 to ${cpus}.00, as there are only ${cpus} CPUs available`);
  const memory = num("Memory");
  if (memory && memory < 6 * 1024 * 1024) throw new EngineError(400, "Minimum memory limit allowed is 6MB");
  const swap = num("MemorySwap");
  if (memory && swap > 0 && swap < memory) throw new EngineError(400, "Minimum memoryswap limit should be larger than memory limit, see usage");
  const cpuset = typeof h.CpusetCpus === "string" ? h.CpusetCpus : "";
  if (cpuset && !validCpuset(cpuset, cpus)) throw new EngineError(400, `Requested CPUs are not available - requested ${cpuset}, available: 0-${cpus - 1}`);
  return {
    ...h,
    Binds: strs("Binds"),
    NetworkMode: typeof h.NetworkMode === "string" && h.NetworkMode ? h.NetworkMode : "default",
    PortBindings: (h.PortBindings as HostConfig["PortBindings"]) ?? {},
    RestartPolicy: restartPolicy(h.RestartPolicy as { Name?: string; MaximumRetryCount?: number } | undefined),
    AutoRemove: !!h.AutoRemove,
    CapAdd: strs("CapAdd"),
    CapDrop: strs("CapDrop"),
    Privileged: !!h.Privileged,
    ReadonlyRootfs: !!h.ReadonlyRootfs,
    SecurityOpt: strs("SecurityOpt"),
    Memory: memory,
    MemorySwap: memory > 0 && swap === 0 ? memory * 2 : swap, // dockerd's default: as much swap as memory
    NanoCpus: nanoCpus,
    CpuShares: num("CpuShares"),
    CpuPeriod: num("CpuPeriod"),
    CpuQuota: num("CpuQuota"),
    CpusetCpus: cpuset,
    CpusetMems: typeof h.CpusetMems === "string" ? h.CpusetMems : "",
    PidsLimit: typeof h.PidsLimit === "number" && h.PidsLimit > 0 ? h.PidsLimit : null,
    LogConfig: { Type: "json-file", Config: {} },
    ConsoleSize: Array.isArray(h.ConsoleSize) ? (h.ConsoleSize as [number, number]) : [0, 0],
  };
}

export function validCpuset(spec: string, n = os.cpus().length): boolean {
  return spec.split(",").every((part) => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    return !!m && Number(m[1]) < n && (m[2] === undefined || (Number(m[2]) < n && Number(m[2]) >= Number(m[1])));
  });
}

export function limitsOf(h: HostConfig): Limits {
  return { memory: h.Memory, memorySwap: h.MemorySwap, nanoCpus: h.NanoCpus, cpuQuota: h.CpuQuota, cpuPeriod: h.CpuPeriod, cpuShares: h.CpuShares, cpusetCpus: h.CpusetCpus, pidsLimit: h.PidsLimit ?? undefined };
}

export function consoleSize(s: [number, number] | undefined): { rows: number; cols: number } | undefined {
  return s && s[0] && s[1] ? { rows: s[0], cols: s[1] } : undefined;
}


/**
 * `docker update`: the request's non-zero fields onto a container's HostConfig, refused in
 * dockerd's words where they conflict with what is set. Returns the new HostConfig and the limits
 * a running container's cgroup must get (only what changed).
 */
export function updatedHostConfig(h: HostConfig, body: Record<string, unknown>, id: string, cpus = os.cpus().length): { hostConfig: HostConfig; limits: Limits } {
  const num = (k: string) => (typeof body[k] === "number" ? (body[k] as number) : 0);
  const refuse = (why: string) => new EngineError(409, `Cannot update container ${id}: ${why}`);
  const next: HostConfig = { ...h };
  const limits: Limits = {};
  const nanoCpus = num("NanoCpus"), quota = num("CpuQuota"), period = num("CpuPeriod");
  if (nanoCpus && (h.CpuQuota || quota)) throw refuse("Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set");
  if ((quota || period) && h.NanoCpus) throw refuse(`Conflicting options: CPU ${quota ? "Quota" : "Period"} cannot be updated as NanoCPUs has already been set`);
  if (nanoCpus && (nanoCpus < 0.01e9 || nanoCpus > cpus * 1e9)) throw refuse(`Range of CPUs is from 0.01 to ${cpus}.00, as there are only ${cpus} CPUs available`);
  const memory = num("Memory"), swap = num("MemorySwap");
  if (memory && memory < 6 * 1024 * 1024) throw refuse("Minimum memory limit allowed is 6MB");
  if (memory && swap > 0 && swap < memory) throw refuse("Minimum memoryswap limit should be larger than memory limit, see usage");
  if (memory && memory > h.MemorySwap && !swap) throw refuse("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time");
  const cpuset = typeof body.CpusetCpus === "string" ? body.CpusetCpus : "";
  if (cpuset && !validCpuset(cpuset, cpus)) throw refuse(`Requested CPUs are not available - requested ${cpuset}, available: 0-${cpus - 1}`);
  if (memory) next.Memory = limits.memory = memory;
  if (swap) next.MemorySwap = swap;
  if (memory || swap) {
    limits.memory = next.Memory;
    limits.memorySwap = next.MemorySwap;
  }
  if (nanoCpus) next.NanoCpus = limits.nanoCpus = nanoCpus;
  if (quota || period) {
    if (quota) next.CpuQuota = quota;
    if (period) next.CpuPeriod = period;
    limits.cpuQuota = next.CpuQuota;
    limits.cpuPeriod = next.CpuPeriod;
  }
  if (num("CpuShares")) next.CpuShares = limits.cpuShares = num("CpuShares");
  if (cpuset) next.CpusetCpus = limits.cpusetCpus = cpuset;
  if (typeof body.PidsLimit === "number" && body.PidsLimit !== 0) {
    next.PidsLimit = body.PidsLimit > 0 ? body.PidsLimit : null;
    limits.pidsLimit = body.PidsLimit > 0 ? body.PidsLimit : -1;
  }
  const policy = body.RestartPolicy as { Name?: string; MaximumRetryCount?: number } | undefined;
  if (policy?.Name) {
    if (h.AutoRemove && policy.Name !== "no") throw refuse("Restart policy cannot be updated because AutoRemove is enabled for the container");
    next.RestartPolicy = restartPolicy(policy);
  }
  return { hostConfig: next, limits };
}

/** --restart: no, always, unless-stopped, on-failure[:N]; refused as dockerd refuses them. */
export function restartPolicy(p: { Name?: string; MaximumRetryCount?: number } | undefined): HostConfig["RestartPolicy"] {
  const name = p?.Name || "no";
  const max = typeof p?.MaximumRetryCount === "number" ? p.MaximumRetryCount : 0;
  if (!["no", "always", "unless-stopped", "on-failure"].includes(name)) throw new EngineError(400, `invalid restart policy '${name}'`);
  if (max > 0 && name !== "on-failure") throw new EngineError(400, `maximum retry count cannot be used with restart policy '${name}'`);
  if (max < 0) throw new EngineError(400, "maximum retry count cannot be negative");
  return { Name: name, MaximumRetryCount: max };
}

/** --add-host lines ("name:ip" or "name=ip"), placed after the standard entries as dockerd does. */
export function withExtraHosts(hosts: string, extra: string[] | null | undefined): string {
  if (!extra?.length) return hosts;
  const lines = extra.map((e) => {
    const i = e.includes("=") ? e.indexOf("=") : e.indexOf(":");
    if (i <= 0) throw new EngineError(400, `invalid extra host: ${e}`);
    return `${e.slice(i + 1).replace(/^\[(.*)\]$/, "$1")}\t${e.slice(0, i)}`;
  });
  const all = hosts.replace(/\n$/, "").split("\n");
  const lastDefault = all.findIndex((l) => l.startsWith("ff02::2"));
  all.splice(lastDefault >= 0 ? lastDefault + 1 : all.length, 0, ...lines);
  return `${all.join("\n")}\n`;
}

/**
 * --dns, --dns-search and --dns-option over the resolv.conf the network gave: each replaces its
 * kind of line. Behind the embedded DNS server (127.0.0.11, user networks) the nameserver stays.
 */
export function withDnsSettings(resolv: string, h: HostConfig): string {
  const dns = (h.Dns as string[] | null | undefined) ?? [];
  const search = (h.DnsSearch as string[] | null | undefined) ?? [];
  const options = (h.DnsOptions as string[] | null | undefined) ?? [];
  if (!dns.length && !search.length && !options.length) return resolv;
  let lines = resolv.split("\n").filter((l) => l.trim() !== "");
  const embedded = lines.some((l) => /^nameserver\s+127\.0\.0\.11\b/.test(l));
  if (dns.length && !embedded) lines = [...lines.filter((l) => !/^nameserver\s/.test(l)), ...dns.map((d) => `nameserver ${d}`)];
  if (search.length) lines = [...lines.filter((l) => !/^(search|domain)\s/.test(l)), `search ${search.join(" ")}`];
  if (options.length) lines = [...lines.filter((l) => !/^options\s/.test(l)), `options ${options.join(" ")}`];
  return `${lines.join("\n")}\n`;
}

/** --ulimit name=soft[:hard] as the shim takes them ("RESOURCE:SOFT:HARD"). */
export function rlimitsOf(h: HostConfig, table: Record<string, number>): string[] {
  const list = (h.Ulimits as { Name: string; Soft: number; Hard: number }[] | null | undefined) ?? [];
  return list.map((u) => {
    const n = table[u.Name];
    if (n === undefined) throw new EngineError(400, `invalid ulimit type: ${u.Name}`);
    if (u.Soft > u.Hard) throw new EngineError(400, `ulimit soft limit must be less than or equal to hard limit: ${u.Soft} > ${u.Hard}`);
    const v = (x: number) => (x < 0 ? "18446744073709551615" : String(x));
    return `${n}:${v(u.Soft)}:${v(u.Hard)}`;
  });
}

/** --sysctl as "key=value", refused unless it belongs to the container's own namespaces. */
export function sysctlsOf(h: HostConfig): string[] {
  const s = (h.Sysctls as Record<string, string> | null | undefined) ?? {};
  return Object.entries(s).map(([k, v]) => {
    const ipc = /^(kernel\.(msgmax|msgmnb|msgmni|sem|shmall|shmmax|shmmni|shm_rmid_forced)|fs\.mqueue\..+)$/.test(k);
    const net = k.startsWith("net.");
    if (!ipc && !net) throw new EngineError(400, `sysctl '${k}' is not allowed`);
    if (net && h.NetworkMode === "host") throw new EngineError(400, `sysctl '${k}' is not allowed in host network mode`);
    return `${k}=${v}`;
  });
}
