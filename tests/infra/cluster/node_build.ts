/**
 * Build the node's own binaries once per version, like the control plane (see build.ts):
 * containerd, ctr and the runc shim from `github.com/containerd/containerd/v2`, and the pause
 * program of the sandbox image (a static Go binary that waits for SIGTERM). runc and the CNI
 * plugins come from Debian packages.
 *
 * @module
 */

import { allExist, go, install, throwawayModule, timed } from "./go_build.ts";
import {
  cacheRoot,
  CONTAINERD_BINARIES,
  CONTAINERD_VERSION,
  containerdBinDir,
} from "./versions.ts";

/** Absolute paths of the node's built binaries. */
export interface NodeBinaries {
  containerd: string;
  ctr: string;
  shim: string;
  /** The sandbox image's program. */
  pause: string;
}

/** Options of {@link ensureNodeBinaries}. */
export interface EnsureNodeBinariesOptions {
  /** Cache root (see `cacheRoot()` in versions.ts). @default cacheRoot() */
  root?: string;
  /** Receives one line per build step. @default () => {} */
  onProgress?: (line: string) => void;
}

/** Version of {@link PAUSE_SOURCE}; change it with the source so the cache is rebuilt. */
export const PAUSE_VERSION = "1";

/**
 * The sandbox's only process: it holds the pod's namespaces until the kubelet stops the pod,
 * exits on SIGTERM or SIGINT, and reaps orphans as PID 1 must.
 */
const PAUSE_SOURCE = `package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	children := make(chan os.Signal, 1)
	signal.Notify(children, syscall.SIGCHLD)
	for {
		select {
		case <-stop:
			return
		case <-children:
			for {
				pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
		}
	}
}
`;

/**
 * Return the paths of the node's binaries, building the ones that are missing.
 *
 * @param options Cache root and a progress callback.
 * @returns Absolute paths of containerd, ctr, the runc shim and pause.
 * @throws {Error} When `go` fails; the message carries the command and its stderr.
 */
export async function ensureNodeBinaries(
  options: EnsureNodeBinariesOptions = {},
): Promise<NodeBinaries> {
  const { root = cacheRoot(), onProgress = () => {} } = options;
  const dir = containerdBinDir(root);
  if (!(await allExist(CONTAINERD_BINARIES.map((name) => `${dir}/${name}`)))) {
    await timed(`containerd ${CONTAINERD_VERSION}`, onProgress, () => buildContainerd(root, dir));
  }
  const pauseDir = `${root}/cluster/pause-${PAUSE_VERSION}/bin`;
  if (!(await allExist([`${pauseDir}/pause`]))) {
    await timed(`pause ${PAUSE_VERSION}`, onProgress, () => buildPause(root, pauseDir));
  }
  return {
    containerd: `${dir}/containerd`,
    ctr: `${dir}/ctr`,
    shim: `${dir}/containerd-shim-runc-v2`,
    pause: `${pauseDir}/pause`,
  };
}

/**
 * Build containerd, ctr and containerd-shim-runc-v2 of {@link CONTAINERD_VERSION} into `binDir`.
 * The three `cmd` packages are fetched with `go get` first: without it `go build` stops at
 * "missing go.sum entry". The version is stamped as containerd's Makefile does, so the node
 * reports `containerd://2.4.2`.
 */
async function buildContainerd(root: string, binDir: string): Promise<void> {
  const module = await throwawayModule(root, "containerd");
  try {
    const base = "github.com/containerd/containerd/v2";
    await Deno.writeTextFile(
      `${module}/go.mod`,
      "module kubeface.local/containerdbuild\n\ngo 1.24\n",
    );
    const packages = CONTAINERD_BINARIES.map((name) => `${base}/cmd/${name}`);
    await go(module, ["get", ...packages.map((pkg) => `${pkg}@${CONTAINERD_VERSION}`)]);
    const version = CONTAINERD_VERSION.replace(/^v/, "");
    const ldflags = [
      "-s -w",
      `-X ${base}/version.Version=${version}`,
      `-X ${base}/version.Revision=${CONTAINERD_VERSION}`,
      `-X ${base}/version.Package=github.com/containerd/containerd`,
    ].join(" ");
    const out = `${module}/out`;
    await Deno.mkdir(out);
    await go(module, [
      "build",
      "-trimpath",
      "-tags",
      "no_btrfs",
      "-ldflags",
      ldflags,
      "-o",
      `${out}/`,
      ...packages,
    ]);
    await install(out, binDir, [...CONTAINERD_BINARIES]);
  } finally {
    await Deno.remove(module, { recursive: true });
  }
}

/** Build the pause program into `binDir`. */
async function buildPause(root: string, binDir: string): Promise<void> {
  const module = await throwawayModule(root, "pause");
  try {
    await Deno.writeTextFile(`${module}/go.mod`, "module kubeface.local/pause\n\ngo 1.24\n");
    await Deno.writeTextFile(`${module}/main.go`, PAUSE_SOURCE);
    const out = `${module}/out`;
    await Deno.mkdir(out);
    await go(module, ["build", "-trimpath", "-ldflags", "-s -w", "-o", `${out}/pause`, "."]);
    await install(out, binDir, ["pause"]);
  } finally {
    await Deno.remove(module, { recursive: true });
  }
}
