/**
 * _ping, version, info, events, system df: what the CLI asks before (or instead of) real work.
 */
import os from "node:os";
import fs from "node:fs";
import type { ContainerService } from "../containers/service";
import { eventTime, streamEvents } from "../events/log";
import { statusText } from "../containers/container";
import type { ImageStore } from "../images/store";
import type { RegistryClient } from "../registry/client";
import type { VolumeStore } from "../volumes/store";
import { API_VERSION, MIN_API_VERSION, parseFilters, send, sendJson, startStream, type Router } from "./http";

export const ENGINE_VERSION = "0.1.0-berth";

export function systemRoutes(router: Router, svc: ContainerService, images: ImageStore, volumes: VolumeStore, registry: RegistryClient, root: string): void {
  // The CLI's first call (HEAD, then GET): it reads the negotiation headers, not the body.
  const ping = (ctx: Parameters<Parameters<Router["on"]>[2]>[0]) =>
    send(ctx, 200, "OK", "text/plain; charset=utf-8", { "Builder-Version": "1", Swarm: "inactive", "Cache-Control": "no-cache, no-store, must-revalidate", Pragma: "no-cache" });
  router.on("GET", "/_ping", ping);

  router.on("GET", "/version", (ctx) => {
    const details = { ApiVersion: API_VERSION, Arch: goArch(), BuildTime: "", Experimental: "false", GitCommit: "", GoVersion: `node ${process.version}`, KernelVersion: os.release(), MinAPIVersion: MIN_API_VERSION, Os: "linux" };
    sendJson(ctx, 200, {
      Platform: { Name: "Berth Engine" },
      Components: [{ Name: "Engine", Version: ENGINE_VERSION, Details: details }],
      Version: ENGINE_VERSION,
      ApiVersion: API_VERSION,
      MinAPIVersion: MIN_API_VERSION,
      GitCommit: "",
      GoVersion: details.GoVersion,
      Os: "linux",
      Arch: details.Arch,
      KernelVersion: details.KernelVersion,
      Experimental: false,
      BuildTime: "",
    });
  });

  router.on("GET", "/info", (ctx) => {
    const all = svc.list();
    const running = all.filter((c) => c.running).length;
    sendJson(ctx, 200, {
      ID: "",
      Containers: all.length,
      ContainersRunning: running,
      ContainersPaused: 0,
      ContainersStopped: all.length - running,
      Images: images.list().length,
      Driver: "overlay2",
      DriverStatus: [["Backing Filesystem", "extfs"]],
      Plugins: { Volume: ["local"], Network: ["null"], Authorization: null, Log: ["json-file"] },
      MemoryLimit: true,
      SwapLimit: true,
      CpuCfsPeriod: true,
      CpuCfsQuota: true,
      CPUShares: true,
      CPUSet: true,
      PidsLimit: true,
      IPv4Forwarding: true,
      Debug: false,
      NFd: 0,
      NGoroutines: 0,
      SystemTime: new Date().toISOString(),
      LoggingDriver: "json-file",
      CgroupDriver: "cgroupfs",
      CgroupVersion: String(svc.cgroupVersion),
      NEventsListener: 0,
      KernelVersion: os.release(),
      OperatingSystem: operatingSystem(),
      OSVersion: "",
      OSType: "linux",
      Architecture: os.machine(),
      IndexServerAddress: "https://index.docker.io/v1/",
      // The mirror is where docker.io names come from; loopback registries are plain HTTP (insecure).
      RegistryConfig: { IndexConfigs: {}, InsecureRegistryCIDRs: ["127.0.0.0/8"], Mirrors: registry.mirror ? [registry.mirror.href] : [] },
      NCPU: os.cpus().length,
      MemTotal: os.totalmem(),
      DockerRootDir: root,
      Name: os.hostname(),
      Labels: [],
      ExperimentalBuild: false,
      ServerVersion: ENGINE_VERSION,
      Runtimes: { "berth-shim": { path: "berth-shim" } },
      DefaultRuntime: "berth-shim",
      Swarm: { NodeID: "", NodeAddr: "", LocalNodeState: "inactive", ControlAvailable: false, Error: "", RemoteManagers: null },
      LiveRestoreEnabled: false,
      Isolation: "",
      InitBinary: "",
      SecurityOptions: ["name=cgroupns"],
      Warnings: [],
    });
  });

  // Listed for old clients (API < 1.30 needs it for run) and `docker events`.
  router.on("GET", "/events", (ctx) => {
    const filters = parseFilters(ctx);
    const since = eventTime(ctx.query.get("since"), "since");
    const until = eventTime(ctx.query.get("until"), "until");
    streamEvents(svc.events, startStream(ctx, "application/json"), { since, until, filters });
  });

  // system df: a layer counts once however many images share it (LayersSize); an image's
  // SharedSize is what it shares with another image, its unique size the rest (`-v`).
  router.on("GET", "/system/df", (ctx) => {
    const imgs = images.list();
    const users = new Map<string, number>();
    for (const c of svc.list()) users.set(c.record.Image, (users.get(c.record.Image) ?? 0) + 1);
    const layerUse = new Map<string, number>();
    for (const i of imgs) for (const d of new Set(i.config.rootfs.diff_ids)) layerUse.set(d, (layerUse.get(d) ?? 0) + 1);
    let layersSize = 0;
    for (const d of layerUse.keys()) layersSize += images.layerSizeOrZero(d);
    sendJson(ctx, 200, {
      LayersSize: layersSize,
      Images: imgs.map((i) => {
        const shared = [...new Set(i.config.rootfs.diff_ids)].filter((d) => (layerUse.get(d) ?? 0) > 1).reduce((n, d) => n + images.layerSizeOrZero(d), 0);
        return { Id: i.id, ParentId: i.config.parent ?? "", RepoTags: i.tags, RepoDigests: i.digests, Created: Math.floor(Date.parse(i.config.created) / 1000), Size: i.size, SharedSize: shared, VirtualSize: i.size, Labels: i.config.config.Labels ?? {}, Containers: users.get(i.id) ?? 0 };
      }),
      Containers: svc.list().map((c) => {
        const sizes = svc.sizes(c);
        return { Id: c.id, Names: [c.record.Name], Image: c.record.Config.Image, ImageID: c.record.Image, Command: [c.record.Path, ...c.record.Args].join(" "), Created: Math.floor(Date.parse(c.record.Created) / 1000), State: c.record.State.Status, Status: statusText(c.record.State), SizeRw: sizes.SizeRw, SizeRootFs: sizes.SizeRootFs, Labels: c.record.Config.Labels ?? {}, Mounts: [] };
      }),
      Volumes: volumes.list().map((v) => ({ Name: v.Name, Driver: "local", Mountpoint: v.Mountpoint, CreatedAt: v.CreatedAt, Labels: v.Labels, Scope: "local", Options: {}, UsageData: { Size: volumes.size(v), RefCount: svc.list().filter((c) => c.record.Mounts?.some((m) => m.Name === v.Name)).length } })),
      BuildCache: [],
    });
  });
}

function goArch(): string {
  return ({ x64: "amd64", arm64: "arm64" } as Record<string, string>)[process.arch] ?? process.arch;
}

function operatingSystem(): string {
  try {
    return /PRETTY_NAME="([^"]+)"/.exec(fs.readFileSync("/etc/os-release", "utf8"))?.[1] ?? "Linux";
  } catch {
    return "Linux";
  }
}
