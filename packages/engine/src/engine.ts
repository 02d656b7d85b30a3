/**
 * The engine put together: image store, container service, API routes, the UNIX socket.
 *
 *   const engine = await startEngine({ root: "/var/lib/berth", socket: "/var/run/docker.sock" });
 *   ... DOCKER_HOST=unix:///var/run/docker.sock docker run busybox echo hi ...
 *   await engine.close();
 */
import fs from "node:fs";
import path from "node:path";
import type http from "node:http";
import { archiveRoutes } from "./api/archive";
import { containerRoutes } from "./api/containers";
import { createApiServer, Router } from "./api/http";
import { imageRoutes } from "./api/images";
import { Builder } from "./build/builder";
import { registrySource } from "./registry/source";
import { systemRoutes } from "./api/system";
import { ContainerService } from "./containers/service";
import { buildShim } from "./runtime/shim";
import { ensureBusyboxImage } from "./images/busybox";
import { buildDebianImage, cancelDebianBuilds, DEBIAN_REFERENCES } from "./images/debian";
import { importSharedImages, sharedReferences } from "./images/shared";
import { ImageStore } from "./images/store";
import { RegistryClient } from "./registry/client";
import { VolumeStore } from "./volumes/store";
import { EventLog } from "./events/log";
import { volumeRoutes } from "./api/volumes";
import { networkRoutes } from "./api/networks";
import { xrayRoutes } from "./recipe/xray";
import { NetworkManager, type NetworkOptions } from "./network/manager";
import { OverlaySnapshotter } from "./snapshots/overlay";

const OVERLAYFS_SUPER_MAGIC = 0x794c7630;

export interface EngineOptions {
  root: string; // state directory: images, containers, the compiled shim
  socket: string; // UNIX socket path to serve the Docker API on
  log?: (msg: string) => void;
  /** Start building these known images in the background if missing (e.g. ["debian:bookworm"]). */
  prebuild?: string[];
  /**
   * Read-only image stores to take images from (a sandbox's /opt/berth-images): imported in the
   * background at start when missing, layers linked rather than copied (see images/shared.ts).
   */
  sharedImages?: string[];
  /**
   * Where docker.io names are pulled from (`--registry-mirror`; main.ts falls back to
   * $BERTH_REGISTRY_MIRROR), e.g.
   * Berth's registry http://127.0.0.1:5000. Without it, a pull of a docker.io name that the engine
   * cannot make itself fails with a message saying so. Other registries are reached by their name.
   */
  registryMirror?: string;
  /**
   * Host paths no bind mount may use, the path or anything below it (`--bind-deny`). The engine's
   * own state dir is always on the list; a sandbox adds /opt/berth and the agent's directories.
   */
  bindDeny?: string[];
  /**
   * Container networking (default: on, bridge `berth0` on 172.17.0.0/16). `{ enabled: false }`
   * gives every container loopback only; the name and subnet let several engines share a host.
   */
  network?: NetworkOptions;
  /**
   * Live restore (`--live-restore`, as dockerd's): running containers outlive the engine and are
   * found running when it starts again on the same root (output while it was away is lost).
   */
  liveRestore?: boolean;
  /** A berth-shim built elsewhere (main.ts: $BERTH_SHIM); otherwise built under root/bin. */
  shim?: string;
  /** The C compiler that builds the shim (main.ts: $CC); default `cc`. */
  cc?: string;
  /** The cgroup containers' cgroups are made under (default `berth-engine`). */
  cgroupParent?: string;
}

export interface Engine {
  server: http.Server;
  containers: ContainerService;
  images: ImageStore;
  volumes: VolumeStore;
  socket: string;
  close(): Promise<void>;
}

