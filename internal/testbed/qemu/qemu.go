// Package qemu boots Debian's own kernel under qemu (software emulation,
// TCG) with an initramfs built on the fly, runs a shell script inside and
// returns what it printed on the serial console. It is the test bed for
// what the host's kernel lacks, IPVS first of all: the real kernel and the
// real ipvsadm, in a few seconds per boot.
//
// The initramfs holds busybox (every applet), the binaries asked for with
// the shared libraries ldd lists for them, kernel modules with everything
// they depend on (modules.dep) and a depmod'ed tree, and /init, which
// mounts the usual file systems, loads IPVS, runs the script and powers
// off. Needs: qemu-system-x86, linux-image-amd64, busybox-static (Debian).
package qemu

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Host is what a boot needs from this machine.
type Host struct {
	Qemu    string // qemu-system-x86_64
	Kernel  string // /boot/vmlinuz-K
	Release string // K
	Busybox string // a static busybox
}

// Find looks for qemu, a kernel image with its modules and busybox; the
// error says what is missing and how to install it.
func Find() (Host, error) {
	var h Host
	var missing []string
	var err error
	if h.Qemu, err = exec.LookPath("qemu-system-x86_64"); err != nil {
		missing = append(missing, "qemu-system-x86 (qemu-system-x86_64 not found)")
	}
	if h.Busybox, err = exec.LookPath("busybox"); err != nil {
		missing = append(missing, "busybox-static (busybox not found)")
	}
	kernels, _ := filepath.Glob("/boot/vmlinuz-*")
	sort.Strings(kernels)
	for i := len(kernels) - 1; i >= 0; i-- {
		rel := strings.TrimPrefix(filepath.Base(kernels[i]), "vmlinuz-")
		if _, err := os.Stat(filepath.Join("/lib/modules", rel, "modules.dep")); err == nil {
			h.Kernel, h.Release = kernels[i], rel
			break
		}
	}
	if h.Kernel == "" {
		missing = append(missing, "linux-image-amd64 (no /boot/vmlinuz-* with /lib/modules/*/modules.dep)")
	}
	if len(missing) > 0 {
		return h, fmt.Errorf("qemu test bed unavailable; apt-get install -y --no-install-recommends qemu-system-x86 linux-image-amd64 busybox-static: missing %s", strings.Join(missing, ", "))
	}
	return h, nil
}

// IPVSModules are the modules an IPVS test bed loads: IPVS with every
// scheduler and the SIP persistence engine, veth and dummy for the
// namespaces, ipip for tunnelling.
var IPVSModules = []string{
	"ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_lc", "ip_vs_wlc", "ip_vs_lblc", "ip_vs_lblcr",
	"ip_vs_dh", "ip_vs_sh", "ip_vs_sed", "ip_vs_nq", "ip_vs_fo", "ip_vs_ovf", "ip_vs_mh",
	"ip_vs_twos", "ip_vs_pe_sip", "ip_vs_ftp", "crc32c_generic",
	"veth", "dummy", "ipip", "bridge",
}

// Image is an initramfs being put together in a directory.
type Image struct {
	host Host
	root string
}

// NewImage starts an initramfs in dir (which must be empty or absent),
// with busybox and its applets.
func NewImage(h Host, dir string) (*Image, error) {
	im := &Image{host: h, root: dir}
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "run", "etc", "root", "var/run", "lib64"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	if err := im.copyFile(h.Busybox, "/bin/busybox", 0o755); err != nil {
		return nil, err
	}
	out, err := exec.Command(h.Busybox, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list-full: %w", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		p := filepath.Join(dir, applet)
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		if err := os.Symlink("/bin/busybox", p); err != nil {
			return nil, err
		}
	}
	if err := im.AddData("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n", 0o644); err != nil {
		return nil, err
	}
	if err := im.AddData("/etc/group", "root:x:0:\nnogroup:x:65534:\n", 0o644); err != nil {
		return nil, err
	}
	return im, nil
}

func (im *Image) path(guest string) string { return filepath.Join(im.root, guest) }

func (im *Image) copyFile(host, guest string, mode fs.FileMode) error {
	b, err := os.ReadFile(host)
	if err != nil {
		return err
	}
	p := im.path(guest)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	os.Remove(p) // a busybox link may be in the way
	return os.WriteFile(p, b, mode)
}

