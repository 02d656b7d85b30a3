// Which workshop chapter teaches each part of the X-ray, by the lab's id and a step anchor of it.
// Checked against the catalog when the hub starts: a renamed lab drops its links, never breaks them.
export interface ChapterLink {
  labId: string;
  step?: string;
  title: string;
}

export const CHAPTERS: Record<string, ChapterLink> = {
  namespaces: { labId: "namespaces-by-hand", step: "proc-ns", title: "Namespaces by hand: namespaces are files" },
  "namespace:uts": { labId: "namespaces-by-hand", step: "uts", title: "Namespaces by hand: a hostname of your own" },
  "namespace:pid": { labId: "namespaces-by-hand", step: "pid", title: "Namespaces by hand: PID 1, again" },
  "namespace:mnt": { labId: "namespaces-by-hand", step: "mnt", title: "Namespaces by hand: mounts of your own" },
  "namespace:net": { labId: "namespaces-by-hand", step: "netns", title: "Namespaces by hand: a network of its own" },
  "namespace:user": { labId: "namespaces-by-hand", step: "userns", title: "Namespaces by hand: root, but only inside" },
  cgroup: { labId: "cgroups-by-hand", step: "memory-limit", title: "Control groups by hand" },
  "cgroup:memory": { labId: "cgroups-by-hand", step: "memory-limit", title: "Control groups by hand: a memory limit" },
  "cgroup:cpu": { labId: "cgroups-by-hand", step: "cpu", title: "Control groups by hand: throttle a busy loop" },
  "cgroup:pids": { labId: "cgroups-by-hand", step: "pids", title: "Control groups by hand: contain a fork bomb" },
  layers: { labId: "copy-on-write", step: "mount", title: "Copy-on-write: mount the overlay" },
  upper: { labId: "copy-on-write", step: "container", title: "Copy-on-write: the same marks in a container" },
  mounts: { labId: "inside-the-engine", step: "by-hand", title: "Inside the engine: a container by hand" },
  volumes: { labId: "volumes", title: "Volumes that outlive their containers" },
  ports: { labId: "networking", title: "Reaching a container over the network" },
  networks: { labId: "networking", title: "Reaching a container over the network" },
  capabilities: { labId: "container-security", title: "Container security" },
  user: { labId: "users-and-ids", title: "Users and IDs" },
  recipe: { labId: "inside-the-engine", step: "recipe", title: "Inside the engine: what the engine wrote down" },
};

/** The links whose lab exists in this installation. */
export function availableChapters(hasLab: (id: string) => boolean): Record<string, ChapterLink> {
  return Object.fromEntries(Object.entries(CHAPTERS).filter(([, c]) => hasLab(c.labId)));
}
