/**
 * The API edge: negotiation headers, Docker's error shapes, bad input of every kind, and the
 * engine still serving after each of them.
 */
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docker, request, startBerth, tmpDir } from "./harness";

let berth: Awaited<ReturnType<typeof startBerth>>;

beforeAll(async () => {
  berth = await startBerth();
});
afterAll(async () => {
  await berth?.stop();
});

async function stillServing(): Promise<void> {
  const r = await request(berth.socket, "GET", "/_ping");
  expect(r.status).toBe(200);
  expect(r.body).toBe("OK");
}

describe("negotiation", () => {
  it("answers HEAD and GET /_ping with the headers the CLI reads", async () => {
    for (const method of ["HEAD", "GET"]) {
      const r = await request(berth.socket, method, "/_ping");
      expect(r.status).toBe(200);
      expect(r.headers["api-version"]).toBe("1.45");
      expect(r.headers["ostype"]).toBe("linux");
      expect(r.headers["docker-experimental"]).toBe("false");
      expect(r.headers["builder-version"]).toBe("1");
      expect(r.headers["swarm"]).toBe("inactive");
    }
  });

  it("accepts versioned and unversioned paths, refuses versions out of range", async () => {
    expect((await request(berth.socket, "GET", "/v1.41/version")).status).toBe(200);
    expect((await request(berth.socket, "GET", "/version")).status).toBe(200);
    const tooNew = await request(berth.socket, "GET", "/v1.99/version");
    expect(tooNew.status).toBe(400);
    expect(JSON.parse(tooNew.body).message).toBe("client version 1.99 is too new. Maximum supported API version is 1.45");
    const tooOld = await request(berth.socket, "GET", "/v1.12/version");
    expect(tooOld.status).toBe(400);
    expect(JSON.parse(tooOld.body).message).toMatch(/^client version 1.12 is too old/);
  });

  it("version and info carry what the CLI prints", async () => {
    const v = JSON.parse((await request(berth.socket, "GET", "/version")).body);
    expect(v.Components[0].Details.MinAPIVersion).toBe("1.24");
    expect(v.Experimental).toBe(false);
    const info = await docker(berth, ["info", "--format", "{{.OSType}} {{.Driver}} {{.CgroupVersion}} {{.Swarm.LocalNodeState}} {{.Images}}"]);
    expect(info.code).toBe(0);
    expect(info.stdout.trim()).toMatch(/^linux overlay2 [12] inactive 1$/);
  });
});

