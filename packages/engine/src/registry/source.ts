/**
 * Where missing images come from: the registries this engine can reach (docker.io names through
 * the mirror). The image store asks it first when something needs an image it lacks (a build's
 * FROM, a `docker run` of an image not pulled yet), before its own builders (busybox, debian, a
 * shared store's). `pullPlan` is the same decision for `docker pull`, made before any progress is
 * streamed, so that a missing manifest can still be an HTTP error as in dockerd.
 */
import type { ImageSource, ImageStore } from "../images/store";
import type { RegistryClient } from "./client";
import { resolvePull, runPull, type PullPlan } from "./pull";
import { DOCKER_HUB, familiarString, parseReference, type Reference } from "./reference";

export function registrySource(registry: RegistryClient): ImageSource {
  return {
    canFetch(reference) {
      try {
        return registry.canReach(parseReference(reference));
      } catch {
        return false;
      }
    },
    async fetch(store, reference, progress) {
      const plan = await resolvePull(registry, parseReference(reference));
      return runPull(store, registry, plan, (m) => progress([m.id, m.status, m.progress].filter(Boolean).join(" ")));
    },
  };
}

/**
 * What `docker pull <ref>` does: the registry's manifest when the registry serves it, or nothing
 * (undefined) when the answer is local: a docker.io name the mirror lacks (or a mirror that is
 * down) but that is here already or that the engine can make. Registry errors otherwise.
 */
export async function pullPlan(store: ImageStore, registry: RegistryClient, ref: Reference): Promise<PullPlan | undefined> {
  if (!registry.canReach(ref)) return undefined;
  try {
    return await resolvePull(registry, ref);
  } catch (e) {
    const familiar = familiarString(ref);
    if (ref.domain === DOCKER_HUB && (store.canBuildLocally(familiar) || store.resolve(familiar))) return undefined;
    throw e;
  }
}
