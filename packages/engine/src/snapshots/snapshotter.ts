/**
 * The snapshotter: the one module that knows how a container's root filesystem is made from image
 * layers and where its own changes are kept. Containers, the builder and `docker commit` ask it,
 * by key (the container's id), and never touch its directories themselves:
 *
 *   prepare(key, parents)   a new snapshot: the image's layers below, an empty writable layer above
 *   mount(key)              the root filesystem, mounted; returns where
 *   diff(key)               what the writable layer changed (`docker diff`)
 *   commit(key)             the writable layer becomes an image layer; returns its diff id
 *   usage(key)              bytes and inodes of the writable layer (`ps -s`, `system df`)
 *   remove(key)             unmounted and deleted: nothing left
 *
 * Why an interface: the overlayfs implementation (overlay.ts) is the one Berth runs, but the
 * lesson is the contract, not overlayfs; and one contract lets one test suite
 * (test/snapshotter.test.ts) hold any implementation to it. This is containerd's snapshotter
 * idea, shrunk to what this engine uses.
 */

/** Docker's numbers for a change: 0 = changed, 1 = added, 2 = deleted. */
export type ChangeKind = 0 | 1 | 2;

/** One line of `docker diff`: "/etc/passwd" changed, "/tmp/x" added ... */
export interface Change {
  Path: string;
  Kind: ChangeKind;
}

/**
 * A thin read-only layer between the parents and the writable layer (Docker's "init layer"): the
 * engine binds files over these paths (/etc/hostname ...), so they must exist, and being below the
 * writable layer they never show in a diff or end up in a commit.
 */
export interface InitLayer {
  dirs: string[];
  files: string[];
}

/**
 * What a snapshot looks like from outside, for those who show it: inspect's GraphDriver, the
 * X-ray's layer stack, the recipe's rootfs line. Paths here are for reading about, not for writing
 * into: changes go through the mounted root, layers through commit.
 */
export interface SnapshotView {
  key: string;
  /** GraphDriver.Name and GraphDriver.Data, as `docker inspect` shows them. */
  driver: string;
  data: Record<string, string>;
  /** The read-only layers, topmost first, each with its diff id (null: the init layer). */
  layers: { dir: string; diffId: string | null }[];
  /** overlayfs's terms: lower dirs (topmost first), the writable upper dir, its work dir, the mount point. */
  lower: string[];
  upper: string;
  work: string;
  merged: string;
}

/** How to mount a snapshot, for a helper that mounts it itself (berth-shim, with mount(2)). */
export interface MountSpec {
  type: string;
  source: string;
  target: string;
  options: string;
}

export interface Snapshotter {
  /** Refuses a key that exists (409) and parents the image store does not hold (404). */
  prepare(key: string, parents: readonly string[], opts?: { init?: InitLayer }): SnapshotView;
  has(key: string): boolean;
  /** Every snapshot kept (after a restart too). */
  list(): string[];
  view(key: string): SnapshotView;
  /** Mounted (by mount() or by whoever mounted mountSpec()). */
  isMounted(key: string): boolean;
  /** The mount that mount() would make, for a helper that mounts it itself. */
  mountSpec(key: string): MountSpec;
  /** Mounts the root filesystem unless it is mounted; returns where it is. */
  mount(key: string): string;
  /** Unmounts it if mounted (lazily, if something still holds it). */
  unmount(key: string): void;
  /**
   * One file of the root filesystem without mounting it, when the layers alone can tell: its text,
   * null if it is not there, undefined if only a mount can tell (then mount and read).
   */
  readFile(key: string, rel: string): string | null | undefined;
  /** `docker diff`: what the writable layer added, changed and deleted, sorted by path. */
  diff(key: string): Change[];
  /**
   * The writable layer becomes an image layer in the image store; its diff id, or undefined if
   * nothing changed. `consume`: the caller is done with the snapshot (the builder), so the layer
   * may be moved rather than copied; the snapshot is left unmounted with an empty writable layer.
   */
  commit(key: string, opts?: { consume?: boolean }): Promise<string | undefined>;
  /** Bytes (each inode once) and inodes the writable layer holds. */
  usage(key: string): { size: number; inodes: number };
  /** Unmounted and deleted, nothing left. Unknown keys are a 404. */
  remove(key: string): Promise<void>;
  /**
   * Optional: take over a snapshot an older engine made where its record says (the container's
   * recipe.rootfs), so containers made before snapshots had their own directory keep their changes.
   */
  adopt?(key: string, paths: { lower: string[]; upper: string; work: string; merged: string }): SnapshotView;
}
