// Package qemutest proves the kernel data plane against the real kernel
// IPVS and the real ipvsadm, inside Debian's kernel booted under qemu
// (internal/testbed/qemu). Its tests are all in one boot: ipvsadm
// commands given to `keepvs adm` and to ipvsadm in two network namespaces
// with every listing read by both; -R restores; traffic through IPVS for
// NAT, DR and TUN real servers; the daemon against Debian's keepalived on
// the seed configurations; and the 2,000 x 20 benchmark. The guest half
// of the tests (TestGuest*) runs inside the VM from this package's own
// test binary, built static by the host half.
package qemutest
