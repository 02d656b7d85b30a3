/**
 * Volumes and mounts (chapter 13), judged by the real docker CLI against Berth's engine and a real
 * dockerd: the same scripts on both, outputs and exit codes compared after ids, times and the
 * engines' own state paths are masked. Then bad input, on Berth alone where dockerd has no
 * counterpart (the bind deny list).
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseMounts } from "../src/volumes/mounts";
import { VolumeStore } from "../src/volumes/store";
import { CLI_20, CLI_28, normalize, request, tmpDir, type Daemon } from "./harness";
import { berthAndDockerd } from "./differential";

const pair = berthAndDockerd();

const scratch = tmpDir("berth-vol-test-");

afterAll(async () => {
  fs.rmSync(scratch, { recursive: true, force: true });
}, 60_000);

function sh(d: Daemon, script: string, cli = CLI_28): Promise<{ out: string; code: number }> {
  const prelude = `docker() { "${cli}" "$@"; }\nset -o pipefail 2>/dev/null\n`;
  return new Promise((resolve) => {
    execFile("bash", ["-c", prelude + script], { env: { ...process.env, DOCKER_HOST: d.host, DOCKER_CLI_HINTS: "false" }, timeout: 90_000, encoding: "utf8" }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 255) : 0;
      // Each engine keeps its volumes under its own state dir: mask the part before /volumes/.
      const out = `${stdout}${stderr ? `\n--stderr--\n${stderr}` : ""}`.replace(/\/tmp\/(berth|dockerd)-test-[^/"\s]+\/(state|data)\/volumes\//g, "<volumes>/");
      resolve({ out: normalize(out), code });
    });
  });
}

/** The same script on both engines at once (each has its own names and state; it halves the wait). */
async function same(script: string, cli = CLI_28): Promise<string> {
  const [ours, theirs] = await Promise.all([sh(pair.berth, script, cli), sh(pair.dockerd, script, cli)]);
  expect(ours.out, `berth vs dockerd for:\n${script}`).toBe(theirs.out);
  expect(ours.code).toBe(theirs.code);
  return ours.out;
}

// Every line echoes its exit code, so a difference in any step shows.
const steps = (...lines: string[]) => lines.map((l) => `${l}; echo "[$?]"`).join("\n");

