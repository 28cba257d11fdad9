/**
 * The cluster's PKI, made with the `openssl` CLI: one CA, serving certificates for the
 * apiserver, the other components and the kubelet, the apiserver's client certificate for
 * the kubelet, and the service-account signing key pair. All keys are ECDSA P-256.
 *
 * @module
 */

import { runCommand } from "./run_command.ts";

/** Paths of the files {@link createPki} writes. */
export interface Pki {
  caCert: string;
  caKey: string;
  apiserverCert: string;
  apiserverKey: string;
  /** Serving certificate of kube-controller-manager and kube-scheduler. */
  componentsCert: string;
  componentsKey: string;
  /** Serving certificate of the kubelet's port. */
  kubeletCert: string;
  kubeletKey: string;
  /** Client certificate the apiserver presents to the kubelet. */
  kubeletClientCert: string;
  kubeletClientKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
}

/** Options of {@link createPki}. */
export interface CreatePkiOptions {
  /** Name of the node, added to the kubelet's serving certificate. @default "kubeface-node-1" */
  nodeName?: string;
  /** The node's address, added to the kubelet's serving certificate. */
  nodeIP?: string;
}

/**
 * Create a fresh PKI in `dir` (which must exist).
 *
 * @param dir The directory that receives the PEM files.
 * @param options The node name for the kubelet serving certificate.
 * @returns The paths of every file.
 * @throws {Error} When `openssl` fails.
 */
export async function createPki(dir: string, options: CreatePkiOptions = {}): Promise<Pki> {
  const { nodeName = "kubeface-node-1", nodeIP } = options;
  const pki: Pki = {
    caCert: `${dir}/ca.crt`,
    caKey: `${dir}/ca.key`,
    apiserverCert: `${dir}/apiserver.crt`,
    apiserverKey: `${dir}/apiserver.key`,
    componentsCert: `${dir}/components.crt`,
    componentsKey: `${dir}/components.key`,
    kubeletCert: `${dir}/kubelet.crt`,
    kubeletKey: `${dir}/kubelet.key`,
    kubeletClientCert: `${dir}/kubelet-client.crt`,
    kubeletClientKey: `${dir}/kubelet-client.key`,
    serviceAccountKey: `${dir}/sa.key`,
    serviceAccountPub: `${dir}/sa.pub`,
  };
  await openssl([
    "req",
    "-x509",
    "-new",
    ...EC_KEY,
    "-keyout",
    pki.caKey,
    "-out",
    pki.caCert,
    "-days",
    "3650",
    "-subj",
    "/CN=kubeface-test-ca",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
  ]);
  const loopback = ["IP:127.0.0.1", "DNS:localhost"];
  await signed(pki, "apiserver", "/CN=kube-apiserver", "serverAuth", [
    ...loopback,
    "IP:10.0.0.1",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
  ]);
  await signed(pki, "components", "/CN=kubeface-components", "serverAuth", loopback);
  await signed(pki, "kubelet", `/CN=system:node:${nodeName}/O=system:nodes`, "serverAuth", [
    ...loopback,
    `DNS:${nodeName}`,
    ...(nodeIP ? [`IP:${nodeIP}`] : []),
  ]);
  await signed(
    pki,
    "kubelet-client",
    "/CN=kube-apiserver-kubelet-client/O=kubeadm:cluster-admins",
    "clientAuth",
    [],
  );
  await openssl([
    "ecparam",
    "-name",
    "prime256v1",
    "-genkey",
    "-noout",
    "-out",
    pki.serviceAccountKey,
  ]);
  await openssl(["ec", "-in", pki.serviceAccountKey, "-pubout", "-out", pki.serviceAccountPub]);
  return pki;
}

const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/** Make `<dir>/<name>.key` and a certificate for it signed by the CA. */
async function signed(
  pki: Pki,
  name: string,
  subject: string,
  usage: "serverAuth" | "clientAuth",
  altNames: string[],
): Promise<void> {
  const dir = pki.caCert.slice(0, pki.caCert.lastIndexOf("/"));
  const csr = `${dir}/${name}.csr`;
  const ext = `${dir}/${name}.ext`;
  await openssl([
    "req",
    "-new",
    ...EC_KEY,
    "-keyout",
    `${dir}/${name}.key`,
    "-out",
    csr,
    "-subj",
    subject,
  ]);
  await Deno.writeTextFile(
    ext,
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      `extendedKeyUsage=${usage}`,
      ...(altNames.length > 0 ? [`subjectAltName=${altNames.join(",")}`] : []),
      "",
    ].join("\n"),
  );
  await openssl([
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    pki.caCert,
    "-CAkey",
    pki.caKey,
    "-CAcreateserial",
    "-days",
    "3650",
    "-extfile",
    ext,
    "-out",
    `${dir}/${name}.crt`,
  ]);
  await Deno.remove(csr);
  await Deno.remove(ext);
}

async function openssl(args: string[]): Promise<void> {
  await runCommand("openssl", { args });
}
