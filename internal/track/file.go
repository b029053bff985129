package track

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/keepvs/keepvs/internal/model"
)

// ReadFile is a track_file's value: the integer at the start of the
// file, 0 when the file is missing or does not start with one (as
// keepalived's strtol reading).
func ReadFile(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	s := strings.TrimSpace(string(b))
	end := 0
	for end < len(s) && (s[end] >= '0' && s[end] <= '9' || end == 0 && (s[0] == '-' || s[0] == '+')) {
		end++
	}
	v, _ := strconv.ParseInt(s[:end], 10, 64)
	return v
}

// InitFile writes init_file's value when the file is missing, or always
// with overwrite.
func InitFile(f *model.TrackFile) error {
	if f.Init == nil {
		return nil
	}
	if _, err := os.Stat(f.File); err == nil && !f.Init.Overwrite {
		return nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return os.WriteFile(f.File, []byte(strconv.FormatInt(f.Init.Value, 10)+"\n"), 0o644)
}

// RunFile watches f and sends an Update when its value changes, and once
// at start. With poll 0 it watches as keepalived does, with inotify on the
// file's directory (so a file created, replaced by a rename, written or
// removed is seen at once), reading it again every 10 s besides in case a
// change went unreported (a network file system); where inotify is
// missing it reads the file every 100 ms. A poll above 0 reads every poll.
func RunFile(ctx context.Context, f *model.TrackFile, poll time.Duration, out chan<- Update) {
	var changed <-chan struct{}
	if poll <= 0 {
		poll = 100 * time.Millisecond
		if c, err := watchFile(ctx, f.File); err == nil {
			changed, poll = c, 10*time.Second
		}
	}
	InitFile(f)
	last, first := int64(0), true
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if v := ReadFile(f.File); first || v != last {
			first, last = false, v
			select {
			case out <- Update{Kind: KindFile, Name: f.Name, Value: v}:
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-t.C:
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

// watchFile reports, on the channel it returns (coalesced), every change
// inotify sees to path's name in its directory, until ctx ends.
func watchFile(ctx context.Context, path string) (<-chan struct{}, error) {
	dir, name := filepath.Split(filepath.Clean(path))
	if dir == "" {
		dir = "."
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, err
	}
	const mask = unix.IN_CLOSE_WRITE | unix.IN_MODIFY | unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
		unix.IN_DELETE_SELF | unix.IN_MOVE_SELF
	if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
		unix.Close(fd)
		return nil, err
	}
	file := os.NewFile(uintptr(fd), "inotify") // non-blocking: reads wait in the runtime's poller
	changed := make(chan struct{}, 1)
	stop := context.AfterFunc(ctx, func() { file.Close() })
	go func() {
		defer stop()
		buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
		for {
			n, err := file.Read(buf)
			if err != nil {
				return
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				nameEnd := off + unix.SizeofInotifyEvent + int(ev.Len)
				got := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:min(nameEnd, n)]), "\x00")
				if got == name || got == "" { // "": the directory itself
					select {
					case changed <- struct{}{}:
					default:
					}
				}
				off = nameEnd
			}
		}
	}()
	return changed, nil
}