describe("chapter 13: volumes against dockerd", () => {
  it("two containers share a named volume: a write in one is read in the other at once, and the data outlives both", async () => {
    const out = await same(steps(
      "docker volume create --label course=13 v13-shared",
      "docker run -d --name v13-w -v v13-shared:/data busybox sleep 300 >/dev/null",
      "docker run -d --name v13-r -v v13-shared:/data:ro busybox sleep 300 >/dev/null",
      "docker exec v13-w sh -c 'echo written-now > /data/flag' && docker exec v13-r cat /data/flag",
      "docker exec v13-r sh -c 'echo no > /data/flag'",
      "docker volume rm v13-shared",
      "docker rm -f v13-w v13-r",
      "docker run --rm -v v13-shared:/data busybox cat /data/flag",
      "docker volume inspect -f '{{.Name}} {{.Driver}} {{.Scope}} {{json .Labels}} {{json .Options}}' v13-shared",
      "docker volume rm v13-shared",
      "docker volume ls -q --filter name=v13-shared | wc -l",
    ));
    expect(out).toContain("written-now\n[0]");
    expect(out).toMatch(/remove v13-shared: volume is in use - \[<id>, <id>\]/);
  });

  it("--volumes-from moves a v1 server's data (its image VOLUME) to a v2 server", async () => {
    const out = await same(steps(
      "docker run --name v13-mk busybox sh -c 'mkdir -p /var/lib/app && echo schema-1 > /var/lib/app/VERSION' >/dev/null",
      `docker commit --change 'VOLUME /var/lib/app' --change 'CMD ["sh","-c","echo v1 $(cat /var/lib/app/VERSION) >> /var/lib/app/log; cat /var/lib/app/log"]' v13-mk v13-server:1 >/dev/null`,
      `docker commit --change 'VOLUME /var/lib/app' --change 'CMD ["sh","-c","echo v2 took over >> /var/lib/app/log; cat /var/lib/app/log"]' v13-mk v13-server:2 >/dev/null`,
      "docker rm v13-mk >/dev/null",
      "docker run --name v13-v1 v13-server:1",
      "docker run --name v13-v2 --volumes-from v13-v1 v13-server:2",
      "docker run --rm --volumes-from v13-v2:ro busybox sh -c 'cat /var/lib/app/VERSION; echo x >> /var/lib/app/log'",
      "docker inspect -f '{{range .Mounts}}{{.Type}} {{.Destination}} {{.RW}} {{.Mode}}{{end}}' v13-v2",
      "n=$(docker volume ls -q | wc -l); docker rm v13-v1 >/dev/null; docker rm -v v13-v2 >/dev/null; echo $((n - $(docker volume ls -q | wc -l))) volume removed",
      "docker rmi v13-server:1 v13-server:2 >/dev/null",
    ));
    expect(out).toContain("v1 schema-1\nv2 took over\n[0]");
  });

  it("a tmpfs mount: its size in df, its content gone after a restart; --tmpfs options", async () => {
    const out = await same(steps(
      "docker run -d --name v13-t --mount type=tmpfs,dst=/scratch,tmpfs-size=2m busybox sh -c 'cat /scratch/f 2>/dev/null || echo empty; echo kept > /scratch/f; sleep 300' >/dev/null",
      "sleep 0.5; docker exec v13-t sh -c 'df -k /scratch | tail -1 | tr -s \" \" | cut -d\" \" -f2; cat /scratch/f; grep \" /scratch \" /proc/mounts'",
      "docker restart -t 0 v13-t >/dev/null; sleep 0.5; docker logs v13-t",
      "docker inspect -f '{{json .Mounts}}' v13-t",
      "docker rm -f v13-t >/dev/null",
      "docker run --rm --tmpfs /run:size=64k,mode=700 busybox sh -c 'df -k /run | tail -1 | tr -s \" \" | cut -d\" \" -f2; stat -c %a /run; grep \" /run \" /proc/mounts'",
      "docker run --rm --tmpfs /run:exec,uid=5 busybox sh -c 'stat -c %u /run; grep \" /run \" /proc/mounts'",
      "docker run --rm --mount type=tmpfs,dst=/x,readonly,tmpfs-mode=1770 busybox sh -c 'stat -c %a /x; touch /x/f'",
      // a volume below a tmpfs is mounted after it, not hidden by it
      "docker run --rm --tmpfs /data -v v13-tv:/data/sub busybox sh -c 'echo below > /data/sub/f; grep -c \" /data\" /proc/mounts'",
      "docker run --rm -v v13-tv:/v busybox cat /v/f; docker volume rm v13-tv >/dev/null",
    ));
    expect(out).toContain("2\n[0]\nbelow\n[0]");
    expect(out).toContain("2048\nkept\n");
    expect(out).toContain("empty\nempty\n");
  });

  it("image VOLUME: the image's files copied into a new, empty volume only, owner and mode kept; nocopy", async () => {
    const out = await same(steps(
      "docker run --name v13-mk2 busybox sh -c 'mkdir /data && echo seed > /data/s && chown -R 1000:1000 /data && chmod 750 /data' && docker commit --change 'VOLUME /data' v13-mk2 v13-seeded >/dev/null && docker rm v13-mk2 >/dev/null",
      "docker run --rm v13-seeded sh -c 'ls -ln /data | sed 1d | cut -c1-30; stat -c \"%a %u\" /data'",
      "docker run --rm -v v13-s:/data v13-seeded sh -c 'cat /data/s; echo changed > /data/s'",
      "docker run --rm -v v13-s:/data v13-seeded cat /data/s",
      "docker run --rm -v v13-s:/data busybox sh -c 'rm /data/s'",
      "docker run --rm -v v13-s:/data v13-seeded ls /data",
      "docker run --rm -v v13-n1:/data:nocopy v13-seeded ls /data",
      "docker run --rm --mount type=volume,src=v13-n2,dst=/data,volume-nocopy v13-seeded ls -a /data",
      "docker volume rm v13-s v13-n1 v13-n2",
      "docker rmi v13-seeded >/dev/null",
    ));
    expect(out).toContain("750 1000");
  });

  it("--read-only keeps volumes and tmpfs writable; commit leaves volume content out", async () => {
    await same(steps(
      "docker run --rm --read-only -v v13-ro:/data --tmpfs /tmp busybox sh -c 'echo ok > /data/f && echo ok > /tmp/f && cat /data/f /tmp/f; touch /nope'",
      "docker volume rm v13-ro",
      "docker run --name v13-cm -v v13-cmv:/data -v /anon busybox sh -c 'echo secret > /data/f; echo s2 > /anon/f; echo layer > /l'",
      "docker diff v13-cm | sort",
      "docker commit v13-cm v13-cmimg >/dev/null",
      "docker run --rm v13-cmimg sh -c 'ls -a /data /anon; cat /l'",
      "docker image inspect -f '{{json .Config.Volumes}}' v13-cmimg",
      "docker rm -v v13-cm",
      "docker rmi v13-cmimg >/dev/null",
      "docker volume rm v13-cmv",
    ));
  });

  it("docker cp reaches into volumes, of running and of stopped containers", async () => {
    const file = path.join(scratch, "cp-in");
    fs.writeFileSync(file, "copied in\n");
    await same(steps(
      "docker volume create v13-c0 >/dev/null; docker volume inspect -f '{{json .Labels}} {{json .Options}}' v13-c0; docker volume rm v13-c0 >/dev/null",
      "docker run -d --name v13-cpr -v v13-cpv:/data busybox sleep 300 >/dev/null",
      `docker cp ${file} v13-cpr:/data/f && docker exec v13-cpr cat /data/f`,
      "docker cp v13-cpr:/data/f - | tar -xO",
      "docker create --name v13-cps -v /anon busybox true >/dev/null",
      `docker cp ${file} v13-cps:/anon/f && docker run --rm --volumes-from v13-cps busybox cat /anon/f`,
      "docker cp v13-cps:/anon/. - | tar -t | sort",
      `docker run --rm -v ${file}:/not/in/the/image/f:ro busybox cat /not/in/the/image/f`,
      "docker rm -fv v13-cpr v13-cps >/dev/null; docker volume rm v13-cpv",
    ));
  });

  it("a symlink in the image moves a mount inside the container, never onto the host's files", async () => {
    const host = path.join(scratch, "host-secret");
    fs.mkdirSync(host, { recursive: true });
    fs.writeFileSync(path.join(host, "s"), "host-secret\n");
    const out = await same(steps(
      `docker run --name v13-ln busybox sh -c 'ln -s /etc /data; ln -s ${host} /esc' >/dev/null`,
      "docker commit --change 'VOLUME /esc' v13-ln v13-lnimg >/dev/null; docker rm v13-ln >/dev/null",
      "docker run --rm -v v13-lv:/data v13-lnimg sh -c 'readlink /data; touch /etc/marker'",
      "docker run --rm -v v13-lv:/x busybox sh -c 'ls /x/marker /x/passwd'",
      "docker run --rm v13-lnimg sh -c 'readlink /esc; ls -A /esc | wc -l'",
      "docker run --rm -v v13-lv2:/esc/sub v13-lnimg sh -c 'ls -d /esc/sub'",
      `ls ${host}`,
      "docker volume rm v13-lv v13-lv2 >/dev/null; docker rmi v13-lnimg >/dev/null",
    ));
    expect(out).toContain(`${host}\n0\n[0]`); // the image's /esc: an empty volume, not the host's directory
    expect(fs.readdirSync(host)).toEqual(["s"]);
  });

  it("rm -v and --rm take anonymous volumes along, never named ones", async () => {
    await same(steps(
      "n=$(docker volume ls -q | wc -l)",
      "docker run --name v13-rm -v v13-named:/n -v /anon busybox true",
      "echo $(( $(docker volume ls -q | wc -l) - n )) added",
      "docker rm -v v13-rm",
      "echo $(( $(docker volume ls -q | wc -l) - n )) left; docker volume ls -q --filter name=v13-named",
      "docker run --rm -v v13-named:/n -v /anon2 busybox true",
      "echo $(( $(docker volume ls -q | wc -l) - n )) left",
      "docker run --name v13-rm2 -v /anon3 busybox true; docker rm v13-rm2",
      "echo $(( $(docker volume ls -q | wc -l) - n )) left",
      "docker volume ls -q --filter dangling=true | grep -v v13-named | xargs -r docker volume rm >/dev/null",
      "docker volume rm v13-named",
    ));
  });

  it("volume ls filters and format, inspect, ps --filter volume=, and Mounts in inspect", async () => {
    const dir = path.join(scratch, "binds");
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "file"), "from the host\n");
    const out = await same(steps(
      "docker volume create --label tier=db --label backup v13-a >/dev/null",
      "docker volume create v13-b >/dev/null",
      "docker volume ls --filter label=tier=db",
      // (one label only: the CLI prints a volume's labels in Go's random map order)
      "docker volume ls --filter label=backup --filter label=tier --format '{{.Name}} {{.Driver}} {{.Scope}} {{.Label \"tier\"}}'",
      "docker volume ls -q --filter name=v13- --filter driver=local",
      "docker volume ls -q --filter driver=loc",
      `docker create --name v13-m -v v13-a:/a -v v13-b:/b:ro -v /c -v ${dir}:/d -v ${dir}/file:/e:ro,z --mount type=volume,src=v13-f,dst=/f --mount type=volume,dst=/g --mount type=bind,src=${dir},dst=/h,readonly --mount type=tmpfs,dst=/i,tmpfs-size=1m --tmpfs /j:size=1m busybox true >/dev/null`,
      "docker inspect -f '{{range .Mounts}}{{json .}}\n{{end}}' v13-m | sed -E 's/[0-9a-f]{64}/<id>/g' | sort",
      "docker inspect -f '{{json .HostConfig.Tmpfs}} {{json .Config.Volumes}}' v13-m",
      "docker volume ls -q --filter dangling=false --filter name=v13-",
      "docker volume ls -q --filter dangling=true --filter name=v13-",
      "docker ps -a --filter volume=v13-a --format '{{.Names}}'",
      "docker ps -a --filter volume=/g --format '{{.Names}}'",
      `docker ps -a --filter volume=${dir} --format '{{.Names}}'`,
      "docker ps -a --filter volume=v13-nothing --format '{{.Names}}'",
      "docker start -a v13-m",
      "docker rm -v v13-m",
      "docker volume rm v13-a v13-b v13-f",
    ));
    expect(out).toContain('{"Type":"bind","Source":"' + dir + '/file","Destination":"/e","Mode":"ro,z","RW":false,"Propagation":"rprivate"}');
  });

  it("volume prune before API 1.42 (CLI 20.10): every unused volume, with label filters", async () => {
    await same(steps(
      "docker volume create --label keep=yes v13-p1 >/dev/null; docker volume create v13-p2 >/dev/null; docker volume create v13-p3 >/dev/null",
      "docker run --rm -v v13-p2:/d busybox sh -c 'printf 12345 > /d/f'",
      "docker run -d --name v13-pu -v v13-p3:/d busybox sleep 300 >/dev/null",
      "docker volume prune -f --filter label!=keep=yes",
      "docker volume ls -q --filter name=v13-p | sort",
      "docker volume prune -f --filter all=1",
      "docker rm -f v13-pu >/dev/null; docker volume rm v13-p1 v13-p3",
    ), CLI_20);
  });
});

