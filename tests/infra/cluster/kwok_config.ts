/**
 * The configuration `kwok` runs with: a KwokConfiguration and the Stages that play the simulated
 * nodes and their pods. The bare binary has no stages of its own, so every stage is given here,
 * adapted from the module's `kustomize/stage/` (node `fast/node-initialize` and
 * `heartbeat-with-lease`, pod `fast/pod-ready`, `fast/pod-delete`). `pod-complete` differs on
 * purpose: a pod succeeds only once the result writer (tests/infra/kwok_results.ts) has stored
 * its result and marked it with {@link KWOK_RESULT_ANNOTATION}, so the master always finds the
 * result when it sees the pod succeed. KWOK pods run no code.
 *
 * @module
 */

/** Annotation (with value `fake`) that puts a node under kwok's management. */
export const KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node";
/** Label of every KWOK node of the pool (value `kwok`); pods select the pool with it. */
export const KWOK_NODE_LABEL = "type";
/** Taint key of every KWOK node (value `fake`, effect NoSchedule): only pods that ask land there. */
export const KWOK_TAINT = "kwok.x-k8s.io/node";
/**
 * Pod annotation the result writer sets once the pod's result is stored: `ok` lets the
 * pod-complete stage make the pod succeed (exit 0), `error` makes it fail with exit code 3 (the
 * task threw; its error record is stored).
 */
export const KWOK_RESULT_ANNOTATION = "kubeface.dev/kwok-result";

/**
 * The lease duration of KWOK nodes; kwok renews a lease every quarter of it. A kubelet's is 40 s
 * (a renewal every 10 s), which for 1,000 nodes is 100 writes/s: measured here with no pod at
 * all, the apiserver, etcd, kwok and the controller-manager then took 0.8 of this machine's 2
 * cores. A real control plane is sized for that; the test one shares 2 cores with everything it
 * measures, so KWOK nodes renew every 150 s, and kube-controller-manager's
 * `--node-monitor-grace-period` ({@link NODE_MONITOR_GRACE_SECONDS}) is longer than that.
 */
export const KWOK_NODE_LEASE_SECONDS = 600;

/**
 * kube-controller-manager's `--node-monitor-grace-period`: how long a node may go without
 * renewing its lease before it is marked NotReady. Kubernetes' default is 50 s; it must exceed
 * the KWOK nodes' renewal interval (a quarter of {@link KWOK_NODE_LEASE_SECONDS}) with room.
 */
export const NODE_MONITOR_GRACE_SECONDS = 400;

/** Options of {@link kwokConfigYaml}. */
export interface KwokConfigOptions {
  /** The address the simulated nodes report (never contacted); outside the private ranges. */
  nodeIP: string;
  /** CIDR the fake pod addresses come from (never contacted). */
  cidr: string;
}

/**
 * The configuration file of `kwok --config`.
 *
 * @param options The fake node address and pod CIDR.
 * @returns YAML documents: the KwokConfiguration, then the Stages.
 */
export function kwokConfigYaml(options: KwokConfigOptions): string {
  return [
    `apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  cidr: ${options.cidr}
  nodeIP: ${options.nodeIP}
  manageNodesWithAnnotationSelector: ${KWOK_NODE_ANNOTATION}=fake
  nodeLeaseDurationSeconds: ${KWOK_NODE_LEASE_SECONDS}
  enableCRDs: []
  nodeLeaseParallelism: 16
  podPlayStageParallelism: 16
  nodePlayStageParallelism: 16
  podsOnNodeSyncParallelism: 16
`,
    NODE_INITIALIZE,
    NODE_HEARTBEAT,
    POD_READY,
    podComplete("ok", "Succeeded", 0, "Completed"),
    podComplete("error", "Failed", 3, "Error"),
    POD_TERMINATE,
    POD_DELETE,
  ].join("---\n");
}

const NODE_CONDITIONS = `      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $lastTransitionTime | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type | Quote }}
      {{ end }}
`;

const NODE_INITIALIZE = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-initialize
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'NotIn'
      values: ['True']
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
${NODE_CONDITIONS}      addresses:
      - address: {{ NodeIP | Quote }}
        type: InternalIP
      - address: {{ NodeName | Quote }}
        type: Hostname
      allocatable:
      {{ with .status.allocatable }}
      {{ YAML . 1 }}
      {{ end }}
      capacity:
      {{ with .status.capacity }}
      {{ YAML . 1 }}
      {{ end }}
      nodeInfo:
        architecture: amd64
        containerRuntimeVersion: {{ printf "kwok-%s" Version | Quote }}
        kernelVersion: {{ printf "kwok-%s" Version | Quote }}
        kubeProxyVersion: {{ printf "kwok-%s" Version | Quote }}
        kubeletVersion: {{ printf "kwok-%s" Version | Quote }}
        operatingSystem: linux
      phase: Running
`;

const NODE_HEARTBEAT = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-heartbeat-with-lease
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'In'
      values: ['True']
  delay:
    durationMilliseconds: 600000
    jitterDurationMilliseconds: 610000
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
${NODE_CONDITIONS}`;

const POD_READY = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Pending']
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'NotIn'
      values: ['True']
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: ContainersReady
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
        started: true
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ end }}
      {{ with NodeIPsWith .spec.nodeName }}
      hostIP: {{ index . 0 | Quote }}
      {{ end }}
      {{ with PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
      podIP: {{ index . 0 | Quote }}
      {{ end }}
      phase: Running
      startTime: {{ $now | Quote }}
`;

function podComplete(result: string, phase: string, exitCode: number, reason: string): string {
  return `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-complete-${result}
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
    - key: '.metadata.annotations["${KWOK_RESULT_ANNOTATION}"]'
      operator: 'In'
      values: ['${result}']
  next:
    statusTemplate: |
      {{ $now := Now }}
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: ${exitCode}
            finishedAt: {{ $now | Quote }}
            reason: ${reason}
            startedAt: {{ $now | Quote }}
      {{ end }}
      phase: ${phase}
`;
}

/**
 * What the kubelet does with a pod being deleted (eviction, a NoExecute taint, a deleted Job):
 * it kills the container and reports the pod Failed (exit 137), so the Job controller sees a
 * terminal pod, removes its finalizer and, with the pod failure policy, creates a replacement.
 * The module's own stages only delete, which leaves a Job's pods Terminating for ever.
 */
const POD_TERMINATE = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-terminate
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'Exists'
    - key: '.status.phase'
      operator: 'In'
      values: ['Pending', 'Running']
  next:
    statusTemplate: |
      {{ $now := Now }}
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: 137
            finishedAt: {{ $now | Quote }}
            reason: Error
            startedAt: {{ $now | Quote }}
      {{ end }}
      phase: Failed
`;

/** Remove a pod being deleted once nothing holds it (the Job controller's finalizer is gone). */
const POD_DELETE = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'Exists'
    - key: '.metadata.finalizers'
      operator: 'DoesNotExist'
  next:
    delete: true
`;