// AddFile copies a host file into the image.
func (im *Image) AddFile(host, guest string, mode fs.FileMode) error {
	return im.copyFile(host, guest, mode)
}

// AddData writes a file into the image.
func (im *Image) AddData(guest, data string, mode fs.FileMode) error {
	p := im.path(guest)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(data), mode)
}

// AddBinary copies a host program to the same path (or guest, if given)
// with the shared libraries ldd lists for it.
func (im *Image) AddBinary(host, guest string) error {
	if guest == "" {
		guest = host
	}
	if err := im.copyFile(host, guest, 0o755); err != nil {
		return err
	}
	out, err := exec.Command("ldd", host).Output()
	if err != nil {
		return nil // static: ldd says "not a dynamic executable" and fails
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		var lib string
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			lib = f[2]
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			lib = f[0]
		default:
			continue
		}
		if _, err := os.Stat(im.path(lib)); err == nil {
			continue
		}
		if err := im.copyFile(lib, lib, 0o755); err != nil {
			return fmt.Errorf("%s: %w", host, err)
		}
	}
	return nil
}

// AddModules copies the named modules with everything they depend on,
// and runs depmod over the image. A module that is built in is fine.
func (im *Image) AddModules(names ...string) error {
	rel := im.host.Release
	src := filepath.Join("/lib/modules", rel)
	deps, err := readModulesDep(filepath.Join(src, "modules.dep"))
	if err != nil {
		return err
	}
	byName := map[string]string{}
	for path := range deps {
		byName[modName(path)] = path
	}
	seen := map[string]bool{}
	var add func(path string) error
	add = func(path string) error {
		if seen[path] {
			return nil
		}
		seen[path] = true
		if err := im.copyFile(filepath.Join(src, path), filepath.Join("/lib/modules", rel, path), 0o644); err != nil {
			return err
		}
		for _, d := range deps[path] {
			if err := add(d); err != nil {
				return err
			}
		}
		return nil
	}
	for _, n := range names {
		path, ok := byName[strings.ReplaceAll(n, "-", "_")]
		if !ok {
			continue // built in, or not in this kernel
		}
		if err := add(path); err != nil {
			return err
		}
	}
	for _, f := range []string{"modules.builtin", "modules.builtin.modinfo", "modules.order"} {
		if _, err := os.Stat(filepath.Join(src, f)); err == nil {
			if err := im.copyFile(filepath.Join(src, f), filepath.Join("/lib/modules", rel, f), 0o644); err != nil {
				return err
			}
		}
	}
	if out, err := exec.Command("depmod", "-b", im.root, rel).CombinedOutput(); err != nil {
		return fmt.Errorf("depmod: %v: %s", err, out)
	}
	return nil
}

func modName(path string) string {
	b := filepath.Base(path)
	if i := strings.Index(b, ".ko"); i >= 0 {
		b = b[:i]
	}
	return strings.ReplaceAll(b, "-", "_")
}

func readModulesDep(path string) (map[string][]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		mod, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		out[mod] = strings.Fields(rest)
	}
	return out, nil
}

// initScript is /init: it runs /test.sh between two markers.
const initScript = `#!/bin/sh
export PATH=/usr/local/bin:/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
mkdir -p /run/netns /var/run
modprobe crc32c_generic 2>/dev/null
modprobe ip_vs
for m in $(cat /etc/modules-load 2>/dev/null); do modprobe $m; done
ip link set lo up
echo "@@@BEGIN@@@"
sh /test.sh 2>&1
echo "@@@END rc=$?@@@"
poweroff -f
`

