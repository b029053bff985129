package main

import (
	"fmt"
	"strings"
)

// argKind says whether an option takes a value.
type argKind int

const (
	noArg argKind = iota
	requiredArg
	optionalArg // only as --long=VALUE or -xVALUE, as getopt does
)

// option is one command-line option in keepalived's getopt style.
type option struct {
	short byte
	long  string
	arg   argKind
	help  string
}

// parsed holds what was given: option long name → values ("" for a flag).
type parsed struct {
	values map[string][]string
	rest   []string
	argv   []string // as given, for a child process that parses them again
}

func (p parsed) has(name string) bool { return len(p.values[name]) > 0 }

func (p parsed) get(name, def string) string {
	if v := p.values[name]; len(v) > 0 {
		return v[len(v)-1]
	}
	return def
}

// parseOptions reads argv (without the program name) the way getopt_long
// does: bundled short flags (-lDn), -fFILE or -f FILE, --long=VALUE or
// --long VALUE, and "--" ending the options.
func parseOptions(opts []option, argv []string) (parsed, error) {
	p := parsed{values: map[string][]string{}, argv: argv}
	byShort := map[byte]option{}
	byLong := map[string]option{}
	for _, o := range opts {
		if o.short != 0 {
			byShort[o.short] = o
		}
		byLong[o.long] = o
	}
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		switch {
		case a == "--":
			p.rest = append(p.rest, argv[i+1:]...)
			return p, nil
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			o, ok := byLong[name]
			if !ok {
				return p, fmt.Errorf("unrecognized option '--%s'", name)
			}
			switch o.arg {
			case noArg:
				if hasVal {
					return p, fmt.Errorf("option '--%s' doesn't allow an argument", name)
				}
			case requiredArg:
				if !hasVal {
					if i+1 >= len(argv) {
						return p, fmt.Errorf("option '--%s' requires an argument", name)
					}
					i++
					val = argv[i]
				}
			}
			p.values[o.long] = append(p.values[o.long], val)
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				o, ok := byShort[a[j]]
				if !ok {
					return p, fmt.Errorf("invalid option -- '%c'", a[j])
				}
				val := ""
				if o.arg != noArg {
					val = a[j+1:]
					if val == "" && o.arg == requiredArg {
						if i+1 >= len(argv) {
							return p, fmt.Errorf("option requires an argument -- '%c'", a[j])
						}
						i++
						val = argv[i]
					}
					j = len(a)
				}
				p.values[o.long] = append(p.values[o.long], val)
			}
		default:
			p.rest = append(p.rest, a)
		}
	}
	return p, nil
}

// usage renders the option table.
func usage(prog string, opts []option) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: %s [OPTION...]\n", prog)
	for _, o := range opts {
		left := "    "
		if o.short != 0 {
			left = fmt.Sprintf("-%c, ", o.short)
		}
		left += "--" + o.long
		switch o.arg {
		case requiredArg:
			left += "=VALUE"
		case optionalArg:
			left += "[=VALUE]"
		}
		fmt.Fprintf(&b, "  %-30s %s\n", left, o.help)
	}
	return b.String()
}
