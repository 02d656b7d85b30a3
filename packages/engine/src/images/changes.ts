/**
 * Dockerfile instructions that only change an image's config (CMD, ENTRYPOINT, ENV, WORKDIR, USER,
 * LABEL, EXPOSE, VOLUME, STOPSIGNAL, ONBUILD): used by `docker commit --change` (the Dockerfile
 * builder has its own, stricter, version of each in ../build/builder.ts).
 */
import { EngineError } from "../errors";
import type { ContainerDefaults } from "./store";

/** `--change 'CMD ["x"]'`: the Dockerfile instructions commit accepts. */
export function applyChange(d: ContainerDefaults, line: string): ContainerDefaults {
  const m = /^(\w+)\s+([\s\S]*)$/.exec(line);
  if (!m) throw new EngineError(400, `dockerfile parse error: ${line}`);
  const [, word, rest] = m;
  const listOrShell = (s: string): string[] => {
    try {
      const v = JSON.parse(s) as unknown;
      if (Array.isArray(v)) return v.map(String);
    } catch {
      /* shell form */
    }
    return ["/bin/sh", "-c", s];
  };
  const pairs = (s: string): [string, string][] => {
    if (!s.includes("=")) {
      const [k, ...v] = s.split(/\s+/);
      return [[k!, v.join(" ")]];
    }
    return (s.match(/(?:[^\s"]+|"[^"]*")+/g) ?? []).map((p) => {
      const i = p.indexOf("=");
      return [p.slice(0, i), p.slice(i + 1).replace(/^"(.*)"$/, "$1")];
    });
  };
  switch (word!.toUpperCase()) {
    case "CMD":
      return { ...d, Cmd: listOrShell(rest!) };
    case "ENTRYPOINT":
      return { ...d, Entrypoint: listOrShell(rest!) };
    case "WORKDIR":
      return { ...d, WorkingDir: rest!.trim() };
    case "USER":
      return { ...d, User: rest!.trim() };
    case "STOPSIGNAL":
      return { ...d, StopSignal: rest!.trim() };
    case "ENV": {
      const env = [...(d.Env ?? [])];
      for (const [k, v] of pairs(rest!)) {
        const i = env.findIndex((e) => e.startsWith(`${k}=`));
        if (i >= 0) env[i] = `${k}=${v}`;
        else env.push(`${k}=${v}`);
      }
      return { ...d, Env: env };
    }
    case "LABEL":
      return { ...d, Labels: { ...(d.Labels ?? {}), ...Object.fromEntries(pairs(rest!)) } };
    case "EXPOSE": {
      const ports = { ...(d.ExposedPorts ?? {}) };
      for (const p of rest!.split(/\s+/)) ports[p.includes("/") ? p : `${p}/tcp`] = {};
      return { ...d, ExposedPorts: ports };
    }
    case "VOLUME": {
      const vols = { ...(d.Volumes ?? {}) };
      for (const v of listOrShell(rest!)[0] === "/bin/sh" ? rest!.split(/\s+/) : (JSON.parse(rest!) as string[])) vols[v] = {};
      return { ...d, Volumes: vols };
    }
    case "ONBUILD": {
      // Stored for the builder of a child image (build/builder.ts runs it after that FROM).
      const prev = (d as ContainerDefaults & { OnBuild?: string[] | null }).OnBuild ?? [];
      return { ...d, OnBuild: [...prev, rest!.trim()] } as ContainerDefaults;
    }
    default:
      throw new EngineError(400, `${word} is not a valid change command`);
  }
}
