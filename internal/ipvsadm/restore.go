package ipvsadm

import (
	"bufio"
	"context"
	"io"
)

// maxToken is config_stream's MAX_LINE_LENGTH: longer words are split.
const maxToken = 4096

// readLine is config_stream_read: the words of the next line of r, after
// first (the program name). ok is false at the end of input, including,
// as in ipvsadm, when the input ends in blanks without a newline, which
// loses that last line. A word "ipvsadm" is dropped, so lines may be
// written as commands. '#' starts no comment: ipvsadm looks for one in
// the wrong place. ("Blanks" above means two or more: fscanf takes one
// blank with each word.)
func readLine(r *bufio.Reader, first string) (argv []string, ok bool) {
	argv = []string{first}
	ntoken := 0
	isSep := func(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }
	for {
		b, err := r.ReadByte()
		if err != nil {
			if ntoken == 0 {
				return nil, false
			}
			return argv, true
		}
		if isSep(b) {
			// fscanf matched nothing: skip blanks up to the newline
			for {
				switch {
				case b == '\n':
					return argv, true
				case b == ' ' || b == '\t' || b == '\r':
				default:
					_ = r.UnreadByte()
					goto next
				}
				if b, err = r.ReadByte(); err != nil {
					return nil, false
				}
			}
		}
		{
			tok := []byte{b}
			for len(tok) < maxToken {
				b, err = r.ReadByte()
				if err != nil {
					break
				}
				if isSep(b) {
					_ = r.UnreadByte()
					break
				}
				tok = append(tok, b)
			}
			if string(tok) != "ipvsadm" {
				ntoken++
				argv = append(argv, string(tok))
			}
			// the one separator fscanf takes after the word
			b, err = r.ReadByte()
			if err != nil {
				continue
			}
			if !isSep(b) {
				_ = r.UnreadByte()
				continue
			}
			if b == '\n' {
				return argv, true
			}
		}
	next:
	}
}

// restore is restore_table: every line of stdin is a command. A line that
// fails the way ipvsadm fails ends the restore; the status is the last
// command's.
func (c *Cmd) restore(ctx context.Context, argv []string, readingStdin bool) (int, error) {
	if readingStdin {
		return 0, c.tryHelp(argv[0])
	}
	if c.in == nil {
		in := c.Stdin
		if in == nil {
			in = eofReader{}
		}
		c.in = bufio.NewReader(in)
	}
	result := 0
	for {
		line, ok := readLine(c.in, argv[0])
		if !ok {
			return result, nil
		}
		if len(line) > 1 {
			var err error
			result, err = c.process(ctx, line, true)
			if err != nil {
				return 0, err
			}
		}
	}
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
