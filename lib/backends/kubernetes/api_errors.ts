/**
 * Kubernetes API failures as errors a user can act on: an unreachable
 * cluster, a missing permission (with the Role that grants it), a missing
 * namespace, an object the server rejected.
 *
 * @module
 */

import type { KubeConfig } from "@kubernetes/client-node";
import { BackendError, errorMessage } from "../../errors.ts";

interface Status {
  message?: string;
  reason?: string;
}

function statusOf(error: unknown): { code?: number; status?: Status } {
  const e = error as { code?: unknown; body?: unknown };
  const code = typeof e?.code === "number" ? e.code : undefined;
  let status: Status | undefined;
  if (typeof e?.body === "string") {
    try {
      status = JSON.parse(e.body) as Status;
    } catch {
      status = { message: e.body };
    }
  } else if (e?.body && typeof e.body === "object") {
    status = e.body as Status;
  }
  return { code, status };
}

/** Where calls go, for error messages: the server, the namespace and the user. */
export interface Where {
  server: string;
  namespace: string;
  user?: string;
}

/** The {@linkcode Where} of a configuration and namespace. */
export function whereOf(kc: KubeConfig, namespace: string): Where {
  return {
    server: kc.getCurrentCluster()?.server ?? "(no server)",
    namespace,
    user: kc.getCurrentUser()?.name,
  };
}

/** The HTTP status of a failed API call, if it got one. */
export function apiStatus(error: unknown): number | undefined {
  return statusOf(error).code;
}

/**
 * Explain a failed call: `action` says what was tried ("create Jobs"),
 * `where` the cluster and namespace.
 */
export function apiError(
  error: unknown,
  action: string,
  where: Where,
): BackendError {
  const { code, status } = statusOf(error);
  const detail = status?.message ?? errorMessage(error);
  const options = { cause: error };
  if (code === undefined) {
    return new BackendError(
      `Cannot ${action}: the Kubernetes API at ${where.server} is unreachable (${detail}); check that the cluster runs and that KUBECONFIG (or --kubeconfig/--context) points at it`,
      options,
    );
  }
  if (code === 401) {
    return new BackendError(
      `Cannot ${action}: the Kubernetes API at ${where.server} did not accept the credentials (${detail}); refresh them (e.g. gcloud container clusters get-credentials) or fix the kubeconfig`,
      options,
    );
  }
  if (code === 403) {
    return new BackendError(
      `Cannot ${action} in namespace '${where.namespace}': ${
        where.user ? `user '${where.user}' is` : "the credentials are"
      } not allowed (${detail}); grant the Role in docs/rbac.yaml: kubectl apply -n ${where.namespace} -f docs/rbac.yaml and bind it to the user`,
      options,
    );
  }
  if (code === 404 && status?.reason === "NotFound" && /namespaces? "/.test(detail)) {
    return new BackendError(
      `Cannot ${action}: namespace '${where.namespace}' does not exist; create it (kubectl create namespace ${where.namespace}) or pass --namespace`,
      options,
    );
  }
  if (code === 422 || code === 400) {
    return new BackendError(`Cannot ${action}: the Kubernetes API rejected it: ${detail}`, options);
  }
  return new BackendError(
    `Cannot ${action}: the Kubernetes API answered ${code}: ${detail}`,
    options,
  );
}
