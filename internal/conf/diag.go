package conf

import (
	"fmt"
	"sort"
	"strings"
)

// Severity says whether a Diagnostic stops the configuration from running.
type Severity int

const (
	Error Severity = iota
	Warning
)

func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "error"
}

// Diagnostic is one problem found in a configuration, at a position.
type Diagnostic struct {
	Pos      Pos
	Keyword  string
	Message  string
	Severity Severity
}

// String renders the diagnostic as "file:line:col: keyword: message", with
// "warning: " before the message for warnings.
func (d Diagnostic) String() string {
	var b strings.Builder
	b.WriteString(d.Pos.String())
	b.WriteString(": ")
	if d.Keyword != "" {
		b.WriteString(d.Keyword)
		b.WriteString(": ")
	}
	if d.Severity == Warning {
		b.WriteString("warning: ")
	}
	b.WriteString(d.Message)
	return b.String()
}

// Diagnostics is a list of problems; it implements error when it holds at
// least one Error.
type Diagnostics []Diagnostic

// Add appends an error.
func (ds *Diagnostics) Errorf(pos Pos, keyword, format string, args ...any) {
	*ds = append(*ds, Diagnostic{Pos: pos, Keyword: keyword, Message: fmt.Sprintf(format, args...)})
}

// Warnf appends a warning.
func (ds *Diagnostics) Warnf(pos Pos, keyword, format string, args ...any) {
	*ds = append(*ds, Diagnostic{Pos: pos, Keyword: keyword, Message: fmt.Sprintf(format, args...), Severity: Warning})
}

// HasErrors reports whether any diagnostic is an Error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// Errors returns only the errors.
func (ds Diagnostics) Errors() Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.Severity == Error {
			out = append(out, d)
		}
	}
	return out
}

// Sort orders diagnostics by file, line and column, keeping the order of
// those at the same place.
func (ds Diagnostics) Sort() {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i].Pos, ds[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

func (ds Diagnostics) Error() string {
	lines := make([]string, 0, len(ds))
	for _, d := range ds {
		lines = append(lines, d.String())
	}
	return strings.Join(lines, "\n")
}

// Err returns ds as an error if it holds an Error, else nil.
func (ds Diagnostics) Err() error {
	if ds.HasErrors() {
		return ds
	}
	return nil
}