// Pack writes the image as an uncompressed newc cpio archive, with
// /dev/console, and returns its path.
func (im *Image) Pack(script string, modules []string) (string, error) {
	if err := im.AddData("/init", initScript, 0o755); err != nil {
		return "", err
	}
	if err := im.AddData("/test.sh", script, 0o755); err != nil {
		return "", err
	}
	if err := im.AddData("/etc/modules-load", strings.Join(modules, "\n")+"\n", 0o644); err != nil {
		return "", err
	}
	out := im.root + ".cpio"
	f, err := os.Create(out)
	if err != nil {
		return "", err
	}
	defer f.Close()
	w := newCpio(bufio.NewWriterSize(f, 1<<20))
	err = filepath.WalkDir(im.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, im.root)
		if name == "" {
			return nil
		}
		return w.addPath(p, strings.TrimPrefix(name, "/"))
	})
	if err != nil {
		return "", err
	}
	if err := w.addDev("dev/console", 0o600, 5, 1); err != nil {
		return "", err
	}
	if err := w.close(); err != nil {
		return "", err
	}
	return out, f.Close()
}

// Icount makes the guest's clock count instructions (one nanosecond
// each) instead of following the host's: a time measured inside is then
// the work done, whatever else the host is running, at the cost of
// modelling no cache or memory. For comparisons on a shared machine.
var Icount = []string{"-icount", "shift=0,sleep=off"}

// Boot runs the initramfs under qemu and returns what the script printed.
// The error tells a boot that failed or did not finish, with the console.
// extra are more qemu arguments (Icount, for one).
func Boot(ctx context.Context, h Host, initrd string, memMB int, timeout time.Duration, extra ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args := []string{"-machine", "accel=tcg", "-cpu", "max", "-smp", "1", "-m", fmt.Sprint(memMB),
		"-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
		"-kernel", h.Kernel, "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 quiet rdinit=/init"}
	cmd := exec.CommandContext(ctx, h.Qemu, append(args, extra...)...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.Stdin = nil
	err := cmd.Run()
	console := strings.ReplaceAll(out.String(), "\r", "")
	_, body, ok := strings.Cut(console, "@@@BEGIN@@@\n")
	if !ok {
		return "", fmt.Errorf("qemu: no output from the test script (%v); console:\n%s", err, tail(console, 4000))
	}
	body, _, ok = strings.Cut(body, "@@@END")
	if !ok {
		if ctx.Err() != nil {
			return body, fmt.Errorf("qemu: timed out after %s; script output so far:\n%s", timeout, tail(body, 4000))
		}
		return body, fmt.Errorf("qemu: the script did not finish (%v):\n%s", err, tail(body, 4000))
	}
	return body, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// cpio writes the newc format the kernel unpacks.
type cpioWriter struct {
	w   *bufio.Writer
	ino uint32
}

func newCpio(w *bufio.Writer) *cpioWriter { return &cpioWriter{w: w, ino: 1} }

func (c *cpioWriter) header(name string, mode uint32, size int, rdevMajor, rdevMinor uint32) error {
	c.ino++
	h := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, 1, 0, size, 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	if _, err := io.WriteString(c.w, h+name+"\x00"); err != nil {
		return err
	}
	return c.pad(110 + len(name) + 1)
}

func (c *cpioWriter) pad(n int) error {
	if r := n % 4; r != 0 {
		_, err := c.w.Write(make([]byte, 4-r))
		return err
	}
	return nil
}

func (c *cpioWriter) addPath(host, name string) error {
	fi, err := os.Lstat(host)
	if err != nil {
		return err
	}
	perm := uint32(fi.Mode().Perm())
	switch {
	case fi.IsDir():
		return c.header(name, 0o040000|perm, 0, 0, 0)
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(host)
		if err != nil {
			return err
		}
		if err := c.header(name, 0o120777, len(target), 0, 0); err != nil {
			return err
		}
		if _, err := io.WriteString(c.w, target); err != nil {
			return err
		}
		return c.pad(len(target))
	case fi.Mode().IsRegular():
		b, err := os.ReadFile(host)
		if err != nil {
			return err
		}
		if err := c.header(name, 0o100000|perm, len(b), 0, 0); err != nil {
			return err
		}
		if _, err := c.w.Write(b); err != nil {
			return err
		}
		return c.pad(len(b))
	}
	return nil
}

func (c *cpioWriter) addDev(name string, perm, major, minor uint32) error {
	return c.header(name, 0o020000|perm, 0, major, minor)
}

func (c *cpioWriter) close() error {
	if err := c.header("TRAILER!!!", 0, 0, 0, 0); err != nil {
		return err
	}
	return c.w.Flush()
}
