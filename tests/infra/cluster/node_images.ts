/**
 * The images the test node runs besides kubeface's worker image, built here with podman
 * (nothing can be pulled): the sandbox image (the pause program), an image under the name the
 * Kubernetes backend uses by default for the stock Deno image, made from this machine's Deno
 * with the stock image's layout, and a busybox image for shell probes. Every image is `FROM
 * scratch` with a few copied files; a build is skipped when the tag exists with the same layout.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { PAUSE_VERSION } from "./node_build.ts";
import { podman } from "./podman.ts";

/** Bumped whenever the layout of an image below changes, so cached images are rebuilt. */
const LAYOUT = "1";

/** The sandbox image, pinned in containerd's config so it is never pulled. */
export const PAUSE_IMAGE = `localhost/kubeface/pause:${PAUSE_VERSION}`;

/**
 * The stock Deno image as the Kubernetes backend names it by default
 * (`denoland/deno:<Deno version>`, normalised).
 */
export const DENO_IMAGE = `docker.io/denoland/deno:${Deno.version.deno}`;

/** Debian's static busybox with its applets on PATH: `sh`, `sleep`, `echo`, … */
export const BUSYBOX_IMAGE = `localhost/kubeface/busybox:${LAYOUT}`;

/** User and group id of the stock Deno image's `deno` user. */
export const DENO_UID = 1993;

/** Options of {@link ensureNodeImages}. */
export interface NodeImageOptions {
  /** The pause binary (see node_build.ts). */
  pause: string;
  /** The Deno binary put into the Deno image. @default Deno.execPath() */
  deno?: string;
  /** The static busybox binary. @default "/bin/busybox" */
  busybox?: string;
  /** Receives progress lines. @default () => {} */
  onProgress?: (line: string) => void;
}

/**
 * Build the node's images into podman's store unless they are there.
 *
 * @param options The binaries that go into them and a progress callback.
 * @returns The image names, normalised and tagged.
 * @throws {Error} When a binary is missing or `podman build` fails.
 */
export async function ensureNodeImages(options: NodeImageOptions): Promise<string[]> {
  const { pause, deno = Deno.execPath(), busybox = "/bin/busybox", onProgress = () => {} } =
    options;
  await build(PAUSE_IMAGE, onProgress, async (dir) => {
    await place(pause, join(dir, "root/pause"));
    return 'FROM scratch\nCOPY root/ /\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n';
  });
  await build(DENO_IMAGE, onProgress, async (dir) => {
    const root = join(dir, "root");
    await place(deno, join(root, "usr/bin/deno"));
    for (const lib of await sharedLibraries(deno)) await place(lib, join(root, lib));
    await Deno.mkdir(join(root, "etc"), { recursive: true });
    await Deno.writeTextFile(
      join(root, "etc/passwd"),
      `root:x:0:0:root:/root:/bin/sh\ndeno:x:${DENO_UID}:${DENO_UID}::/home/deno:/bin/sh\n`,
    );
    await Deno.writeTextFile(join(root, "etc/group"), `root:x:0:\ndeno:x:${DENO_UID}:\n`);
    const ca = "/etc/ssl/certs/ca-certificates.crt";
    await place(ca, join(root, ca)).catch(() => {}); // a machine without CA certificates
    await Deno.mkdir(join(root, "tmp"));
    await Deno.chmod(join(root, "tmp"), 0o1777);
    await Deno.mkdir(join(dir, "deno-dir"));
    // The stock image's layout: Deno on PATH, DENO_DIR=/deno-dir/ owned by `deno` (1993), no
    // USER (pods choose theirs). Its tini and docker-entrypoint.sh are left out: pods of
    // kubeface always give a command, so no shell is needed.
    return [
      "FROM scratch",
      "COPY root/ /",
      `COPY --chown=${DENO_UID}:${DENO_UID} deno-dir/ /deno-dir/`,
      "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\",
      "    DENO_DIR=/deno-dir/ DENO_INSTALL_ROOT=/usr/local \\",
      `    DENO_VERSION=${Deno.version.deno}`,
      'ENTRYPOINT ["/usr/bin/deno"]',
      'CMD ["--version"]',
      "",
    ].join("\n");
  });
  await build(BUSYBOX_IMAGE, onProgress, async (dir) => {
    const bin = join(dir, "root/bin");
    await place(busybox, join(bin, "busybox"));
    const { stdout } = await new Deno.Command(busybox, { args: ["--list"], stdout: "piped" })
      .output();
    for (const applet of new TextDecoder().decode(stdout).split("\n").filter(Boolean)) {
      if (applet !== "busybox") await Deno.symlink("busybox", join(bin, applet));
    }
    await Deno.mkdir(join(dir, "root/tmp"));
    await Deno.chmod(join(dir, "root/tmp"), 0o1777);
    return 'FROM scratch\nCOPY root/ /\nENV PATH=/bin\nCMD ["sh"]\n';
  });
  return [PAUSE_IMAGE, DENO_IMAGE, BUSYBOX_IMAGE];
}

