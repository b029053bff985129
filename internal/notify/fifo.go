package notify

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
)

// FIFO writes notify lines to a named pipe, creating it if it is missing.
// It never blocks the daemon: with no reader the lines wait in the pipe's
// buffer, and when that is full a line is dropped (and counted).
type FIFO struct {
	path    string
	created bool
	mu      sync.Mutex
	f       *os.File
	dropped int
}

// OpenFIFO opens (creating if needed) the FIFO at path.
func OpenFIFO(path string) (*FIFO, error) {
	created := false
	if fi, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := syscall.Mkfifo(path, 0o600); err != nil {
			return nil, fmt.Errorf("notify fifo %s: %w", path, err)
		}
		created = true
	} else if err != nil {
		return nil, fmt.Errorf("notify fifo %s: %w", path, err)
	} else if fi.Mode()&os.ModeNamedPipe == 0 {
		return nil, fmt.Errorf("notify fifo %s: exists and is not a FIFO", path)
	}
	// Read-write so opening does not wait for a reader and writes do not
	// fail while nobody reads.
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("notify fifo %s: %w", path, err)
	}
	return &FIFO{path: path, created: created, f: f}, nil
}

// Write sends one line (a newline is added).
func (f *FIFO) Write(line string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.f.WriteString(line + "\n"); err != nil {
		f.dropped++
	}
}

// Dropped is how many lines found the pipe full.
func (f *FIFO) Dropped() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dropped
}

// Close closes the FIFO and removes it if OpenFIFO created it.
func (f *FIFO) Close() error {
	err := f.f.Close()
	if f.created {
		os.Remove(f.path)
	}
	return err
}

// InstanceLine is a VRRP FIFO line: INSTANCE "VI_1" MASTER 100.
func InstanceLine(kind, name, state string, priority int) string {
	return fmt.Sprintf("%s %q %s %d", strings.ToUpper(kind), name, state, priority)
}

// ServiceName is a service as keepalived's LVS FIFO writes it:
// [192.168.201.15]:tcp:80.
func ServiceName(proto string, addr netip.Addr, port uint16) string {
	return fmt.Sprintf("[%s]:%s:%d", addr, strings.ToLower(proto), port)
}

// VSLine is an LVS FIFO line for a virtual server's quorum: VS
// [192.168.201.15]:tcp:80 UP.
func VSLine(vs string, up bool) string { return "VS " + vs + " " + upDown(up) }

// RSLine is an LVS FIFO line for a real server: RS [1.2.3.4]:tcp:80
// [192.168.201.15]:tcp:80 DOWN.
func RSLine(rs, vs string, up bool) string { return "RS " + rs + " " + vs + " " + upDown(up) }

func upDown(up bool) string {
	if up {
		return "UP"
	}
	return "DOWN"
}
