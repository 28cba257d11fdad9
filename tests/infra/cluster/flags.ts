/**
 * Command lines of the control-plane components. Every flag that deviates from a default says
 * why in a comment; tests/infra/README.md summarises them.
 *
 * @module
 */

import type { Pki } from "./certs.ts";
import { NODE_MONITOR_GRACE_SECONDS } from "./kwok_config.ts";

/** Loopback ports of one cluster. */
export interface ClusterPorts {
  etcdClient: number;
  etcdPeer: number;
  apiserver: number;
  controllerManager: number;
  scheduler: number;
  /** The kubelet's HTTPS port (logs, exec), on the node's address. */
  kubelet: number;
  /** The kubelet's health port on loopback. */
  kubeletHealthz: number;
}

/** What the command lines need to know about a cluster. */
export interface FlagContext {
  /** The state directory. */
  dir: string;
  ports: ClusterPorts;
  pki: Pki;
  /** `--token-auth-file` of the apiserver. */
  tokenFile: string;
  /** Kubeconfig files of kube-controller-manager and kube-scheduler. */
  controllerManagerKubeconfig: string;
  schedulerKubeconfig: string;
  /**
   * kube-controller-manager's `--kube-api-qps` and `--kube-api-burst`: the rate at which the Job
   * controller creates pods and removes their finalizers (about 2 requests per task).
   * @default {Kubernetes' defaults, 20 and 30}
   */
  controllerQps?: { qps: number; burst: number };
  /**
   * kube-controller-manager's `--terminated-pod-gc-threshold`: the pod garbage collector deletes
   * the oldest Succeeded and Failed pods beyond it, every 20 s.
   * @default {Kubernetes' default, 12500}
   */
  terminatedPodGcThreshold?: number;
}

/** The controllers kube-controller-manager runs (canonical names). */
export const CONTROLLERS = [
  "job-controller",
  "cronjob-controller",
  "ttl-after-finished-controller",
  "garbage-collector-controller", // cascading deletes (propagationPolicy Background/Foreground)
  "pod-garbage-collector-controller",
  "namespace-controller", // tests delete their namespaces
  "serviceaccount-controller", // creates `default` in every namespace (ServiceAccount admission is on)
  "serviceaccount-token-controller",
  "root-ca-certificate-publisher-controller",
  "clusterrole-aggregation-controller", // fills the admin/edit/view ClusterRoles
  "node-lifecycle-controller", // removes the not-ready taint once the kubelet reports Ready
  "taint-eviction-controller",
  "replicaset-controller",
  "deployment-controller",
] as const;