describe("bad input", () => {
  it("malformed JSON is a 400 with a message, in application/json exactly", async () => {
    const r = await request(berth.socket, "POST", "/v1.45/containers/create", "{not json");
    expect(r.status).toBe(400);
    expect(r.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(r.body).message).toMatch(/^invalid JSON/);
    const arr = await request(berth.socket, "POST", "/v1.45/containers/create", "[1,2]");
    expect(arr.status).toBe(400);
    await stillServing();
  });

  it("unknown ids are 404 in Docker's words", async () => {
    const r = await request(berth.socket, "GET", "/v1.45/containers/nosuch/json");
    expect(r.status).toBe(404);
    expect(r.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(r.body)).toEqual({ message: "No such container: nosuch" });
    const img = await request(berth.socket, "POST", "/v1.45/containers/create", JSON.stringify({ Image: "nosuchimage" }));
    expect(img.status).toBe(404);
    expect(JSON.parse(img.body).message).toBe("No such image: nosuchimage:latest");
    const exec = await request(berth.socket, "GET", "/v1.45/exec/deadbeef/json");
    expect(exec.status).toBe(404);
    const page = await request(berth.socket, "GET", "/v1.45/nothing/here");
    expect(page.status).toBe(404);
    expect(JSON.parse(page.body).message).toBe("page not found");
    const cli = await docker(berth, ["rm", "x-nosuch"]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain("Error response from daemon: No such container: x-nosuch");
  });

  it("an oversized body is refused before it is read, and the engine keeps serving", async () => {
    const big = Buffer.alloc(2 << 20, 0x20);
    const r = await request(berth.socket, "POST", "/v1.45/containers/create", big).catch((e: Error) => ({ status: -1, body: e.message, headers: {} }));
    // Either the 413 arrives, or the engine closed the connection while the client was still sending.
    if (r.status !== -1) {
      expect(r.status).toBe(413);
      expect(JSON.parse(r.body).message).toMatch(/request body too large/);
    }
    // A body that claims to be huge is answered at once, without sending it.
    const claimed = await new Promise<string>((resolve, reject) => {
      const s = net.createConnection(berth.socket, () => s.write("POST /v1.45/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n{"));
      let got = "";
      s.on("data", (d) => (got += d.toString()));
      s.on("close", () => resolve(got));
      s.on("error", reject);
      setTimeout(() => s.destroy(), 3000);
    });
    expect(claimed).toMatch(/^HTTP\/1.1 413/);
    await stillServing();
  });

  it("an exec start whose body arrives after its headers keeps the body out of the process's stdin", async () => {
    expect((await docker(berth, ["run", "-d", "--name", "late-body", "busybox", "sleep", "300"])).code).toBe(0);
    const created = await request(berth.socket, "POST", "/v1.41/containers/late-body/exec", JSON.stringify({ AttachStdin: true, AttachStdout: true, AttachStderr: true, Cmd: ["cat"] }));
    const execId = JSON.parse(created.body).Id as string;
    const body = JSON.stringify({ Detach: false, Tty: false });
    // Headers, then (as on a busy machine) the body in a later write, then stdin: what the CLI sends.
    const out = await new Promise<Buffer>((resolve) => {
      const s = net.createConnection(berth.socket, async () => {
        s.write(`POST /v1.41/exec/${execId}/start HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
        await new Promise((r) => setTimeout(r, 150));
        s.write(body.slice(0, 5));
        await new Promise((r) => setTimeout(r, 50));
        s.write(body.slice(5));
        await new Promise((r) => setTimeout(r, 50));
        s.end("only this\n");
      });
      const got: Buffer[] = [];
      s.on("data", (d: Buffer) => got.push(d));
      s.on("close", () => resolve(Buffer.concat(got)));
      s.on("error", () => resolve(Buffer.concat(got)));
    });
    expect(out.toString("latin1")).toMatch(/^HTTP\/1.1 101 UPGRADED/);
    // The stream after the headers: stdout frames (1, 0, 0, 0, size as 4 bytes big-endian, payload).
    let stream = out.subarray(out.indexOf("\r\n\r\n") + 4);
    let stdout = "";
    while (stream.length >= 8) {
      const size = stream.readUInt32BE(4);
      if (stream[0] === 1) stdout += stream.subarray(8, 8 + size).toString("utf8");
      stream = stream.subarray(8 + size);
    }
    expect(stdout).toBe("only this\n");
    expect((await docker(berth, ["rm", "-f", "late-body"])).code).toBe(0);
  });

  it("garbage on the socket is answered and dropped", async () => {
    const answer = await new Promise<string>((resolve) => {
      const s = net.createConnection(berth.socket, () => s.write("this is not http\r\n\r\n"));
      let got = "";
      s.on("data", (d) => (got += d.toString()));
      s.on("close", () => resolve(got));
      s.on("error", () => resolve(got));
    });
    expect(answer).toMatch(/^HTTP\/1.1 400/);
    await stillServing();
  });

  it("cp cannot write or read outside the container", async () => {
    const created = await docker(berth, ["create", "--name", "cp-jail", "busybox", "true"]);
    expect(created.code).toBe(0);
    // A symlink inside the container that points at the host's root must stay inside the container.
    const dir = tmpDir("berth-cp-");
    try {
      fs.writeFileSync(path.join(dir, "evil.txt"), "x");
      const up = await docker(berth, ["cp", path.join(dir, "evil.txt"), "cp-jail:/../../../../../tmp/"]);
      expect(up.code).toBe(0);
      // It landed in the container's /tmp, not the host's.
      expect(fs.existsSync("/tmp/evil.txt") && fs.readFileSync("/tmp/evil.txt", "utf8") === "x").toBe(false);
      const back = await docker(berth, ["cp", "cp-jail:/tmp/evil.txt", "-"]);
      expect(back.code).toBe(0);
      expect(back.stdout).toContain("evil.txt");
      // A tar member with ../ is refused outright.
      const tar = buildTar("../../escape.txt", "boom");
      const r = await request(berth.socket, "PUT", "/v1.45/containers/cp-jail/archive?path=/tmp", tar, { "Content-Type": "application/x-tar" });
      expect(r.status).toBe(400);
      expect(JSON.parse(r.body).message).toMatch(/outside of/);
      // /etc/passwd of the host is not what the container's /etc/passwd gives back.
      const passwd = await docker(berth, ["cp", "cp-jail:/../../../etc/passwd", "-"]);
      expect(passwd.stdout).toContain("root:x:0:0:root:/root:/bin/sh");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      await docker(berth, ["rm", "-f", "cp-jail"]);
    }
    await stillServing();
  });
});

/** A one-file ustar archive, written by hand so the name can be anything. */
function buildTar(name: string, content: string): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 100);
  header.write("0000644\0", 100);
  header.write("0000000\0", 108);
  header.write("0000000\0", 116);
  header.write(content.length.toString(8).padStart(11, "0") + "\0", 124);
  header.write("00000000000\0", 136);
  header.write("        ", 148);
  header.write("0", 156);
  header.write("ustar\0", 257);
  header.write("00", 263);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(sum.toString(8).padStart(6, "0") + "\0 ", 148);
  const body = Buffer.alloc(Math.ceil(content.length / 512) * 512);
  body.write(content);
  return Buffer.concat([header, body, Buffer.alloc(1024)]);
}
