package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"strconv"
	"strings"
	"sync"
)

// localSyslog is the system's syslog (/dev/log).
func localSyslog(p syslog.Priority) (*syslog.Writer, error) { return syslog.New(p, "keepvs") }

// newLogger builds the daemon's logger as keepalived's options ask: the
// console with -l, syslog unless -G (facility from -S, default daemon), and
// the console anyway when syslog cannot be reached, so nothing is lost.
// dial connects to syslog (syslog.New in the daemon; a test socket in
// tests).
func newLogger(opts parsed, stderr io.Writer, dial func(syslog.Priority) (*syslog.Writer, error)) (*slog.Logger, func(), error) {
	level := slog.LevelInfo
	if opts.has("log-detail") {
		level = slog.LevelDebug
	}
	hopts := &slog.HandlerOptions{Level: level}
	var hs []slog.Handler
	closeFn := func() {}
	if !opts.has("no-syslog") {
		fac, err := facility(opts.get("log-facility", "daemon"))
		if err != nil {
			return nil, nil, err
		}
		if w, err := dial(fac | syslog.LOG_INFO); err == nil {
			hs = append(hs, newSyslogHandler(w, hopts))
			closeFn = func() { w.Close() }
		}
	}
	if opts.has("log-console") || len(hs) == 0 {
		hs = append(hs, slog.NewTextHandler(stderr, hopts))
	}
	if len(hs) == 1 {
		return slog.New(hs[0]), closeFn, nil
	}
	return slog.New(fanout(hs)), closeFn, nil
}

// facility reads -S: 0-7 (local0-7), local0-7, user or daemon.
func facility(s string) (syslog.Priority, error) {
	switch s {
	case "daemon":
		return syslog.LOG_DAEMON, nil
	case "user":
		return syslog.LOG_USER, nil
	}
	n, err := strconv.Atoi(strings.TrimPrefix(s, "local"))
	if err != nil || n < 0 || n > 7 {
		return 0, fmt.Errorf("--log-facility %q: want 0-7, local0-7, user or daemon", s)
	}
	return syslog.LOG_LOCAL0 + syslog.Priority(n)<<3, nil
}

// fanout sends each record to every handler.
type fanout []slog.Handler

func (f fanout) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range f {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (f fanout) Handle(ctx context.Context, r slog.Record) error {
	for _, h := range f {
		if h.Enabled(ctx, r.Level) {
			h.Handle(ctx, r.Clone())
		}
	}
	return nil
}

func (f fanout) WithAttrs(a []slog.Attr) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithAttrs(a)
	}
	return out
}

func (f fanout) WithGroup(name string) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithGroup(name)
	}
	return out
}

// syslogHandler writes each record as one syslog message at the record's
// level.
type syslogHandler struct {
	w   *syslog.Writer
	mu  *sync.Mutex
	buf *bytes.Buffer
	h   slog.Handler // formats into buf
}

func newSyslogHandler(w *syslog.Writer, opts *slog.HandlerOptions) *syslogHandler {
	buf := &bytes.Buffer{}
	o := *opts
	// syslog stamps the time itself.
	o.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
			return slog.Attr{}
		}
		return a
	}
	return &syslogHandler{w: w, mu: &sync.Mutex{}, buf: buf, h: slog.NewTextHandler(buf, &o)}
}

func (s *syslogHandler) Enabled(ctx context.Context, l slog.Level) bool { return s.h.Enabled(ctx, l) }

func (s *syslogHandler) Handle(ctx context.Context, r slog.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Reset()
	if err := s.h.Handle(ctx, r); err != nil {
		return err
	}
	msg := strings.TrimSpace(s.buf.String())
	switch {
	case r.Level >= slog.LevelError:
		return s.w.Err(msg)
	case r.Level >= slog.LevelWarn:
		return s.w.Warning(msg)
	case r.Level >= slog.LevelInfo:
		return s.w.Info(msg)
	}
	return s.w.Debug(msg)
}

func (s *syslogHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return &syslogHandler{w: s.w, mu: s.mu, buf: s.buf, h: s.h.WithAttrs(a)}
}

func (s *syslogHandler) WithGroup(name string) slog.Handler {
	return &syslogHandler{w: s.w, mu: s.mu, buf: s.buf, h: s.h.WithGroup(name)}
}