/** Build `image` from the context `fill` writes (it returns the Dockerfile), unless it exists. */
async function build(
  image: string,
  onProgress: (line: string) => void,
  fill: (dir: string) => Promise<string>,
): Promise<void> {
  const label = `kubeface.layout=${LAYOUT}`;
  const inspect = await podman(["image", "inspect", "--format", "{{.Labels}}", image], {
    check: false,
  });
  if (inspect.code === 0 && inspect.stdout.includes(label.replace("=", ":"))) return;
  const dir = await Deno.makeTempDir({ prefix: "kubeface-node-image-" });
  try {
    onProgress(`Building the image ${image} with podman`);
    await Deno.writeTextFile(join(dir, "Dockerfile"), await fill(dir));
    await podman(["build", "--quiet", "--tag", image, "--label", label, dir]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Hard-link (or copy) the file `from` resolves to, to `to`, creating parent directories. */
async function place(from: string, to: string): Promise<void> {
  const real = await Deno.realPath(from);
  await Deno.mkdir(dirname(to), { recursive: true });
  try {
    await Deno.link(real, to);
  } catch {
    await Deno.copyFile(real, to);
  }
}

/** Absolute paths of the shared libraries a binary links, from `ldd`. */
async function sharedLibraries(binary: string): Promise<string[]> {
  const output = await new Deno.Command("ldd", { args: [binary], stdout: "piped" }).output();
  if (!output.success) throw new Error(`Cannot list the libraries of ${binary}: ldd failed`);
  const text = new TextDecoder().decode(output.stdout);
  return [...new Set([...text.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/g)].map((m) => m[1]!))];
}

/**
 * The reference containerd and the kubelet use for an image name: with a registry
 * (`docker.io` when none is given, `library/` for a single-component name). The name must have
 * a tag: an untagged name means `:latest`, which the kubelet always pulls.
 *
 * @param name An image name as a pod spec gives it, e.g. `denoland/deno:2.9.6`.
 * @returns E.g. `docker.io/denoland/deno:2.9.6`.
 * @throws {TypeError} When the name has no tag or digest.
 */
export function normalizedImage(name: string): string {
  const lastPart = name.slice(name.lastIndexOf("/") + 1);
  if (!lastPart.includes(":") && !name.includes("@")) {
    throw new TypeError(
      `Cannot use the image '${name}' on the test node: it has no tag, so the kubelet would pull it; add a tag`,
    );
  }
  const [first, ...rest] = name.split("/");
  if (rest.length > 0 && (first!.includes(".") || first!.includes(":") || first === "localhost")) {
    return name;
  }
  return rest.length === 0 ? `docker.io/library/${name}` : `docker.io/${name}`;
}

/** Options of {@link importImages}. */
export interface ImportOptions {
  /** Path of ctr. */
  ctr: string;
  /** The containerd socket. */
  address: string;
  /** Receives progress lines. @default () => {} */
  onProgress?: (line: string) => void;
}

/**
 * Copy images from podman's store into containerd's `k8s.io` namespace (the CRI plugin's), under
 * their normalised names, so the kubelet finds them and never pulls: `podman save` piped into
 * `ctr images import`.
 *
 * @param images Image names as pods give them; each must be in podman's store.
 * @param options ctr, the containerd socket and a progress callback.
 * @throws {Error} When podman or ctr fails.
 */
export async function importImages(images: string[], options: ImportOptions): Promise<void> {
  const { ctr, address, onProgress = () => {} } = options;
  for (const image of images) {
    const name = normalizedImage(image);
    if (name !== image) await podman(["tag", image, name]);
    onProgress(`Importing ${name} into containerd`);
    const save = new Deno.Command("podman", {
      args: ["save", "--format", "docker-archive", name],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const load = new Deno.Command(ctr, {
      args: ["--address", address, "--namespace", "k8s.io", "images", "import", "-"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const [saved, saveErrors, loaded] = await Promise.all([
      save.stdout.pipeTo(load.stdin).then(() => save.status),
      new Response(save.stderr).text(),
      load.output(),
    ]);
    const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes).trim();
    if (!saved.success) throw new Error(`Cannot save the image ${name}: ${saveErrors.trim()}`);
    if (!loaded.success) {
      throw new Error(`Cannot import the image ${name} into containerd: ${decode(loaded.stderr)}`);
    }
  }
}
