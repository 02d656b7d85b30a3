/**
 * Volumes: directories the engine owns, outside any container's layers, so data outlives the
 * container. Named (`-v data:/var/lib/x`) or anonymous (a VOLUME in the image, `-v /path`).
 *
 *   <root>/volumes/<name>/_data       what the container sees
 *   <root>/volumes/<name>/volume.json  name, labels, created, anonymous or not
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

export interface Volume {
  Name: string;
  Driver: "local";
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string>;
  Scope: "local";
  Options: Record<string, string>;
  anonymous: boolean;
}

export class VolumeStore {
  readonly dir: string;

  constructor(root: string) {
    this.dir = path.join(root, "volumes");
    fs.mkdirSync(this.dir, { recursive: true });
  }

  get(name: string): Volume | undefined {
    try {
      return JSON.parse(fs.readFileSync(path.join(this.dir, name, "volume.json"), "utf8")) as Volume;
    } catch {
      return undefined;
    }
  }

  list(): Volume[] {
    return fs.readdirSync(this.dir).map((n) => this.get(n)).filter((v): v is Volume => !!v);
  }

  /** Create (or return the existing) volume; no name makes an anonymous one. */
  create(name?: string, labels: Record<string, string> = {}): Volume {
    const existing = name ? this.get(name) : undefined;
    if (existing) return existing;
    const n = name || randomBytes(32).toString("hex");
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(n)) throw new Error(`"${n}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed`);
    const data = path.join(this.dir, n, "_data");
    fs.mkdirSync(data, { recursive: true });
    const v: Volume = { Name: n, Driver: "local", Mountpoint: data, CreatedAt: new Date().toISOString(), Labels: labels, Scope: "local", Options: {}, anonymous: !name };
    fs.writeFileSync(path.join(this.dir, n, "volume.json"), JSON.stringify(v));
    return v;
  }

  /** Docker copies what the image has at the mount point into a new, empty volume. */
  seed(v: Volume, from: string): void {
    if (!fs.existsSync(from) || !fs.statSync(from).isDirectory()) return;
    if (fs.readdirSync(v.Mountpoint).length > 0) return;
    fs.cpSync(from, v.Mountpoint, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  }

  remove(name: string): void {
    fs.rmSync(path.join(this.dir, name), { recursive: true, force: true });
  }

  size(v: Volume): number {
    let total = 0;
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile()) total += fs.statSync(p).size;
      }
    };
    try {
      walk(v.Mountpoint);
    } catch {
      /* removed meanwhile */
    }
    return total;
  }
}