describe("volumes: Berth alone", () => {
  it("volume prune at API 1.45: anonymous volumes only unless --all, and anonymous ones are labelled", async () => {
    const out = await sh(pair.berth, steps(
      "docker volume create v13-q >/dev/null",
      "docker run --name v13-qa -v /anon busybox true && docker rm v13-qa >/dev/null",
      "docker volume ls -q --filter label=com.docker.volume.anonymous | wc -l",
      "docker volume prune -f | grep -c '^[0-9a-f]\\{64\\}$'",
      "docker volume ls -q",
      "docker volume prune -af",
      "docker volume ls -q | wc -l",
    ));
    expect(out.out).toBe(normalize("[0]\n[0]\n1\n[0]\n1\n[0]\nv13-q\n[0]\nDeleted Volumes:\nv13-q\n\nTotal reclaimed space: 0B\n[0]\n0\n[0]\n"));
  });

  it("refuses bad input in Docker's words and leaves nothing behind", async () => {
    const out = await same(steps(
      "n=$(docker volume ls -q | wc -l)",
      "docker run --rm -v v13-x:relative busybox true",
      "docker run --rm -v /tmp:relative busybox true",
      "docker run --rm --mount type=bind,src=/tmp,dst=relative busybox true",
      "docker run --rm --mount type=volume,src=v13-y,dst=/ busybox true",
      "docker run --rm --tmpfs relative busybox true",
      "docker run --rm --mount type=nfs,dst=/x busybox true",
      "docker run --rm --mount type=volume,dst=/x,bogus=1 busybox true",
      "docker run --rm --mount type=bind,src=/no/such/dir,dst=/x busybox true",
      "docker run --rm --mount type=volume,src=/abs,dst=/x busybox true",
      "docker run --rm -v v13-z:/x:rw,ro busybox true",
      "docker run --rm -v v13-z:/x:rshared busybox true",
      "docker run --rm -v /tmp:/x:nocopy busybox true",
      "docker run --rm --tmpfs /x:bogus=1 busybox true",
      "docker run --rm --volumes-from v13-nope busybox true",
      "docker volume create x",
      "docker volume create -d nodriver v13-d",
      "docker volume create -o foo=bar v13-o",
      "docker volume ls --filter dangling=maybe",
      "docker volume inspect v13-nope",
      "echo $(( $(docker volume ls -q | wc -l) - n )) volumes made",
    ));
    expect(out).toContain("invalid volume specification: 'v13-x:relative': invalid mount config for type \"volume\": invalid mount path: 'relative' mount path must be absolute");
    expect(out).toContain("invalid mount config for type \"nfs\": mount type unknown");
    expect(out).toContain("0 volumes made");
  });

  it("refuses a bind of the engine's own state dir (and anything below it), creating nothing", async () => {
    const state = path.join(pair.berth.root, "state");
    const probe = path.join(state, "made-by-a-bind");
    const out = await sh(pair.berth, steps(
      `docker run --rm -v ${state}:/x busybox true`,
      `docker run --rm -v ${probe}:/x busybox true`,
      `docker run --rm --mount type=bind,src=${state}/volumes,dst=/x busybox true`,
    ));
    expect(out.out).toContain(`invalid volume specification: '${state}:/x': invalid mount config for type "bind": bind source path ${state} is not allowed`);
    expect(out.out).toContain(`invalid mount config for type "bind": bind source path ${state}/volumes is not allowed`);
    expect(out.out.match(/\[125\]/g)?.length).toBe(3);
    expect(fs.existsSync(probe)).toBe(false);
  });

  it("the deny list holds through symlinks and .., and a sibling with the same prefix is fine", () => {
    const root = tmpDir("berth-vol-deny-");
    try {
      const denied = path.join(root, "opt-berth");
      fs.mkdirSync(path.join(denied, "bin"), { recursive: true });
      fs.mkdirSync(path.join(root, "opt-berth-other"));
      fs.symlinkSync(denied, path.join(root, "link"));
      const store = new VolumeStore(path.join(root, "engine"), { bindDeny: [denied] });
      const plan = (bind: string) => parseMounts({ binds: [bind], mounts: [], tmpfs: {}, volumesFrom: [], volumes: [] }, { store, mountsOf: () => [] });
      for (const src of [denied, `${denied}/bin`, `${root}/link/bin`, `${root}/opt-berth-other/../opt-berth`, `${denied}/not/yet/made`, `${root}/engine/volumes`]) {
        expect(() => plan(`${src}:/x`), src).toThrow(/is not allowed/);
      }
      expect(plan(`${root}/opt-berth-other:/x`)[0]).toMatchObject({ Type: "bind", Destination: "/x", RW: true, Propagation: "rprivate" });
      expect(() => parseMounts({ binds: [], mounts: [{ Type: "bind", Source: `${root}/link`, Target: "/x" }], tmpfs: {}, volumesFrom: [], volumes: [] }, { store, mountsOf: () => [] })).toThrow(/invalid mount config for type "bind": bind source path .* is not allowed/);
      // Checked before anything is made: the refused plan created no volume.
      expect(() => plan(`v13-unmade:/x`) && parseMounts({ binds: ["v13-unmade:/x", `${denied}:/y`], mounts: [], tmpfs: {}, volumesFrom: [], volumes: [] }, { store, mountsOf: () => [] })).toThrow(/is not allowed/);
      expect(store.list()).toEqual([]);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it("the API: bad Mounts and Binds bodies get a 400 that names the problem", async () => {
    const create = (hostConfig: unknown) => request(pair.berth.socket, "POST", "/containers/create", JSON.stringify({ Image: "busybox", Cmd: ["true"], HostConfig: hostConfig }));
    const cases: [unknown, RegExp][] = [
      [{ Mounts: [{ Type: "bind", Source: "/tmp", Target: "rel" }] }, /invalid mount config for type \\"bind\\": invalid mount path: 'rel' mount path must be absolute/],
      [{ Mounts: [{ Target: "/x" }] }, /invalid mount config for type \\"\\": mount type unknown/],
      [{ Mounts: [{ Type: "tmpfs", Target: "/x", TmpfsOptions: { SizeBytes: -1 } }] }, /invalid tmpfs size -1/],
      [{ Mounts: [{ Type: "volume", Source: "v13-api", Target: "/x", VolumeOptions: { DriverConfig: { Name: "flocker" } } }] }, /plugin \\"flocker\\" not found/],
      [{ Binds: ["a:b:c:d"] }, /invalid volume specification: 'a:b:c:d'/],
      [{ Binds: ["v13-dup1:/x", "v13-dup2:/x/"] }, /Duplicate mount point: \/x/],
      [{ Binds: [":/x"] }, /invalid volume specification: ':\/x'/],
      [{ Tmpfs: { "/x": "size=1m,bogus" } }, /invalid tmpfs option \[\\"bogus\\"\]/],
    ];
    for (const [hc, want] of cases) {
      const res = await create(hc);
      // An unknown volume driver is a 404 in dockerd too.
      expect(res.status, JSON.stringify(hc)).toBe(/flocker/.test(JSON.stringify(hc)) ? 404 : 400);
      expect(res.body).toMatch(want);
    }
    expect((await request(pair.berth.socket, "GET", "/volumes")).body).not.toMatch(/v13-dup|v13-api/);
    expect((await request(pair.berth.socket, "POST", "/volumes/create", JSON.stringify({ Name: "../escape" }))).status).toBe(400);
    expect((await request(pair.berth.socket, "GET", "/volumes/..%2F..%2Fetc")).status).toBe(404);
  });
});
