/**
 * Token-authenticated identities of the test cluster: the `--token-auth-file` of the apiserver
 * and one kubeconfig file per identity.
 *
 * @module
 */

/** One user the apiserver knows by a static bearer token. */
export interface Identity {
  /** File name stem of its kubeconfig, e.g. `admin` → `admin.kubeconfig`. */
  file: string;
  user: string;
  groups: string[];
  token: string;
}

/**
 * The identities of a cluster with fresh random tokens.
 *
 * - `admin`: `kubeface-admin` in `system:masters`.
 * - `user`: `kubeface-test-user` with no groups beyond `system:authenticated` (tests bind Roles to it).
 * - `controller-manager`, `scheduler`: the users the default RBAC policy grants to those components.
 * - `node`: `system:node:<nodeName>` in `system:nodes`, held by the Node authorizer to its own objects.
 *
 * @param nodeName The name the kubelet registers its node under.
 * @returns One identity per component and test user.
 */
export function makeIdentities(nodeName: string): Identity[] {
  return [
    { file: "admin", user: "kubeface-admin", groups: ["system:masters"] },
    { file: "user", user: "kubeface-test-user", groups: [] },
    { file: "controller-manager", user: "system:kube-controller-manager", groups: [] },
    { file: "scheduler", user: "system:kube-scheduler", groups: [] },
    { file: "node", user: `system:node:${nodeName}`, groups: ["system:nodes"] },
  ].map((identity) => ({ ...identity, token: randomToken() }));
}

/**
 * The CSV of `kube-apiserver --token-auth-file`: `token,user,uid,"group1,group2"`.
 *
 * @param identities The users to admit.
 * @returns The file contents.
 */
export function tokenAuthFile(identities: Identity[]): string {
  return identities
    .map(({ token, user, groups }) => `${token},${user},${user},"${groups.join(",")}"\n`)
    .join("");
}

/**
 * A kubeconfig for one identity.
 *
 * @param server The apiserver URL, e.g. `https://127.0.0.1:6443`.
 * @param caPem The cluster CA certificate (PEM).
 * @param identity Who the kubeconfig authenticates as.
 * @returns The kubeconfig as YAML.
 */
export function kubeconfigYaml(server: string, caPem: string, identity: Identity): string {
  const ca = btoa(caPem);
  return `apiVersion: v1
kind: Config
clusters:
- name: kubeface
  cluster:
    server: ${server}
    certificate-authority-data: ${ca}
users:
- name: ${identity.user}
  user:
    token: ${identity.token}
contexts:
- name: kubeface
  context:
    cluster: kubeface
    user: ${identity.user}
    namespace: default
current-context: kubeface
`;
}

function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}
