package audit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Result describes an intact file.
type Result struct {
	Lines int    // number of lines
	Head  string // hash of the last line (Genesis for an empty file)
}

// ChainError names the first line that breaks the chain.
type ChainError struct {
	Line   int // 1-based
	Reason string
}

func (e *ChainError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// VerifyOptions refines Verify.
type VerifyOptions struct {
	// Head, when set, is a hash the auditor noted earlier (Result.Head of an
	// earlier check, or a line's "hash"). The file must still contain the
	// line with that hash: the chain alone cannot reveal lines cut off the
	// end of the file, a recorded head can.
	Head string
}

// Verify reads a whole audit log and checks every link of its chain. It
// returns a *ChainError for the first line that breaks it — a changed line
// (its hash no longer matches), a removed, inserted or reordered line (its
// prev is not the hash of the line before it), an incomplete last line —
// or another error when r cannot be read.
func Verify(r io.Reader, opts VerifyOptions) (Result, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	prev := Genesis
	n := 0
	headSeen := opts.Head == "" || opts.Head == Genesis // every chain starts there
	for {
		b, err := readLine(br)
		if err == io.EOF {
			break
		}
		n++
		if errors.Is(err, errIncomplete) {
			return Result{}, &ChainError{Line: n, Reason: "incomplete line (no newline at the end of the file): the file was cut short or a write was interrupted"}
		}
		if errors.Is(err, errTooLong) {
			return Result{}, &ChainError{Line: n, Reason: fmt.Sprintf("longer than %d bytes: not a line of an audit log", maxLine)}
		}
		if err != nil {
			return Result{}, err
		}
		hash, p, err := parseLine(b)
		if err != nil {
			return Result{}, &ChainError{Line: n, Reason: err.Error()}
		}
		if p != prev {
			what := fmt.Sprintf("its \"prev\" is not the hash of line %d: a line was removed, inserted or reordered before it", n-1)
			if n == 1 {
				what = "its \"prev\" is not the genesis value: the file does not start a chain (lines were removed from its beginning)"
			}
			return Result{}, &ChainError{Line: n, Reason: what}
		}
		if hash == opts.Head {
			headSeen = true
		}
		prev = hash
	}
	if !headSeen {
		return Result{}, &ChainError{Line: n + 1, Reason: fmt.Sprintf("no line has the expected head hash %s: lines were removed from the end of the file (or it is another file)", opts.Head)}
	}
	return Result{Lines: n, Head: prev}, nil
}

var (
	errIncomplete = errors.New("incomplete line")
	errTooLong    = errors.New("line too long")
)

// readLine returns the next line without its newline; io.EOF at the end.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxLine+1 {
			return nil, errTooLong
		}
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			if len(line) == 0 {
				return nil, io.EOF
			}
			return nil, errIncomplete
		default:
			return nil, err
		}
	}
}