/** etcd: a single member on loopback, with fsync off (test data only). */
export function etcdArgs({ dir, ports }: FlagContext): string[] {
  const peer = `http://127.0.0.1:${ports.etcdPeer}`;
  const client = `http://127.0.0.1:${ports.etcdClient}`;
  return [
    "--name=kubeface",
    `--data-dir=${dir}/etcd`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=kubeface=${peer}`,
    "--unsafe-no-fsync=true", // as envtest does: faster, and the data is thrown away
    "--log-level=warn",
  ];
}

/** The user of `user.kubeconfig`, the identity the master runs as in tests. */
export const TEST_USER = "kubeface-test-user";

/**
 * The apiserver's audit policy: one Metadata event per request of {@link TEST_USER} (when the
 * request completes; a watch, when it ends), nothing for anyone else. Benchmarks count the
 * master's own API requests from `DIR/logs/audit.log`.
 */
export const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
- level: Metadata
  users: [${TEST_USER}]
- level: None
`;

/** kube-apiserver with RBAC, static tokens, and client certificates for the kubelet. */
export function apiserverArgs({ dir, ports, pki, tokenFile }: FlagContext): string[] {
  return [
    `--etcd-servers=http://127.0.0.1:${ports.etcdClient}`,
    "--bind-address=127.0.0.1",
    `--secure-port=${ports.apiserver}`,
    // No default route here: without an explicit address the apiserver fails to start, and a
    // loopback address may not be written to the `kubernetes` Endpoints, hence reconciler none.
    "--advertise-address=127.0.0.1",
    "--endpoint-reconciler-type=none",
    `--tls-cert-file=${pki.apiserverCert}`,
    `--tls-private-key-file=${pki.apiserverKey}`,
    `--client-ca-file=${pki.caCert}`,
    // Front-proxy settings, published in kube-system/extension-apiserver-authentication; without
    // them the scheduler and controller-manager log an error about the missing CA every minute.
    `--requestheader-client-ca-file=${pki.caCert}`,
    "--requestheader-allowed-names=front-proxy-client",
    "--requestheader-username-headers=X-Remote-User",
    "--requestheader-group-headers=X-Remote-Group",
    "--requestheader-extra-headers-prefix=X-Remote-Extra-",
    `--token-auth-file=${tokenFile}`,
    "--authorization-mode=Node,RBAC",
    "--enable-admission-plugins=NodeRestriction",
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    `--service-account-key-file=${pki.serviceAccountPub}`,
    `--service-account-signing-key-file=${pki.serviceAccountKey}`,
    "--service-cluster-ip-range=10.0.0.0/24",
    // `kubectl logs` goes apiserver → kubelet over HTTPS, verified against our CA; the kubelet
    // lets `kube-apiserver-kubelet-client` in through the cluster-role binding cluster:up makes.
    `--kubelet-certificate-authority=${pki.caCert}`,
    `--kubelet-client-certificate=${pki.kubeletClientCert}`,
    `--kubelet-client-key=${pki.kubeletClientKey}`,
    "--kubelet-preferred-address-types=InternalIP",
    "--allow-privileged=true",
    "--profiling=false",
    // The test user's requests, for benchmarks (see AUDIT_POLICY); up() writes the policy.
    `--audit-policy-file=${dir}/audit-policy.yaml`,
    `--audit-log-path=${dir}/logs/audit.log`,
    "--audit-log-maxsize=1024",
  ];
}

/** kube-controller-manager with the controllers in {@link CONTROLLERS}. */
export function controllerManagerArgs(context: FlagContext): string[] {
  const { ports, pki, controllerManagerKubeconfig: kubeconfig } = context;
  return [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    "--bind-address=127.0.0.1",
    `--secure-port=${ports.controllerManager}`,
    `--tls-cert-file=${pki.componentsCert}`,
    `--tls-private-key-file=${pki.componentsKey}`,
    "--leader-elect=false",
    `--controllers=${CONTROLLERS.join(",")}`,
    // Each controller acts as its own service account, as on kubeadm clusters.
    "--use-service-account-credentials=true",
    `--service-account-private-key-file=${pki.serviceAccountKey}`,
    `--root-ca-file=${pki.caCert}`,
    "--cluster-name=kubeface",
    "--profiling=false",
    // KWOK nodes renew their leases less often than kubelets (see KWOK_NODE_LEASE_SECONDS).
    `--node-monitor-grace-period=${NODE_MONITOR_GRACE_SECONDS}s`,
    ...(context.controllerQps
      ? [
        `--kube-api-qps=${context.controllerQps.qps}`,
        `--kube-api-burst=${context.controllerQps.burst}`,
      ]
      : []),
    ...(context.terminatedPodGcThreshold === undefined
      ? []
      : [`--terminated-pod-gc-threshold=${context.terminatedPodGcThreshold}`]),
  ];
}

/** kube-scheduler with its default profile. */
export function schedulerArgs(
  { ports, pki, schedulerKubeconfig: kubeconfig }: FlagContext,
): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    "--bind-address=127.0.0.1",
    `--secure-port=${ports.scheduler}`,
    `--tls-cert-file=${pki.componentsCert}`,
    `--tls-private-key-file=${pki.componentsKey}`,
    "--leader-elect=false",
    "--profiling=false",
  ];
}