export async function startEngine(opts: EngineOptions): Promise<Engine> {
  if (process.getuid?.() !== 0) throw new Error("the engine makes namespaces, mounts and cgroups: run it as root");
  const root = path.resolve(opts.root);
  fs.mkdirSync(root, { recursive: true });
  // overlayfs cannot take an upper dir that itself lives on overlayfs (a nested sandbox's root).
  if (fs.statfsSync(root).type === OVERLAYFS_SUPER_MAGIC) {
    throw new Error(`the state dir ${root} is on overlayfs, which cannot hold containers' upper dirs: give the engine a real filesystem there (a bind-mounted host directory or a tmpfs)`);
  }
  const registry = new RegistryClient({ mirror: opts.registryMirror });
  // Missing images come from the registries first (a build's FROM, a run of an image not here yet).
  const images = new ImageStore(root, registrySource(registry));
  await ensureBusyboxImage(images);
  images.registerBuilder(DEBIAN_REFERENCES, buildDebianImage);
  // A shared store's images replace their builders (no mmdebstrap in a sandbox). The import runs
  // after the socket listens: `docker run busybox` never waits for it, and `docker run` of a shared
  // image during it waits through the pull path (images.build shares one promise).
  const shared = (opts.sharedImages ?? []).filter((d) => sharedReferences(d).length > 0);
  const sharedRefs = shared.flatMap(sharedReferences);
  const importShared = async (store: ImageStore, progress: (line: string) => void) => {
    await new Promise((r) => setImmediate(r));
    progress(`Importing ${sharedRefs.join(", ")} from ${shared.join(", ")} (layers shared read-only)`);
    return importSharedImages(store, shared)[0]!;
  };
  if (sharedRefs.length > 0) images.registerBuilder(sharedRefs, importShared);
  const missingShared = sharedRefs.find((r) => !images.resolve(r));
  if (missingShared) {
    const t0 = Date.now();
    images.buildLocally(missingShared).then(
      () => opts.log?.(`imported ${sharedRefs.join(", ")} from ${shared.join(", ")} in ${Date.now() - t0} ms`),
      (e: Error) => opts.log?.(`could not import ${sharedRefs.join(", ")}: ${e.message}`),
    );
  }
  for (const ref of opts.prebuild ?? []) {
    if (images.resolve(ref) || sharedRefs.includes(ref)) continue;
    opts.log?.(`building ${ref} in the background (mmdebstrap)`);
    images.buildLocally(ref).then(
      () => opts.log?.(`${ref} is ready`),
      (e: Error) => opts.log?.(`could not build ${ref}: ${e.message}`),
    );
  }
  const events = new EventLog(); // `docker events`: containers, images, volumes and networks
  const volumes = new VolumeStore(root, { bindDeny: opts.bindDeny, events });
  const network = new NetworkManager(root, opts.network ?? {}, opts.log, events);
  // Nested in a sandbox there is no compiler: the host built the shim and the sandbox binds it in.
  const shimBin = opts.shim ?? buildShim(path.join(root, "bin"), opts.cc);
  // Containers' root filesystems (overlayfs over the store's layers), each in <root>/snapshots/<id>.
  const snapshots = new OverlaySnapshotter(path.join(root, "snapshots"), images);
  const containers = new ContainerService({ root, images, volumes, network, events, snapshots, shimBin, cgroupParent: opts.cgroupParent, liveRestore: opts.liveRestore });
  const router = new Router();
  systemRoutes(router, containers, images, volumes, registry, root);
  containerRoutes(router, containers, images);
  archiveRoutes(router, containers);
  imageRoutes(router, containers, images, registry, new Builder(containers, images));
  volumeRoutes(router, containers, volumes);
  networkRoutes(router, containers, network);
  xrayRoutes(router, containers); // Berth's own /berth/xray, for the X-ray panel
  const server = createApiServer(router, opts.log);
  // Hijacked connections (attach, exec) leave the HTTP server's bookkeeping: track every socket
  // so close() can end them all, or server.close() would wait for them forever.
  const sockets = new Set<import("node:net").Socket>();
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  fs.mkdirSync(path.dirname(opts.socket), { recursive: true });
  fs.rmSync(opts.socket, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.socket, () => resolve());
  });
  fs.chmodSync(opts.socket, 0o660);
  // Restart policies (always, unless-stopped, on-failure) start their containers again.
  void containers.startByPolicy().catch((e: Error) => opts.log?.(`restart policies: ${e.message}`));
  return {
    server,
    containers,
    images,
    volumes,
    socket: opts.socket,
    async close() {
      cancelDebianBuilds();
      await containers.shutdown();
      server.closeAllConnections();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      fs.rmSync(opts.socket, { force: true });
    },
  };
}
