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

// script reads "KEYWORD <STRING>|<QUOTED-STRING> [username [groupname]]"
// as keepalived 2.2.7 does: the first word is the whole command (quote it
// when it has arguments), split into argv on blanks with quotes grouping;
// with withUser the second and third words are the user and group. An
// unquoted command followed by more words than that is an error here:
// keepalived would run the first word alone.
func (b *builder) script(n *conf.Node, withUser bool) (Script, bool) {
	max := 1
	if withUser {
		max = 3
	}
	args := n.Args()
	if len(args) > max && !args[0].Quoted {
		b.errorf(args[max].Pos, n.Keyword(), "keepalived would run %q alone and ignore the rest: quote the whole command", args[0].Text)
		return Script{}, false
	}
	if !b.nargs(n, 1, max) {
		return Script{}, false
	}
	s, ok := b.scriptWords(n, args)
	if !ok {
		return Script{}, false
	}
	return *s, true
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
