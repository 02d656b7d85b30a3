/**
 * busybox:latest, made offline from Debian's busybox-static: one static binary and a symlink per
 * applet (what `busybox --install -s` would make), plus the few files every image is expected to
 * have. It becomes a single content-addressed layer, so `docker run busybox ...` needs no registry.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { ImageStore, tarDirectory } from "./store";

export const BUSYBOX_BINARY = "/bin/busybox";
export const BUSYBOX_CMD = ["sh"];

/** Lay out a busybox root filesystem in `dir` (which must not exist). */
export function makeBusyboxRootfs(dir: string, binary = BUSYBOX_BINARY): void {
  if (!fs.existsSync(binary)) throw new Error(`${binary} is missing: install Debian's busybox-static (apt-get install busybox-static)`);
  for (const d of ["bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "home", "var/spool/mail", "var/www", "dev", "proc", "sys"]) {
    fs.mkdirSync(path.join(dir, d), { recursive: true });
  }
  fs.mkdirSync(path.join(dir, "tmp"), { mode: 0o1777 });
  fs.chmodSync(path.join(dir, "tmp"), 0o1777);
  fs.chmodSync(path.join(dir, "root"), 0o700);
  fs.copyFileSync(binary, path.join(dir, "bin/busybox"));
  fs.chmodSync(path.join(dir, "bin/busybox"), 0o755);
  const applets = execFileSync(binary, ["--list-full"], { encoding: "utf8" }).split("\n").filter(Boolean);
  for (const applet of applets) {
    const at = path.join(dir, applet);
    if (applet === "bin/busybox" || fs.existsSync(at)) continue;
    fs.mkdirSync(path.dirname(at), { recursive: true });
    fs.symlinkSync(path.relative(path.dirname(at), path.join(dir, "bin/busybox")), at);
  }
  const files: Record<string, string> = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nbin:x:2:2:bin:/bin:/bin/false\nsys:x:3:3:sys:/dev:/bin/false\nsync:x:4:100:sync:/bin:/bin/sync\nmail:x:8:8:mail:/var/spool/mail:/bin/false\nwww-data:x:33:33:www-data:/var/www:/bin/false\noperator:x:37:37:Operator:/var:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
    "etc/group": "root:x:0:\ndaemon:x:1:\nbin:x:2:\nsys:x:3:\nadm:x:4:\ntty:x:5:\ndisk:x:6:\nwheel:x:10:root\nmail:x:12:\nwww-data:x:33:\nusers:x:100:\nnogroup:x:65533:\nnobody:x:65534:\n",
    "etc/shadow": "root:*::::::\nnobody:*::::::\n",
  };
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  fs.chmodSync(path.join(dir, "etc/shadow"), 0o600);
}

/** The busybox root filesystem as a tarball: what the tests give a real dockerd with `docker import`. */
export function makeBusyboxTarball(out: string): void {
  const dir = `${out}.d`;
  fs.rmSync(dir, { recursive: true, force: true });
  makeBusyboxRootfs(dir);
  tarDirectory(dir, out);
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Make busybox:latest in the store unless it is there already. Returns the image id. */
export async function ensureBusyboxImage(store: ImageStore): Promise<string> {
  const existing = store.resolve("busybox:latest");
  if (existing) return existing.id;
  const dir = path.join(store.root, "tmp", `busybox-${process.pid}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  makeBusyboxRootfs(dir);
  return store.addBaseImage(dir, {
    cmd: BUSYBOX_CMD,
    createdBy: `berth: ${BUSYBOX_BINARY} from Debian's busybox-static, one symlink per applet`,
    references: ["busybox:latest"],
  });
}
