package model

import (
	"strings"

	"github.com/keepvs/keepvs/internal/conf"
)

// Script is a program keepalived.conf asks to run: a notify script, a
// vrrp_script, a MISC_CHECK's misc_path, quorum_up/down. Cmd is the text as
// written; Argv is how it is run (split on blanks, with '...' and "..."
// grouping, as keepalived splits it); User and Group, when set, are who it
// runs as (default: global_defs script_user).
type Script struct {
	Cmd   string   `json:"cmd"`
	Argv  []string `json:"argv"`
	User  string   `json:"user,omitempty"`
	Group string   `json:"group,omitempty"`
}

// script reads "KEYWORD <STRING>|<QUOTED-STRING> [username [groupname]]".
// An unquoted command with spaces is taken whole (keepalived joins the
// words) unless withUser is set, where words after the first are the user
// and group.
func (b *builder) script(n *conf.Node, withUser bool) (Script, bool) {
	args := n.Args()
	if !b.nargs(n, 1, -1) {
		return Script{}, false
	}
	var s Script
	if withUser && args[0].Quoted {
		if !b.nargs(n, 1, 3) {
			return Script{}, false
		}
		s.Cmd = args[0].Text
		if len(args) > 1 {
			s.User = args[1].Text
		}
		if len(args) > 2 {
			s.Group = args[2].Text
		}
	} else {
		words := make([]string, len(args))
		for i, w := range args {
			words[i] = w.Text
		}
		s.Cmd = strings.Join(words, " ")
	}
	argv, err := SplitArgv(s.Cmd)
	if err != nil {
		b.errorf(args[0].Pos, n.Keyword(), "%v", err)
		return Script{}, false
	}
	if len(argv) == 0 {
		b.errorf(args[0].Pos, n.Keyword(), "empty command")
		return Script{}, false
	}
	s.Argv = argv
	return s, true
}

// SplitArgv splits a command line into words: blanks separate, '...' keeps
// its contents literally, "..." groups with backslash escapes, and a
// backslash outside quotes escapes the next character.
func SplitArgv(cmd string) ([]string, error) {
	var argv []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(cmd); i++ {
		c := cmd[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				argv = append(argv, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			inWord = true
			j := strings.IndexByte(cmd[i+1:], '\'')
			if j < 0 {
				return nil, errUnterminated('\'')
			}
			cur.WriteString(cmd[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			inWord = true
			i++
			for ; i < len(cmd) && cmd[i] != '"'; i++ {
				if cmd[i] == '\\' && i+1 < len(cmd) {
					i++
				}
				cur.WriteByte(cmd[i])
			}
			if i >= len(cmd) {
				return nil, errUnterminated('"')
			}
		case c == '\\' && i+1 < len(cmd):
			inWord = true
			i++
			cur.WriteByte(cmd[i])
		default:
			inWord = true
			cur.WriteByte(c)
		}
	}
	if inWord {
		argv = append(argv, cur.String())
	}
	return argv, nil
}

type errUnterminated byte

func (e errUnterminated) Error() string {
	return "unterminated " + string(rune(e)) + " quote in command"
}
