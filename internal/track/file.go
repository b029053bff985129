package track

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"time"

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

// RunFile reads f every poll (keepalived watches with inotify; a poll
// every 100 ms is as prompt for a file a person or a script writes) and
// sends an Update when its value changes, and once at start.
func RunFile(ctx context.Context, f *model.TrackFile, poll time.Duration, out chan<- Update) {
	if poll <= 0 {
		poll = 100 * time.Millisecond
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
		case <-ctx.Done():
			return
		}
	}
}
